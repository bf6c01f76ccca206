"""The training engine: one ``fit`` for the CLI, the GUI, experiments and benchmarks.

Callback payloads (``FitStart``, ``BatchState``, ``EvalResult``, ``EpochMetrics``) and the
``FitResult`` are typed dataclasses from ``engine.callbacks``.
"""

from .callbacks import BatchState, Callback, EpochMetrics, EvalResult, FitResult, FitStart
from .config import RECIPES, TrainConfig, list_recipes, resolve_config
from .fit import evaluate, fit
from .state import TrainingState

__all__ = [
    "RECIPES",
    "BatchState",
    "Callback",
    "EpochMetrics",
    "EvalResult",
    "FitResult",
    "FitStart",
    "TrainConfig",
    "TrainingState",
    "evaluate",
    "fit",
    "list_recipes",
    "resolve_config",
]
