"""Checkpoints: safetensors weights + JSON metadata; loading never executes code.

A checkpoint is one ``.safetensors`` file that holds the weights and, embedded in its header,
the JSON metadata (model name and arguments, input normalisation, recipe, metrics, data
description, library versions). A resumable checkpoint also holds the training state (optimizer,
schedule, RNG, position in the epoch) as tensors prefixed ``_train.``. Beside it, a ``.json``
sidecar repeats the metadata for people and records the sha256 of the weights file.

Crash safety: both files are written to temporary files and renamed into place, weights first.
The weights file alone is self-consistent (its metadata is inside it), so a crash between the two
renames leaves a loadable checkpoint: the sidecar's ``save_id`` then differs from the embedded
one and the stale sidecar is ignored. A sidecar with the same ``save_id`` but another sha256 means
the weights were altered, and loading is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import struct
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._io import atomic_write
from .errors import CheckpointError
from .inference.spec import DEFAULT_INPUT as _DEFAULT_INPUT  # the one default input spec

__all__ = [
    "FORMAT",
    "load_checkpoint",
    "load_training_state",
    "read_metadata",
    "save_checkpoint",
    "sidecar_path",
]

FORMAT = "digitnet-checkpoint"
FORMAT_VERSION = 1
TRAIN_PREFIX = "_train."
MAX_BYTES = 1 << 30  # no digit model is near 1 GiB; refuse before reading such a file into memory


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    return Path(path).with_suffix(".json")


def _versions() -> dict[str, str]:
    import numpy
    import torch

    from . import __version__

    return {
        "digitnet": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(
    path: str | os.PathLike[str],
    model,
    meta: dict[str, Any],
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and ``meta`` (plus optional resumable ``train_state``) atomically.

    ``train_state`` may hold tensors (``tensors``: name -> tensor) and JSON (``json``: dict).
    Returns the path of the weights file.
    """
    from safetensors.torch import save as st_save

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    core = model.module if hasattr(model, "module") else model  # DDP / compiled wrappers
    core = getattr(core, "_orig_mod", core)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in core.state_dict().items()}
    full_meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "save_id": uuid.uuid4().hex,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        **meta,
    }
    if train_state is not None:
        for k, v in train_state.get("tensors", {}).items():
            tensors[TRAIN_PREFIX + k] = v.detach().to("cpu").contiguous()
        full_meta["train_state"] = train_state.get("json", {})
        full_meta["resumable"] = True
    else:
        full_meta["resumable"] = False
    # safetensors refuses tensors that share storage (``.to("cpu")`` of a CPU tensor is the same
    # tensor); a clone gives each its own.
    tensors = {k: v.clone() for k, v in tensors.items()}
    # The tensor bytes' sha256, embedded: binds the metadata (and the sidecar's copy of it) to
    # these weights, so editing the weights and the save_id together is still detected. The tensor
    # section does not depend on the metadata, so a first serialisation gives its bytes.
    full_meta["tensors_sha256"] = hashlib.sha256(_tensor_bytes(st_save(tensors))).hexdigest()
    blob = st_save(tensors, metadata={"digitnet": json.dumps(full_meta)})
    sha = hashlib.sha256(blob).hexdigest()
    with atomic_write(path, "wb") as fh:
        fh.write(blob)
    side = {k: v for k, v in full_meta.items() if k != "train_state"}
    side["sha256"] = sha
    side["weights_file"] = path.name
    with atomic_write(sidecar_path(path), "w") as fh:
        fh.write(json.dumps(side, indent=2) + "\n")
    return path


# ---------------------------------------------------------------------------- reading
#
# Order of the checks, for any file: the file (regular, size) -> the container (what the first
# bytes say it is) -> the header (schema) -> the metadata (schema, model arguments, parameter
# count counted on the meta device) -> the tensor table (names, shapes, dtypes against the model
# built on the meta device) -> only then the tensor bytes are decoded, checked (finite, sane
# magnitudes, BatchNorm variances >= 0) and copied into a model of the right size.

MAX_HEADER_BYTES = 16 << 20  # a safetensors header of our models is a few KB
MAX_SIDECAR_BYTES = 16 << 20
MAX_PT_UNCOMPRESSED = 256 << 20  # a .pt archive's members, uncompressed (MAX_PARAMS float32 fits)
MAX_ABS_WEIGHT = 1e6  # trained digit models stay below ~100; 1e38 is sabotage or a broken run
MAX_JSON_DEPTH = 64  # our metadata nests 3 deep; deeper JSON is refused before json.loads
_ST_DTYPES = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"}
INPUT_KINDS = ("standardize", "raw255", "unit")


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


def _container(data: bytes) -> str:
    """What the first bytes say the file is: 'zip' (torch.save), 'pickle' (legacy torch.save),
    'safetensors' or 'unknown'."""
    if data[:4] == b"PK\x03\x04":
        return "zip"
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if len(data) >= 10 and data[8:9] == b"{":
        return "safetensors"
    return "unknown"


def _describe(data: bytes) -> str:
    head = data[:8]
    known = [
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"\x1f\x8b", "a gzip file"),
        (b"%PDF", "a PDF document"),
        (b"\x08\x01\x12", "an ONNX model"),
        (b"ONNX", "an ONNX model"),
    ]
    for magic, what in known:
        if head.startswith(magic):
            return what
    if head.lstrip()[:1] in (b"{", b"[", b"<"):
        return "a text file"
    return "first bytes " + head.hex(" ")


def _read_header(path: Path, data: bytes) -> dict[str, Any]:
    if len(data) == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes)")
    kind = _container(data)
    if kind in ("zip", "pickle"):
        raise CheckpointError(
            f"{path}: is a PyTorch (torch.save) file, not a safetensors checkpoint"
        )
    if len(data) < 8:
        raise CheckpointError(f"{path}: not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise CheckpointError(
            f"{path}: corrupt safetensors header: it claims {n} bytes but the file has {len(data) - 8} after the length field"
        )
    if n > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{path}: corrupt safetensors header: {n:,} bytes (limit {MAX_HEADER_BYTES:,})"
        )
    if kind == "unknown":
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({_describe(data)})")
    header = _json(path, data[8 : 8 + n], "safetensors header")
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    md = header.get("__metadata__", {})
    if md is not None and (
        not isinstance(md, dict) or not all(isinstance(v, str) for v in md.values())
    ):
        raise CheckpointError(
            f"{path}: corrupt safetensors header: __metadata__ must map names to strings"
        )
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("shape"), list)
            and all(type(d) is int and 0 <= d < 1 << 40 for d in entry["shape"])
        ):
            raise CheckpointError(
                f"{path}: corrupt safetensors header: bad entry for tensor {name[:60]!r}"
            )
        if entry["dtype"] not in _ST_DTYPES:
            raise CheckpointError(
                f"{path}: tensor {name[:60]!r} has dtype {entry['dtype'][:20]}, which a digit model "
                f"does not use (allowed: {', '.join(sorted(_ST_DTYPES))})"
            )
    return header


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's metadata (embedded copy, schema-checked), without loading the weights."""
    p = Path(path)
    data = _read_bytes(p)
    header = _read_header(p, data)
    return _embedded_meta(p, header)


def _embedded_meta(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    raw = (header.get("__metadata__") or {}).get("digitnet")
    if raw is None:
        return {}
    meta = _json(path, raw, "digitnet metadata in the safetensors header")
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{path}: corrupt digitnet metadata in the safetensors header (not a JSON object)"
        )
    if meta:
        check_metadata(path, meta)
    return meta


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
    from .errors import UsageError
    from .models._registry import MAX_PARAMS, estimate_params

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


def _read_bytes(p: Path) -> bytes:
    from ._io import read_user_file

    return read_user_file(p, error=CheckpointError, max_bytes=MAX_BYTES, what="checkpoint")


def _meta_model(name: str, args: dict[str, Any]):
    """The model on torch's meta device: its state_dict's names, shapes and dtypes, no memory."""
    import torch

    from .models import create_model

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


def _tensor_bytes(data: bytes) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    return data[8 + n :]


def _check_sidecar(p: Path, data: bytes, meta: dict[str, Any]) -> None:
    """Tampering checks. The sidecar's sha256 covers the whole file when its save_id is the
    embedded one (a sidecar with another save_id is a stale copy left by a crash between the two
    renames). The embedded ``tensors_sha256`` (and the sidecar's copy of it) covers the tensor
    bytes themselves, so editing the embedded save_id no longer hides altered weights."""
    from ._io import read_user_file
    from .errors import DigitnetError

    side = sidecar_path(p)
    side_meta: Any = None
    if side.exists():
        try:
            side_meta = _json(
                p,
                read_user_file(side, error=CheckpointError, max_bytes=MAX_SIDECAR_BYTES),
                "sidecar",
            )
        except DigitnetError:
            side_meta = None  # a broken sidecar is only a broken copy; the embedded metadata rules
    if (
        isinstance(side_meta, dict)
        and side_meta.get("save_id") == meta.get("save_id")
        and "sha256" in side_meta
    ):
        actual = hashlib.sha256(data).hexdigest()
        if side_meta["sha256"] != actual:
            raise CheckpointError(
                f"{p}: sha256 {actual[:12]}... does not match {side.name} ({str(side_meta['sha256'])[:12]}...): the weights were altered or corrupted"
            )
    wanted = meta.get("tensors_sha256")
    if isinstance(wanted, str):
        actual = hashlib.sha256(_tensor_bytes(data)).hexdigest()
        if actual != wanted:
            raise CheckpointError(
                f"{p}: the tensor data's sha256 {actual[:12]}... does not match the one recorded "
                f"at save time ({wanted[:12]}...): the weights were altered or corrupted"
            )


def _load_safetensors(
    p: Path, data: bytes | None = None, *, model=None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decode a safetensors file. With ``model`` (a meta-device model) the tensor table is checked
    against it before any tensor is decoded."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    if data is None:
        data = _read_bytes(p)
    header = _read_header(p, data)
    meta = _embedded_meta(p, header)
    if meta:
        if model is None:
            model = _meta_model(meta["model"], meta.get("model_args") or {})
        _check_table(p, header, model)
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError, MemoryError) as exc:
        raise CheckpointError(
            f"{p}: corrupt safetensors file: {(str(exc).splitlines() or [type(exc).__name__])[0]}"
        ) from None
    _check_sidecar(p, data, meta)
    return tensors, meta


def _check_pt_archive(p: Path, data: bytes) -> None:
    """A torch.save zip: refuse by the members' uncompressed sizes, before torch inflates them
    (a 1 MB deflated member can hold a 1 GB tensor of zeros)."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(
            f"{p}: not a PyTorch checkpoint: broken zip archive ({str(exc)[:80]})"
        ) from None
    total = sum(i.file_size for i in infos)
    if len(infos) > 100_000 or total > MAX_PT_UNCOMPRESSED:
        raise CheckpointError(
            f"{p}: its archive unpacks to {total:,} bytes in {len(infos):,} members, too large "
            f"for a digit model (limit {MAX_PT_UNCOMPRESSED:,} bytes); refused before unpacking"
        )


_TORCH_FLOATS = ("float32", "float16", "bfloat16", "float64")
_TORCH_INTS = ("int64", "int32", "int16", "int8", "uint8", "bool")


def _check_plain_tensor(p: Path, k: str, t: Any) -> None:
    import torch

    if t.layout != torch.strided:
        raise CheckpointError(
            f"{p}: tensor {k[:60]!r} is stored as {str(t.layout).removeprefix('torch.')}; "
            "only dense tensors are accepted"
        )
    if t.device.type != "cpu":
        raise CheckpointError(
            f"{p}: tensor {k[:60]!r} is on device {t.device.type!r} and holds no data"
        )
    dt = str(t.dtype).removeprefix("torch.")
    if dt not in _TORCH_FLOATS + _TORCH_INTS:
        raise CheckpointError(
            f"{p}: tensor {k[:60]!r} has dtype {dt}, which a digit model does not use"
        )


def _load_torch_file(p: Path, data: bytes | None = None) -> dict[str, Any]:
    """A plain PyTorch state_dict (.pt/.pth), read with ``weights_only=True`` (no code runs)."""
    import io
    import pickle

    import torch

    if data is None:
        data = _read_bytes(p)  # regular file, size checks with clear messages
    kind = _container(data)
    if kind == "unknown":
        raise CheckpointError(
            f"{p}: not a PyTorch checkpoint: neither a torch.save zip archive nor a pickle "
            f"({_describe(data)})"
        )
    if kind == "zip":
        _check_pt_archive(p, data)
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message opens with paragraphs about its weights_only default and advice to
        # re-run with weights_only=False (the unsafe thing); the line worth showing names what
        # the file asked to import ("Trying to load unsupported GLOBAL posix.mkdir ..." in torch
        # 2.13, "Unsupported global: GLOBAL ..." in earlier versions).
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        named = [ln for ln in lines if "GLOBAL" in ln or "WeightsUnpickler error" in ln]
        first = (named or lines or ["unsafe pickle"])[0].removeprefix("WeightsUnpickler error: ")
        raise CheckpointError(
            f"{p}: refused: the file needs more than plain weights to load (it may run code): {first[:160]}"
        ) from None
    except MemoryError:
        raise CheckpointError(f"{p}: not enough memory to unpack this PyTorch file") from None
    except Exception as exc:  # noqa: BLE001
        # Only torch's unpickler runs in this block: any exception (RuntimeError, EOFError,
        # struct.error, ...) means the file is broken, not a bug of ours.
        msg = (str(exc).splitlines() or [""])[0] or type(exc).__name__
        raise CheckpointError(f"{p}: not a PyTorch checkpoint: {msg[:160]}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(v, torch.Tensor) for v in obj.values())
    ):
        raise CheckpointError(
            f"{p}: not a state_dict (expected a mapping of parameter names to tensors)"
        )
    for k, v in obj.items():
        _check_plain_tensor(p, str(k), v)
    return obj


def _match_model(p: Path, tensors: dict[str, Any], model_name: str | None):
    """Find the registered model whose parameter names (or, failing that, shapes in order) fit."""
    from .models import create_model, list_models

    names = [model_name] if model_name else list_models()
    for name in names:
        model = create_model(name)
        ref = model.state_dict()
        if set(ref) == set(tensors) and all(
            tuple(ref[k].shape) == tuple(tensors[k].shape) for k in ref
        ):
            return model, tensors
    for name in names:  # same layers under other names (someone else's training script)
        model = create_model(name)
        ref = model.state_dict()
        if len(ref) == len(tensors) and all(
            tuple(a.shape) == tuple(b.shape) for a, b in zip(ref.values(), tensors.values())
        ):
            return model, dict(zip(ref.keys(), tensors.values()))
    wanted = f"model {model_name!r}" if model_name else "any registered model"
    raise CheckpointError(
        f"{p}: its {len(tensors)} tensors do not match {wanted} (names and shapes differ)"
    )


def load_checkpoint(
    path: str | os.PathLike[str],
    device: str = "cpu",
    model_name: str | None = None,
    num_classes: int | None = 10,
):
    """Load a checkpoint into its model; return ``(model in eval mode, metadata)``.

    What the file is comes from its first bytes, not its name: our ``.safetensors`` files (model
    rebuilt from the schema-checked metadata), bare safetensors state_dicts, and ``torch.save``
    files (read with ``torch.load(weights_only=True)`` and matched to a registered model).
    ``num_classes`` (10 for digits; ``None`` accepts any) is checked before the weights are read.
    """
    from .models import create_model

    p = Path(path)
    data = _read_bytes(p)
    if _container(data) in ("zip", "pickle") or (
        p.suffix.lower() in (".pt", ".pth", ".bin") and _container(data) == "unknown"
    ):
        tensors = _load_torch_file(p, data)
        model, tensors = _match_model(p, tensors, model_name)
        meta: dict[str, Any] = {
            "model": model.model_name,
            "model_args": _asdict(model.config),
            # A foreign state_dict says nothing of its input scaling; the course report's cnn.pth
            # was trained on raw 0..255 pixels, everything else we know of on standardised input.
            "input": {"kind": "raw255"} if model.model_name == "course" else dict(_DEFAULT_INPUT),
            "source": "pytorch-state-dict",
        }
    else:
        header = _read_header(p, data)
        meta = _embedded_meta(p, header)
        if not meta:
            # A bare safetensors state_dict from elsewhere: match it like a .pt file.
            tensors, _ = _load_safetensors(p, data)
            model, tensors = _match_model(p, tensors, model_name)
            meta = {
                "model": model.model_name,
                "model_args": _asdict(model.config),
                "input": dict(_DEFAULT_INPUT),
                "source": "safetensors-state-dict",
            }
        else:
            ghost = _meta_model(meta["model"], meta.get("model_args") or {})
            _check_classes(p, ghost, num_classes)
            tensors, meta = _load_safetensors(p, data, model=ghost)
            try:
                model = create_model(meta["model"], **(meta.get("model_args") or {}))
            except Exception as exc:  # noqa: BLE001  (the schema passed; anything left is the file's)
                raise CheckpointError(
                    f"{p}: cannot rebuild model {meta['model']!r}: {exc}"
                ) from None
        tensors = {k: v for k, v in tensors.items() if not k.startswith(TRAIN_PREFIX)}
    _check_classes(p, model, num_classes)
    _validate_and_load(p, model, tensors)
    model.to(device).eval()
    return model, meta


def _check_classes(p: Path, model, num_classes: int | None) -> None:
    k = getattr(getattr(model, "config", None), "num_classes", None)
    if num_classes is not None and k is not None and k != num_classes:
        raise CheckpointError(
            f"{p}: model {model.model_name!r} has a {k}-class head; reading digits needs "
            f"{num_classes} classes"
        )


def _asdict(cfg) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(cfg)


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


def load_training_state(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """For ``--resume``: ``(model tensors, train-state tensors, metadata)`` of a resumable checkpoint."""
    p = Path(path)
    data = _read_bytes(p)
    if _container(data) in ("zip", "pickle"):
        raise CheckpointError(
            f"{p}: is a PyTorch (torch.save) file, not a digitnet training checkpoint; "
            "resume from a run's last.safetensors"
        )
    header = _read_header(p, data)
    meta = _embedded_meta(p, header)
    if not meta:
        raise CheckpointError(f"{p}: not a digitnet checkpoint, cannot resume from it")
    if not meta.get("resumable"):
        raise CheckpointError(
            f"{p}: holds final weights only, not a resumable training state (use the run's last.safetensors)"
        )
    tensors, meta = _load_safetensors(p, data)
    model_t = {k: v for k, v in tensors.items() if not k.startswith(TRAIN_PREFIX)}
    state_t = {k[len(TRAIN_PREFIX) :]: v for k, v in tensors.items() if k.startswith(TRAIN_PREFIX)}
    check_weights(p, model_t)
    return model_t, state_t, meta


def json_safe(obj: Any) -> Any:
    """Floats that JSON cannot hold (NaN, inf) become None; used for metrics in metadata."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
