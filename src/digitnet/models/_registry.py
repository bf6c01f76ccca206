"""Model registry (the timm pattern): one family per file, registered by a decorator.

``@register_model`` on a builder ``def name(**args) -> nn.Module`` makes the model available to
``create_model(name, **args)``, ``list_models()`` and ``digitnet models``. Each builder takes the
fields of its family's config dataclass as keyword arguments, and the module it returns carries
``.config`` (the dataclass) and ``.model_name``, which checkpoints store so a checkpoint alone can
rebuild its model.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from ..errors import UsageError

__all__ = [
    "MAX_PARAMS",
    "check_model_args",
    "create_model",
    "estimate_params",
    "list_models",
    "model_info",
    "model_summary",
    "register_model",
]

# Limits on architecture arguments, applied before anything is built. A checkpoint or config
# file is user input: ``widths [8000, 8000, 1]`` would allocate gigabytes and ``depths [10**7]``
# would take hours to build. The registered models use widths up to 512, a few layers per stage
# and 29 thousand to 1.2 million parameters; these limits leave two orders of magnitude above.
MAX_PARAMS = (
    50_000_000  # 200 MB of float32 weights (train keeps ~3 copies: weights, grads, momentum)
)
MAX_WIDTH = 16_384  # any single size argument (channels, units, classes)
MAX_COUNT = 64  # layers or blocks in one stage (fields named in _COUNT_FIELDS)
MAX_LIST = 16  # entries in a list argument (stages, hidden layers)
_COUNT_FIELDS = {"depths", "blocks"}

# Filled as models/__init__.py imports each family file (Python always imports the package
# before this module, so the registry is complete whenever it is used).
_BUILDERS: dict[str, Callable[..., Any]] = {}
_SUMMARIES: dict[str, str] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``fn`` under its own name; its docstring's first line is the summary."""
    name = fn.__name__
    if name in _BUILDERS:
        raise ValueError(f"model {name!r} registered twice")
    _BUILDERS[name] = fn
    _SUMMARIES[name] = (inspect.getdoc(fn) or "").splitlines()[0] if fn.__doc__ else ""
    return fn


def list_models() -> list[str]:
    """Registered model names, the default (``digitnet``) first, then in registration order."""
    names = list(_BUILDERS)
    if "digitnet" in names:
        names.remove("digitnet")
        names.insert(0, "digitnet")
    return names


def _default_config(name: str) -> Any:
    import torch

    with torch.device("meta"):  # no memory, no initialisation cost
        return _BUILDERS[name]().config


def _kind(v: Any) -> str:
    return "a boolean" if isinstance(v, bool) else f"{type(v).__name__} {v!r}"[:60]


def check_model_args(name: str, args: Any) -> None:
    """Check ``args`` for model ``name`` against its config dataclass, without building it.

    Keys must be fields of the dataclass and values of the field's type (ints, finite floats,
    strings, lists of ints), sizes within ``MAX_WIDTH``/``MAX_COUNT``/``MAX_LIST``. Raises
    ``UsageError`` with one line naming the argument.
    """
    import math

    if name not in _BUILDERS:
        raise UsageError(f"unknown model {name!r}; choose from: {', '.join(list_models())}")
    if not isinstance(args, dict):
        raise UsageError(
            f"model {name!r}: architecture arguments must be a mapping, not {_kind(args)}"
        )
    defaults = {
        f.name: getattr(_default_config(name), f.name)
        for f in dataclasses.fields(_default_config(name))
    }
    for key, value in args.items():
        if key not in defaults:
            raise UsageError(
                f"model {name!r}: bad architecture arguments: unknown argument {str(key)[:40]!r};"
                f" it takes: {', '.join(defaults) or 'none'}"
            )
        ref = defaults[key]
        where = f"model {name!r}: {key}"
        if isinstance(ref, bool):
            if not isinstance(value, bool):
                raise UsageError(f"{where} must be true or false, not {_kind(value)}")
        elif isinstance(ref, int):
            _check_int(
                where,
                value,
                2 if key == "num_classes" else 1,
                MAX_COUNT if key in _COUNT_FIELDS else MAX_WIDTH,
            )
        elif isinstance(ref, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(f"{where} must be a number, not {_kind(value)}")
            if not math.isfinite(value) or value < 0 or (key == "dropout" and value >= 1):
                raise UsageError(f"{where} must be a finite number in [0, 1), not {value!r}")
        elif isinstance(ref, str):
            if not isinstance(value, str) or len(value) > 64:
                raise UsageError(f"{where} must be a short string, not {_kind(value)}")
        elif isinstance(ref, list):
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST:
                raise UsageError(
                    f"{where} must be a list of 1 to {MAX_LIST} integers, not {_kind(value)}"
                )
            for v in value:
                _check_int(where, v, 1, MAX_COUNT if key in _COUNT_FIELDS else MAX_WIDTH)


def _check_int(where: str, v: Any, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise UsageError(f"{where} must be made of integers, not {_kind(v)}")
    if not lo <= v <= hi:
        raise UsageError(f"{where}: {v} is outside {lo}..{hi:,}")


def estimate_params(name: str, args: dict[str, Any]) -> int:
    """Parameters (and buffers) of model ``name`` with ``args``, counted on torch's ``meta``
    device: shapes only, no memory, so a hostile size costs nothing. Checks ``args`` first."""
    import torch

    check_model_args(name, args)
    try:
        with torch.device("meta"):
            model = _BUILDERS[name](**args)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UsageError(f"model {name!r}: bad architecture arguments: {exc}") from None
    return int(sum(t.numel() for t in model.state_dict().values()))


def create_model(name: str, **args: Any):
    """Build model ``name`` with architecture ``args`` (fields of its config dataclass).

    The arguments are checked and the size estimated (``estimate_params``) before anything is
    allocated; more than ``MAX_PARAMS`` parameters is refused.
    """
    n = estimate_params(name, args)
    if n > MAX_PARAMS:
        raise UsageError(
            f"model {name!r}: {n:,} parameters is too large for a digit model "
            f"(limit {MAX_PARAMS:,})"
        )
    try:
        model = _BUILDERS[name](**args)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"model {name!r}: bad architecture arguments: {exc}") from None
    model.model_name = name
    return model


def model_summary(name: str) -> str:
    return _SUMMARIES.get(name, "")


def count_macs(model, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> int:
    """Multiply-accumulates of one forward pass, counted on conv and linear layers."""
    import torch
    from torch import nn

    macs = 0

    def conv_hook(mod: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        nonlocal macs
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        macs += out.numel() // out.shape[0] * k

    def linear_hook(mod: nn.Linear, _inp: Any, out: torch.Tensor) -> None:
        nonlocal macs
        macs += out.numel() // out.shape[0] * mod.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return macs


def model_info(name: str, **args: Any) -> dict[str, Any]:
    """Name, parameter count, MFLOPs per image (2 x multiply-accumulates), summary, arguments."""
    model = create_model(name, **args)
    params = sum(p.numel() for p in model.parameters())
    return {
        "name": name,
        "params": int(params),
        "mflops": round(2 * count_macs(model) / 1e6, 3),
        "summary": model_summary(name),
        "args": dataclasses.asdict(model.config),
    }
