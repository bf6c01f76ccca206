"""Weights against their model: the tensor table before decoding, the values after.

``_check_table`` compares the header's names, shapes and dtypes with the model built on the meta
device (no memory); ``check_weights`` refuses NaN, absurd magnitudes and negative BatchNorm
variances; ``_validate_and_load`` does both checks on decoded tensors and copies them in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ._schema import TRAIN_PREFIX

MAX_ABS_WEIGHT = 1e6  # trained digit models stay below ~100; 1e38 is sabotage or a broken run


def _meta_model(name: str, args: dict[str, Any]):
    """The model on torch's meta device: its state_dict's names, shapes and dtypes, no memory."""
    import torch

    from ..models import create_model

    with torch.device("meta"):
        return create_model(name, **args)


def _check_table(p: Path, header: dict[str, Any], model) -> None:
    """Tensor names, shapes and dtypes of the header against the (meta) model, before decoding."""
    table = {
        k: v for k, v in header.items() if k != "__metadata__" and not k.startswith(TRAIN_PREFIX)
    }
    ref = model.state_dict()
    _check_names(p, model, set(ref), set(table))
    for k, r in ref.items():
        shape = tuple(table[k]["shape"])
        if shape != tuple(r.shape):
            raise CheckpointError(
                f"{p}: {k} has shape {shape}, model {model.model_name!r} needs {tuple(r.shape)}"
            )
        is_float = table[k]["dtype"] in ("F64", "F32", "F16", "BF16")
        if r.is_floating_point() and not is_float:
            raise CheckpointError(
                f"{p}: {k} has dtype {table[k]['dtype']}, expected a floating-point tensor"
            )


def _check_names(p: Path, model, ref: set[str], got: set[str]) -> None:
    missing, extra = sorted(ref - got), sorted(got - ref)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if extra:
            parts.append(
                f"unexpected {', '.join(x[:60] for x in extra[:3])}{' ...' if len(extra) > 3 else ''}"
            )
        raise CheckpointError(
            f"{p}: weights do not fit model {model.model_name!r}: {'; '.join(parts)}"
        )


def _check_classes(p: Path, model, num_classes: int | None) -> None:
    k = getattr(getattr(model, "config", None), "num_classes", None)
    if num_classes is not None and k is not None and k != num_classes:
        raise CheckpointError(
            f"{p}: model {model.model_name!r} has a {k}-class head; reading digits needs "
            f"{num_classes} classes"
        )


def check_weights(p: Path | str, tensors: dict[str, Any]) -> None:
    """Static sanity of weight values: finite, magnitudes below ``MAX_ABS_WEIGHT`` and BatchNorm
    running variances >= 0 (a negative variance gives NaN for every input)."""
    import torch

    for k, t in tensors.items():
        if not t.is_floating_point() or t.numel() == 0:
            continue
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{p}: {k} contains NaN or infinite values")
        big = float(t.abs().max())
        if big > MAX_ABS_WEIGHT:
            raise CheckpointError(
                f"{p}: {k} holds a value of magnitude {big:.3g}, beyond any trained digit model "
                f"(limit {MAX_ABS_WEIGHT:g}); the weights are broken"
            )
        if k.endswith("running_var") and float(t.min()) < 0:
            raise CheckpointError(
                f"{p}: {k} holds a negative variance ({float(t.min()):.3g}); the weights are broken"
            )


def _validate_and_load(p: Path, model, tensors: dict[str, Any]) -> None:
    ref = model.state_dict()
    _check_names(p, model, set(ref), set(tensors))
    for k, r in ref.items():
        t = tensors[k]
        if tuple(t.shape) != tuple(r.shape):
            raise CheckpointError(
                f"{p}: {k} has shape {tuple(t.shape)}, model {model.model_name!r} needs {tuple(r.shape)}"
            )
        if r.is_floating_point() and not t.is_floating_point():
            raise CheckpointError(f"{p}: {k} has dtype {t.dtype}, expected a floating-point tensor")
    check_weights(p, {k: tensors[k] for k in ref})
    model.load_state_dict({k: tensors[k].to(ref[k].dtype) for k in ref})
