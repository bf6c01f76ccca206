"""The training engine: one ``fit`` for the CLI, the GUI, experiments and benchmarks."""

from .callbacks import Callback
from .config import RECIPES, TrainConfig, list_recipes, resolve_config
from .fit import FitResult, evaluate, fit

__all__ = ["Callback", "RECIPES", "TrainConfig", "list_recipes", "resolve_config", "FitResult", "evaluate", "fit"]
