"""The checkpoint format's names and the schema of its metadata.

Everything here is pure checking of already-decoded values: the ``format`` tag, the types and
ranges of the metadata entries, the ``input`` normalisation spec, the model's parameter count
(counted on the meta device, nothing built), and a JSON reader that refuses deep nesting.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

FORMAT = "digitnet-checkpoint"
FORMAT_VERSION = 1
TRAIN_PREFIX = "_train."
MAX_JSON_DEPTH = 64  # our metadata nests 3 deep; deeper JSON is refused before json.loads
INPUT_KINDS = ("standardize", "raw255", "unit")


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    return Path(path).with_suffix(".json")


def _json(p: Path, raw: str | bytes, what: str) -> Any:
    """``json.loads`` that gives a one-line CheckpointError for every failure (also deep nesting,
    which makes the C parser raise RecursionError)."""
    depth = _max_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(
            f"{p}: corrupt {what}: JSON nested {depth} levels deep (limit {MAX_JSON_DEPTH})"
        )
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CheckpointError(f"{p}: corrupt {what} (not JSON)") from None


def _max_depth(raw: str | bytes) -> int:
    """Bracket nesting depth of a JSON text, counted outside strings (linear, no recursion)."""
    b = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if b.count(b"[") + b.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # cannot be deeper than the limit: skip the scan
    depth = best = 0
    in_str = esc = False
    for c in b:
        if in_str:
            if esc:
                esc = False
            elif c == 0x5C:  # backslash
                esc = True
            elif c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c in (0x5B, 0x7B):
            depth += 1
            best = max(best, depth)
        elif c in (0x5D, 0x7D):
            depth -= 1
    return best


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_input_spec(path: Path | str, spec: Any) -> None:
    """The ``input`` entry: how the model wants its pixels scaled. Std 0 or a NaN mean would turn
    every image into NaN, so they are refused here, not found as ``0 nan`` readings later."""
    if not isinstance(spec, dict):
        raise CheckpointError(
            f"{path}: metadata 'input' must be an object like "
            f'{{"kind": "standardize", "mean": 0.1307, "std": 0.3081}}, not {type(spec).__name__}'
        )
    kind = spec.get("kind", "standardize")
    if kind not in INPUT_KINDS:
        raise CheckpointError(
            f"{path}: metadata 'input' kind {str(kind)[:40]!r} is unknown; "
            f"known: {', '.join(INPUT_KINDS)}"
        )
    if kind == "standardize":
        mean: Any = spec.get("mean")
        std: Any = spec.get("std")
        if not _num(mean) or abs(mean) > 1e3:
            raise CheckpointError(
                f"{path}: metadata 'input' mean must be a finite number, not {str(mean)[:40]}"
            )
        if not _num(std) or not 1e-6 <= std <= 1e3:
            raise CheckpointError(
                f"{path}: metadata 'input' std must be a number in [1e-06, 1000], not {str(std)[:40]}"
            )


def check_metadata(path: Path | str, meta: dict[str, Any]) -> None:
    """Schema of digitnet metadata: types and ranges of everything the loaders and commands use,
    the model's arguments, and its parameter count (counted on the meta device, nothing built).
    Raises a one-line ``CheckpointError`` naming the file."""
    from ..errors import UsageError
    from ..models._registry import MAX_PARAMS, estimate_params

    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a digitnet checkpoint (format {str(meta.get('format'))[:40]!r})"
        )
    checks: list[tuple[str, type | tuple[type, ...], bool]] = [
        ("model", str, True),
        ("model_args", dict, False),
        ("input", dict, False),
        ("save_id", str, False),
        ("resumable", bool, False),
        ("train_state", dict, False),
        ("data", dict, False),
        ("metrics", (dict, list), False),
        ("tensors_sha256", str, False),
        ("config", dict, False),
        ("format_version", int, False),
    ]
    for key, typ, required in checks:
        if key not in meta:
            if required:
                raise CheckpointError(f"{path}: metadata lacks the {key!r} entry")
            continue
        v = meta[key]
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise CheckpointError(
                f"{path}: metadata {key!r} has the wrong type ({type(v).__name__})"
            )
    if "input" in meta:
        check_input_spec(path, meta["input"])
    ti = (meta.get("data") or {}).get("train_images")
    if ti is not None and (type(ti) is not int or ti < 0):
        raise CheckpointError(
            f"{path}: metadata data.train_images must be a count, not {str(ti)[:40]}"
        )
    name, args = meta["model"], meta.get("model_args") or {}
    try:
        n = estimate_params(name, args)
    except UsageError as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model: {exc}") from None
    if n > MAX_PARAMS:
        raise CheckpointError(
            f"{path}: model {name!r} with these arguments has {n:,} parameters, too large "
            f"for a digit model (limit {MAX_PARAMS:,}); refused before building it"
        )


def json_safe(obj: Any) -> Any:
    """Floats that JSON cannot hold (NaN, inf) become None; used for metrics in metadata."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
