"""What an experiment trains: entries (label -> TrainConfig) from flags or an experiment file.

An experiment file (TOML, or YAML when pyyaml is installed) looks like::

    runs = 5            # any top-level setting below can also be given on the command line
    epochs = 2
    [models.paper]                     # label "paper": model "paper", recipe "paper"
    runs = 10                          # this entry's own number of runs (seeds 0..9)
    [models.course]
    recipe = "course"
    [models.course_sane]               # same network, a sane recipe and ReLU activations
    model = "course"
    recipe = "default"
    model_args = { activation = "relu" }

Per-model tables take ``model``, ``recipe``, ``runs`` and any ``TrainConfig`` field (``lr``,
``batch_size``, ``augment``, ``model_args``, ...). Command-line flags win over the file.
"""

from __future__ import annotations

import math
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import read_user_text
from ..engine.config import RECIPES, AugmentConfig, TrainConfig, resolve_config
from ..errors import UsageError

__all__ = ["Entry", "Plan", "default_recipe", "load_experiment_file", "make_plan"]

# Top-level keys of an experiment file (the rest of the file is the [models] table), with the
# type each must have (checked when the file is read, so `epochs = "abc"` names the file and key).
TOP_TYPES: dict[str, Any] = {
    "runs": int,
    "epochs": int,
    "seed": int,
    "limit_train": int,
    "data_dir": str,
    "out": str,
    "tensorboard": bool,
    "recipe": str,
    "device": str,
    "threads": int,
    "models": dict,
}
TOP_KEYS = set(TOP_TYPES)
# Per-model keys that are not TrainConfig fields.
ENTRY_TYPES: dict[str, Any] = {"runs": int, "model": str, "recipe": str}
MAX_FILE_BYTES = 1 << 20  # an experiment file is a few hundred bytes; refuse anything huge
_LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")  # labels become folder names


@dataclass
class Entry:
    label: str  # the name shown in tables and figures; also the run folder name
    config: TrainConfig  # the resolved settings; the seed is set per run
    runs: int = 3  # runs of this entry: seeds base_seed .. base_seed + runs - 1


@dataclass
class Plan:
    entries: list[Entry]
    runs: int  # the default number of runs (an entry may ask for its own)
    base_seed: int
    out: Path
    settings: dict[str, Any] = field(default_factory=dict)  # what was asked, for experiment.json

    def seeds(self, entry: Entry | None = None) -> list[int]:
        # Every model gets the same seeds, so run i of two models starts from the same data
        # order (the models' weights still differ because their shapes differ). An entry with
        # fewer runs gets the first of those seeds.
        n = self.runs if entry is None else entry.runs
        return [self.base_seed + i for i in range(n)]

    def total_runs(self) -> int:
        return sum(e.runs for e in self.entries)


def default_recipe(model: str) -> str:
    """A model's own recipe where one exists (paper, course, ...), else ``default``."""
    return model if model in RECIPES else "default"


def _type_name(t: Any) -> str:
    return {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        dict: "a table",
    }.get(t, getattr(t, "__name__", str(t)))


def _type_ok(value: Any, t: Any) -> tuple[bool, str]:
    """Whether ``value`` fits the annotation ``t`` (the few kinds TrainConfig uses)."""
    args = typing.get_args(t)
    if typing.get_origin(t) in (typing.Union, getattr(types, "UnionType", None)):
        # X | None: None is "use the default"; TOML has no null, YAML does.
        inner = [a for a in args if a is not type(None)]
        if value is None:
            return True, ""
        return _type_ok(value, inner[0])
    if typing.get_origin(t) is dict:
        return isinstance(value, dict), _type_name(dict)
    if t is AugmentConfig:
        return isinstance(value, (bool, dict)), "true, false or a table of augmentation settings"
    if t is bool:
        return isinstance(value, bool), _type_name(bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool), _type_name(int)
    if t is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok and math.isfinite(value), "a finite number"
    if t is str:
        return isinstance(value, str), _type_name(str)
    if t is dict:
        return isinstance(value, dict), _type_name(dict)
    return True, ""


_CONFIG_TYPES = typing.get_type_hints(TrainConfig)
_AUGMENT_TYPES = typing.get_type_hints(AugmentConfig)


def _check(p: Path, key: str, value: Any, t: Any) -> None:
    ok, want = _type_ok(value, t)
    if not ok:
        raise UsageError(f"{p}: {key} must be {want}, not {value!r}"[:300])


def _check_entry(p: Path, label: str, spec: dict[str, Any]) -> None:
    for key, value in spec.items():
        where = f"models.{label}.{key}"
        if not isinstance(key, str):
            raise UsageError(f"{p}: models.{label}: setting names must be strings, not {key!r}")
        if key in ENTRY_TYPES:
            _check(p, where, value, ENTRY_TYPES[key])
        elif key in _CONFIG_TYPES:
            _check(p, where, value, _CONFIG_TYPES[key])
            if key == "augment" and isinstance(value, dict):
                for k, v in value.items():
                    if k in _AUGMENT_TYPES:
                        _check(p, f"{where}.{k}", v, _AUGMENT_TYPES[k])
            if key == "model_args" and not all(isinstance(k, str) for k in value):
                raise UsageError(f"{p}: {where}: argument names must be strings")
        else:
            raise UsageError(f"{p}: models.{label}: unknown setting {key!r}")
    if "runs" in spec and spec["runs"] < 1:
        raise UsageError(f"{p}: models.{label}.runs must be >= 1, not {spec['runs']}")


def load_experiment_file(path: str | Path) -> dict[str, Any]:
    """Read and type-check an experiment file; a problem is one line naming the file (and key)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise UsageError(f"{p}: experiment files must end in .toml, .yaml or .yml")
    # The one safe reader: regular files only (a FIFO is refused before open() could block),
    # size checked before reading, a decoding error named by its byte offset.
    text = read_user_text(p, error=UsageError, max_bytes=MAX_FILE_BYTES, what="experiment file")
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10: the same parser as a package
            import tomli as tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{p}: not a valid TOML file: {str(exc).splitlines()[0]}") from None
        except RecursionError:
            raise UsageError(f"{p}: not a valid TOML file: nested too deeply") from None
    else:
        try:
            import yaml
        except ImportError:
            raise UsageError(
                f"{p}: YAML experiment files need pyyaml: pip install 'digitnet[experiment]'"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"{p}: not a valid YAML file: {str(exc).splitlines()[0]}") from None
        except RecursionError:
            raise UsageError(f"{p}: not a valid YAML file: nested too deeply") from None
    if not isinstance(data, dict):
        raise UsageError(f"{p}: expected a table of settings at the top level")
    unknown = sorted(str(k) for k in set(data) - TOP_KEYS)
    if unknown:
        raise UsageError(
            f"{p}: unknown top-level setting(s): {', '.join(unknown)} "
            f"(per-model settings go under [models.<label>])"
        )
    for key, value in data.items():
        if key != "models":
            _check(p, key, value, TOP_TYPES[key])
    models = data.get("models", {})
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        raise UsageError(f"{p}: 'models' must be a table of tables, e.g. [models.paper]")
    for label, spec in models.items():
        if not isinstance(label, str):
            raise UsageError(f"{p}: model labels must be strings, not {label!r}")
        _check_entry(p, label, spec)
    return data


def make_plan(
    *,
    models: list[str] | None = None,
    recipe: str | None = None,
    runs: int | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    limit_train: int | None = None,
    data_dir: str | None = None,
    out: str | None = None,
    tensorboard: bool | None = None,
    device: str | None = None,
    threads: int | None = None,
    file: dict[str, Any] | None = None,
) -> Plan:
    """Resolve flags over an experiment file into a ``Plan``; errors are one-line UsageErrors."""
    file = file or {}

    def pick(flag, key, default=None):
        return flag if flag is not None else file.get(key, default)

    runs_flag = runs
    runs = pick(runs, "runs", 3)
    seed = pick(seed, "seed", 0)
    out = pick(out, "out")
    if not isinstance(runs, int) or runs < 1:
        raise UsageError(f"--runs must be an integer >= 1, not {runs!r}")
    if not isinstance(seed, int):
        raise UsageError(f"--seed must be an integer, not {seed!r}")
    if not out:
        raise UsageError(
            'an output folder is needed: --out DIR (or out = "DIR" in the experiment file)'
        )
    common = {
        "epochs": pick(epochs, "epochs"),
        "limit_train": pick(limit_train, "limit_train"),
        "data_dir": pick(data_dir, "data_dir"),
        "tensorboard": pick(tensorboard, "tensorboard"),
        "device": pick(device, "device"),
        "threads": pick(threads, "threads"),
    }
    recipe = pick(recipe, "recipe")

    # Entries: --models wins over the file's [models] table; a --models name that is also a
    # label in the file keeps that label's settings.
    table: dict[str, dict[str, Any]] = dict(file.get("models", {}))
    if models:
        labels = models
    else:
        labels = list(table)
    if not labels:
        raise UsageError(
            "no models to compare: give --models a,b,... or [models.<label>] tables in --config"
        )
    if len(set(labels)) != len(labels):
        raise UsageError(f"--models names a model twice: {','.join(labels)}")
    entries = []
    for label in labels:
        if not _LABEL.match(label):
            raise UsageError(
                f"model label {label!r} may contain only letters, digits, '_', '-' and '.'"
            )
        spec = dict(table.get(label, {}))
        model = spec.pop("model", label)
        # Precedence: a per-model recipe in the file > --recipe / file recipe > the model's own.
        rec = spec.pop("recipe", None) or recipe or default_recipe(model)
        spec.pop("seed", None)  # seeds are the experiment's: base + run index
        # --runs wins over everything; else the entry's own runs, else the file's top level.
        n_runs = runs_flag if runs_flag is not None else spec.get("runs", runs)
        spec.pop("runs", None)
        if not isinstance(n_runs, int) or isinstance(n_runs, bool) or n_runs < 1:
            raise UsageError(f"model {label!r}: runs must be an integer >= 1, not {n_runs!r}")
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
        entries.append(Entry(label, cfg, n_runs))
    settings = {
        "models": labels,
        "recipe": recipe,
        "runs": runs,
        "seed": seed,
        "runs_per_model": {e.label: e.runs for e in entries},
        **common,
    }
    return Plan(entries=entries, runs=runs, base_seed=seed, out=Path(out), settings=settings)
