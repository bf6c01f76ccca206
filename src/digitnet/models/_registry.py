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

__all__ = ["register_model", "create_model", "list_models", "model_info", "model_summary"]

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


def create_model(name: str, **args: Any):
    """Build model ``name`` with architecture ``args`` (fields of its config dataclass)."""
    if name not in _BUILDERS:
        raise UsageError(f"unknown model {name!r}; choose from: {', '.join(list_models())}")
    try:
        model = _BUILDERS[name](**args)
    except TypeError as exc:
        raise UsageError(f"model {name!r}: bad architecture arguments {args}: {exc}") from None
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
