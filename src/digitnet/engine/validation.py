"""Checking settings: a config file's keys and value types, then every setting's range.

``load_config_file`` reads a JSON or TOML file and checks that each key is a ``TrainConfig``
field holding a value of the field's type; ``validate`` checks a whole ``TrainConfig`` (types,
the model and its size, ranges). Every failure is one ``UsageError`` line naming the setting.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .settings import AugmentConfig, TrainConfig

__all__ = ["MAX_CONFIG_BYTES", "MAX_SEED", "load_config_file", "validate"]

MAX_CONFIG_BYTES = 1 << 20  # a training config is a few hundred bytes


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or TOML config file into a dict of TrainConfig fields (no code is executed).

    The file must be a regular UTF-8 file of at most 1 MiB holding one object whose keys are
    TrainConfig fields with values of the field's type; anything else is one ``UsageError`` line
    naming the file and the problem (the ranges are checked later by ``validate``).
    """
    from .._io import read_user_text

    p = Path(path)
    text = read_user_text(p, error=UsageError, max_bytes=MAX_CONFIG_BYTES, what="config file")
    kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
    try:
        if kind == "TOML":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10: the same parser as a package
                import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except RecursionError:
        raise UsageError(f"{p}: not a valid {kind} config file: nested too deeply") from None
    except ValueError as exc:
        reason = (str(exc).splitlines() or ["parse error"])[0][:120]
        raise UsageError(f"{p}: not a valid {kind} config file: {reason}") from None
    if not isinstance(data, dict):
        raise UsageError(
            f"{p}: a config file holds one object of settings, not a {_type_name(data)}"
        )
    try:
        _check_types(data, TrainConfig, "")
    except UsageError as exc:
        raise UsageError(f"{p}: {exc}") from None
    return data


def _type_name(v: Any) -> str:
    return {
        dict: "object",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        type(None): "null",
    }.get(type(v), type(v).__name__)


def _show(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _check_types(d: dict[str, Any], cls: type, prefix: str) -> None:
    """Every key a field of ``cls``, every value of the field's type (from its annotation)."""
    import typing

    hints = typing.get_type_hints(cls)
    for key, value in d.items():
        name = f"{prefix}{key}"
        if not isinstance(key, str) or key not in hints:
            import difflib

            close = difflib.get_close_matches(str(key), list(hints), n=1)
            hint = f"; did you mean {prefix}{close[0]!r}?" if close else ""
            raise UsageError(f"unknown setting {str(name)[:40]!r}{hint}")
        _check_value(name, value, hints[key])


def _check_value(name: str, value: Any, hint: Any) -> None:
    import math
    import types
    import typing

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        inner = [a for a in args if a is not type(None)]
        if name == "augment" and isinstance(value, bool):
            return  # "augment": true / false switches the recipe's augmentation on or off
        _check_value(name, value, inner[0])
        return
    if hint is AugmentConfig or (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
        if isinstance(value, bool) and name == "augment":
            return
        if isinstance(value, AugmentConfig):
            return
        if not isinstance(value, dict):
            raise UsageError(
                f"{name} must be an object (or true/false), not {_type_name(value)} {_show(value)}"
            )
        _check_types(value, hint, f"{name}.")
        return
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise UsageError(f"{name} must be an object, not {_type_name(value)} {_show(value)}")
        return
    if hint is bool:
        if not isinstance(value, bool):
            raise UsageError(
                f"{name} must be true or false, not {_type_name(value)} {_show(value)}"
            )
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{name} must be an integer, not {_type_name(value)} {_show(value)}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{name} must be a number, not {_type_name(value)} {_show(value)}")
        if not math.isfinite(value):
            raise UsageError(f"{name} must be a finite number, not {value}")
    elif hint is str:
        if not isinstance(value, str):
            raise UsageError(f"{name} must be a string, not {_type_name(value)} {_show(value)}")


# Largest seed every consumer accepts: torch.manual_seed takes 64-bit values and the run also
# seeds a generator with seed + 1.
MAX_SEED = 2**63 - 2


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def validate(cfg: TrainConfig) -> None:
    """Types, then ranges, of every setting; one ``UsageError`` line naming the flag."""

    from ..models import list_models
    from ..models._registry import MAX_PARAMS, estimate_params

    for f in dataclasses.fields(cfg):
        try:
            _check_value(f.name, getattr(cfg, f.name), _hints()[f.name])
        except UsageError as exc:
            raise UsageError(f"{_flag(f.name)}: {exc}".replace(f": {f.name} ", " ", 1)) from None
    if cfg.model not in list_models():
        raise UsageError(f"unknown model {cfg.model!r}; choose from: {', '.join(list_models())}")
    n = estimate_params(cfg.model, cfg.model_args)  # checks the arguments; builds nothing
    if n > MAX_PARAMS:
        raise UsageError(
            f"model {cfg.model!r} with these model_args has {n:,} parameters (limit {MAX_PARAMS:,})"
        )
    a = cfg.augment
    checks = [
        (cfg.epochs >= 1, f"--epochs must be >= 1, not {cfg.epochs}"),
        (cfg.epochs <= 100_000, f"--epochs must be <= 100000, not {cfg.epochs}"),
        (cfg.batch_size >= 1, f"--batch-size must be >= 1, not {cfg.batch_size}"),
        (cfg.batch_size <= 1 << 20, f"--batch-size must be <= 1048576, not {cfg.batch_size}"),
        (cfg.lr > 0, f"--lr must be > 0, not {cfg.lr}"),
        (cfg.lr <= 1e3, f"--lr must be <= 1000, not {cfg.lr}"),
        (0 <= cfg.momentum <= 1, f"--momentum must be in [0, 1], not {cfg.momentum}"),
        (0 <= cfg.weight_decay <= 1, f"--weight-decay must be in [0, 1], not {cfg.weight_decay}"),
        (cfg.step_size >= 1, f"step_size must be >= 1, not {cfg.step_size}"),
        (0 < cfg.gamma <= 1, f"gamma must be in (0, 1], not {cfg.gamma}"),
        (0 <= cfg.warmup_frac <= 1, f"warmup_frac must be in [0, 1], not {cfg.warmup_frac}"),
        (
            cfg.optimizer in ("sgd", "adam", "adamw", "adadelta"),
            f"unknown optimizer {cfg.optimizer!r}; choose from: sgd, adam, adamw, adadelta",
        ),
        (
            cfg.schedule in ("onecycle", "cosine", "step", "none"),
            f"unknown schedule {cfg.schedule!r}; choose from: onecycle, cosine, step, none",
        ),
        (cfg.input in ("standardize", "raw255", "unit"), f"unknown input scaling {cfg.input!r}"),
        (
            cfg.device in ("auto", "cpu", "cuda", "mps") or cfg.device.startswith("cuda:"),
            f"unknown device {cfg.device!r}; choose from: auto, cpu, cuda, mps",
        ),
        (
            cfg.limit_train is None or cfg.limit_train >= 1,
            f"--limit-train must be >= 1, not {cfg.limit_train}",
        ),
        (cfg.val_split >= 0, f"--val-split must be >= 0, not {cfg.val_split}"),
        (0 <= cfg.seed <= MAX_SEED, f"--seed must be in 0..{MAX_SEED}, not {cfg.seed}"),
        (
            cfg.threads is None or 1 <= cfg.threads <= 1024,
            f"--threads must be in 1..1024, not {cfg.threads}",
        ),
        (
            cfg.target_accuracy is None or 0 < cfg.target_accuracy <= 1,
            f"--target-accuracy must be in (0, 1], not {cfg.target_accuracy}",
        ),
        (
            0 <= cfg.label_smoothing < 1,
            f"--label-smoothing must be in [0, 1), not {cfg.label_smoothing}",
        ),
        (0 < cfg.eval_every <= 100_000, f"--eval-every must be > 0, not {cfg.eval_every}"),
        (
            1 <= cfg.eval_batch_size <= 1 << 20,
            f"eval_batch_size must be in 1..1048576, not {cfg.eval_batch_size}",
        ),
        (cfg.log_every >= 1, f"log_every must be >= 1, not {cfg.log_every}"),
        (
            0 <= a.rotate <= 180 and 0 <= a.shear <= 80,
            f"augment rotate/shear must be in 0..180 / 0..80 degrees, not {a.rotate}/{a.shear}",
        ),
        (0 <= a.scale < 1, f"augment scale must be in [0, 1), not {a.scale}"),
        (
            0 <= a.translate <= 28 and 0 <= a.elastic <= 28,
            f"augment translate/elastic must be in 0..28 pixels, not {a.translate}/{a.elastic}",
        ),
        *[
            (
                0 <= getattr(a, k) <= 1,
                f"augment {k} must be a probability in [0, 1], not {getattr(a, k)}",
            )
            for k in ("thickness", "pen_lift", "clip", "lowres")
            if hasattr(a, k)
        ],
        *[
            (getattr(a, f.name) >= 0, f"augment {f.name} must be >= 0, not {getattr(a, f.name)}")
            for f in dataclasses.fields(a)
            if f.name != "enabled"
        ],
        (
            getattr(a, "allographs", 0) <= 10,
            f"augment allographs must be <= 10, not {getattr(a, 'allographs', 0)}",
        ),
    ]
    for ok, msg in checks:
        if not ok:
            raise UsageError(msg)


def _hints() -> dict[str, Any]:
    import typing

    return typing.get_type_hints(TrainConfig)
