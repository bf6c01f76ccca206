"""Coverage-guided fuzzing of the checkpoint and config readers with atheris.

The property: whatever bytes the user hands over, the readers return (a model, metadata, a
config) or raise ``DigitnetError`` with a one-line message naming the file. Any other exception,
a multi-line message, or libFuzzer's memory/time limits being hit is a finding. Not run in CI;
see README.md in this folder.

The first byte of each input chooses the target (``byte % 4``):

0. the bytes are a whole file named ``x.safetensors`` -> ``read_metadata`` and ``load_checkpoint``
1. the bytes are the digitnet metadata JSON inside a valid safetensors file of the ``fast`` model
   (its real tensors) -> ``load_checkpoint``: the schema, the parameter-count estimate, the tensor
   table check and the weight checks, all behind well-formed framing
2. the bytes are the safetensors header JSON of that file (the tensor table itself)
3. the bytes are a JSON (high bit clear) or TOML (high bit set) training config
   -> ``resolve_config``
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["digitnet"]):
    from digitnet.checkpoint import load_checkpoint, read_metadata, save_checkpoint
    from digitnet.engine.config import resolve_config
    from digitnet.errors import DigitnetError

_DIR = tempfile.mkdtemp(prefix="fuzz_ckpt.")
_CKPT = os.path.join(_DIR, "x.safetensors")
_BASE: bytes = b""


def _base() -> bytes:
    """A valid checkpoint of the small ``fast`` model, made once."""
    global _BASE
    if not _BASE:
        import torch

        from digitnet.models import create_model

        torch.manual_seed(0)
        m = create_model("fast").eval()
        meta = {
            "model": "fast",
            "model_args": dataclasses.asdict(m.config),
            "input": {"kind": "standardize", "mean": 0.1307, "std": 0.3081},
        }
        p = save_checkpoint(os.path.join(_DIR, "base.safetensors"), m, meta)
        _BASE = p.read_bytes()
        os.unlink(p.with_suffix(".json"))
    return _BASE


def _with_header(raw: bytes) -> bytes:
    base = _base()
    (n,) = struct.unpack("<Q", base[:8])
    return struct.pack("<Q", len(raw)) + raw + base[8 + n :]


def _with_meta(text: str) -> bytes:
    base = _base()
    (n,) = struct.unpack("<Q", base[:8])
    header = json.loads(base[8 : 8 + n])
    header["__metadata__"]["digitnet"] = text
    return _with_header(json.dumps(header).encode())


def _check_message(exc: DigitnetError, name: str) -> None:
    message = str(exc)
    if "\n" in message or not message.startswith(name):
        raise RuntimeError(f"badly formed error message: {message!r}") from None


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:]
    target = mode % 4
    if target == 3:
        path = os.path.join(_DIR, "c.toml" if mode & 0x80 else "c.json")
        with open(path, "wb") as fh:
            fh.write(body)
        try:
            resolve_config(config_file=path)
        except DigitnetError as exc:
            if "\n" in str(exc):
                raise RuntimeError(f"multi-line message: {str(exc)!r}") from None
        return
    if target == 0:
        blob = body
    elif target == 1:
        blob = _with_meta(body.decode("utf-8", "replace"))
    else:
        blob = _with_header(body)
    with open(_CKPT, "wb") as fh:
        fh.write(blob)
    try:
        read_metadata(_CKPT)
    except DigitnetError as exc:
        _check_message(exc, _CKPT)
    try:
        load_checkpoint(_CKPT)
    except DigitnetError as exc:
        _check_message(exc, _CKPT)


def write_seeds(folder: str) -> None:
    """Valid starting inputs for each target."""
    os.makedirs(folder, exist_ok=True)
    base = _base()
    (n,) = struct.unpack("<Q", base[:8])
    header = json.loads(base[8 : 8 + n])
    seeds = {
        "file": bytes([0]) + base,
        "meta": bytes([1]) + header["__metadata__"]["digitnet"].encode(),
        "header": bytes([2]) + base[8 : 8 + n],
        "config_json": bytes([3]) + b'{"epochs": 2, "lr": 0.1, "augment": {"rotate": 5}}',
        "config_toml": bytes([0x83]) + b"epochs = 2\nlr = 0.1\n[augment]\nrotate = 5\n",
    }
    for name, seed in seeds.items():
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(seed)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        write_seeds(sys.argv[2])
        return
    _base()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
