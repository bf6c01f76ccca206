"""What an experiment trains: entries (label -> TrainConfig) from flags or an experiment file.

An experiment file (TOML, or YAML when pyyaml is installed) looks like::

    runs = 5            # any top-level setting below can also be given on the command line
    epochs = 2
    [models.paper]                     # label "paper": model "paper", recipe "paper"
    [models.course]
    recipe = "course"
    [models.course_sane]               # same network, a sane recipe and ReLU activations
    model = "course"
    recipe = "default"
    model_args = { activation = "relu" }

Per-model tables take ``model``, ``recipe`` and any ``TrainConfig`` field (``lr``, ``batch_size``,
``augment``, ``model_args``, ...). Command-line flags win over the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.config import RECIPES, TrainConfig, resolve_config
from ..errors import UsageError

__all__ = ["Entry", "Plan", "default_recipe", "load_experiment_file", "make_plan"]

# Top-level keys of an experiment file (the rest of the file is the [models] table).
TOP_KEYS = {"runs", "epochs", "seed", "limit_train", "data_dir", "out", "tensorboard", "recipe",
            "device", "threads", "models"}
_LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")  # labels become folder names


@dataclass
class Entry:
    label: str  # the name shown in tables and figures; also the run folder name
    config: TrainConfig  # the resolved settings; the seed is set per run


@dataclass
class Plan:
    entries: list[Entry]
    runs: int
    base_seed: int
    out: Path
    settings: dict[str, Any] = field(default_factory=dict)  # what was asked, for experiment.json

    def seeds(self) -> list[int]:
        # Every model gets the same seeds, so run i of two models starts from the same data
        # order (the models' weights still differ because their shapes differ).
        return [self.base_seed + i for i in range(self.runs)]


def default_recipe(model: str) -> str:
    """A model's own recipe where one exists (paper, course, ...), else ``default``."""
    return model if model in RECIPES else "default"


def load_experiment_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{p}: cannot read experiment file: {exc.strerror or exc}") from None
    suffix = p.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{p}: not a valid TOML file: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise UsageError(f"{p}: YAML experiment files need pyyaml: pip install 'digitnet[experiment]'") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"{p}: not a valid YAML file: {str(exc).splitlines()[0]}") from None
    else:
        raise UsageError(f"{p}: experiment files must end in .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise UsageError(f"{p}: expected a table of settings at the top level")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise UsageError(f"{p}: unknown top-level setting(s): {', '.join(unknown)} "
                         f"(per-model settings go under [models.<label>])")
    models = data.get("models", {})
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        raise UsageError(f"{p}: 'models' must be a table of tables, e.g. [models.paper]")
    return data


def make_plan(*, models: list[str] | None = None, recipe: str | None = None, runs: int | None = None,
              epochs: int | None = None, seed: int | None = None, limit_train: int | None = None,
              data_dir: str | None = None, out: str | None = None, tensorboard: bool | None = None,
              device: str | None = None, threads: int | None = None,
              file: dict[str, Any] | None = None) -> Plan:
    """Resolve flags over an experiment file into a ``Plan``; every error is a one-line UsageError."""
    file = file or {}

    def pick(flag, key, default=None):
        return flag if flag is not None else file.get(key, default)

    runs = pick(runs, "runs", 3)
    seed = pick(seed, "seed", 0)
    out = pick(out, "out")
    if not isinstance(runs, int) or runs < 1:
        raise UsageError(f"--runs must be an integer >= 1, not {runs!r}")
    if not isinstance(seed, int):
        raise UsageError(f"--seed must be an integer, not {seed!r}")
    if not out:
        raise UsageError("an output folder is needed: --out DIR (or out = \"DIR\" in the experiment file)")
    common = {"epochs": pick(epochs, "epochs"), "limit_train": pick(limit_train, "limit_train"),
                  "data_dir": pick(data_dir, "data_dir"), "tensorboard": pick(tensorboard, "tensorboard"),
                  "device": pick(device, "device"), "threads": pick(threads, "threads")}
    recipe = pick(recipe, "recipe")

    # Entries: --models wins over the file's [models] table; a --models name that is also a
    # label in the file keeps that label's settings.
    table: dict[str, dict[str, Any]] = dict(file.get("models", {}))
    if models:
        labels = models
    else:
        labels = list(table)
    if not labels:
        raise UsageError("no models to compare: give --models a,b,... or [models.<label>] tables in --config")
    if len(set(labels)) != len(labels):
        raise UsageError(f"--models names a model twice: {','.join(labels)}")
    entries = []
    for label in labels:
        if not _LABEL.match(label):
            raise UsageError(f"model label {label!r} may contain only letters, digits, '_', '-' and '.'")
        spec = dict(table.get(label, {}))
        model = spec.pop("model", label)
        # Precedence: a per-model recipe in the file > --recipe / file recipe > the model's own.
        rec = spec.pop("recipe", None) or recipe or default_recipe(model)
        spec.pop("seed", None)  # seeds are the experiment's: base + run index
        overrides = {**spec, **{k: v for k, v in common.items() if v is not None}}
        try:
            cfg = resolve_config(recipe=rec, model=model, **overrides)
        except TypeError as exc:  # a bad field type in the file
            raise UsageError(f"model {label!r}: bad settings: {exc}") from None
        except UsageError as exc:
            raise UsageError(f"model {label!r}: {exc}") from None
        # Build the model once now, so bad model_args fail here and not half an hour into the
        # experiment (create_model raises a UsageError naming the model and the argument).
        from ..models import create_model

        try:
            create_model(cfg.model, **cfg.model_args)
        except UsageError as exc:
            raise (exc if label == cfg.model else UsageError(f"{label!r}: {exc}")) from None
        entries.append(Entry(label, cfg))
    settings = {"models": labels, "recipe": recipe, "runs": runs, "seed": seed, **common}
    return Plan(entries=entries, runs=runs, base_seed=seed, out=Path(out), settings=settings)
