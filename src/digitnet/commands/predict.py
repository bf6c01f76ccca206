"""``digitnet predict``: read the digits in people's own images (files, folders, globs).

Heavy imports (torch, the model) happen inside ``run`` and only once some image was read, so a
bad path fails fast and ``digitnet predict one.png`` starts in about two seconds.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

NAME = "predict"
HELP = "read the digits in your own images (files, folders, globs)"

# Extensions picked up when a folder or glob is expanded; a file named explicitly is tried
# whatever its extension (Pillow decides by content).
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".gif", ".tif",
                    ".tiff", ".webp"}
# Below this many images the work is done in this process; above it, image decoding and
# preprocessing run in worker processes while this one imports torch and runs the network.
# (Starting a worker costs about 0.3 s: worth it from a few dozen images on.)
_PARALLEL_FROM = 48
# Images prepared together by one process, whose digits then go to the network in one batch.
_CHUNK = 16


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return v


def _top_k(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= v <= 10:
        raise argparse.ArgumentTypeError(f"must be between 1 and 10, got {text}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="image files (PNG, JPEG, BMP, GIF, TIFF, WebP), folders (searched "
                        "recursively) or glob patterns")
    p.add_argument("--model", metavar="CHECKPOINT",
                   help="checkpoint to use (default: the bundled model); a .onnx file from "
                        "'digitnet export' runs with ONNX Runtime")
    p.add_argument("--backend", choices=["torch", "onnx"], default=None,
                   help="run the network with PyTorch or with ONNX Runtime (no torch import). "
                        "Default: onnx for a .onnx model and for the bundled model when "
                        "onnxruntime is installed (pip install 'digitnet[onnx]'), else torch")
    p.add_argument("--single", action="store_true",
                   help="each image is one digit: no segmentation into several digits")
    p.add_argument("--top-k", type=_top_k, default=3, metavar="K",
                   help="alternatives listed per digit (default 3)")
    p.add_argument("--min-confidence", type=_fraction, default=0.5, metavar="P",
                   help="flag digits read with a probability below P (default 0.5)")
    p.add_argument("--labels-from-names", action="store_true",
                   help="true label from the file name's leading digits (7.png, 2026-form.png) "
                        "or a parent folder named by the label; prints accuracy")
    p.add_argument("--save-preprocessed", metavar="DIR",
                   help="write the 28x28 inputs the network saw as PNG files into DIR")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per input per line")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="processes decoding and preprocessing images, this one included "
                        "(default: CPU count, at most 4; 1 = this process only)")


# --------------------------------------------------------------------------- inputs


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _walk(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in sorted(files) if _is_image_name(Path(f)))
    return found


def expand_inputs(paths: list[str]) -> list[tuple[str, str | None]]:
    """``(path, error)`` per image to read, in the order given; folders and globs expanded."""
    out: list[tuple[str, str | None]] = []
    for raw in paths:
        p = Path(raw)
        if any(c in raw for c in "*?[") and not p.exists():
            matches = sorted(glob.glob(raw, recursive=True))
            if not matches:
                out.append((raw, f"{raw}: no files match this pattern"))
                continue
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    out.extend((str(f), None) for f in _walk(mp))
                elif _is_image_name(mp):
                    out.append((m, None))
            continue
        if p.is_dir():
            files = _walk(p)
            if not files:
                out.append((raw, f"{raw}: folder holds no images "
                                 f"({', '.join(sorted(IMAGE_EXTENSIONS))})"))
            out.extend((str(f), None) for f in files)
        elif p.exists():
            out.append((raw, None))
        else:
            out.append((raw, f"{raw}: no such file or folder"))
    return out


_LEADING = re.compile(r"^(\d+)")


def label_from_name(path: str) -> str | None:
    """``7.png`` -> "7", ``2026-form.png`` -> "2026", ``digits/7/anna.png`` -> "7", else None."""
    p = Path(path)
    m = _LEADING.match(p.stem)
    if m:
        return m.group(1)
    if p.parent.name.isdigit():
        return p.parent.name
    return None


# --------------------------------------------------------------------------- work


def _prepare_chunk(paths: list[str], single: bool) -> list[Any]:
    """Images -> ``Prepared`` each, or the error line (a string); runs in workers too."""
    from ..errors import ImageError
    from ..preprocess import prepare

    out: list[Any] = []
    for path in paths:
        try:
            out.append(prepare(path, single=single, name=path))
        except ImageError as exc:
            out.append(str(exc))
    return out


def _read_all(paths: list[str], single: bool, jobs: int, read_block) -> list[Any]:
    """Prepare ``paths`` in chunks and hand each chunk to ``read_block(prepared, paths)``
    (the network); the readings, in order.

    With ``jobs`` > 1, ``jobs - 1`` worker processes prepare chunks from the front of the list
    while this process, between network calls, prepares chunks from the back that no worker
    has taken yet: every process both decodes and reads, and no process idles while the
    others work (this process would otherwise wait for the workers' start-up).
    """
    chunks = [paths[i:i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    if jobs <= 1 or len(paths) < _PARALLEL_FROM:
        return [r for c in chunks for r in read_block(_prepare_chunk(c, single), c)]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # "spawn": workers must not inherit a half-initialised torch (fork after torch's thread
    # pools start can deadlock), and it behaves the same on Linux, macOS and Windows.
    pool = ProcessPoolExecutor(max_workers=jobs - 1, mp_context=mp.get_context("spawn"))
    try:
        futures = [pool.submit(_prepare_chunk, c, single) for c in chunks]
        out: list[Any] = [None] * len(chunks)
        lo, hi = 0, len(chunks) - 1
        while lo <= hi:
            # cancel() succeeds only for a chunk no worker has taken: then it is ours.
            if not futures[lo].done() and futures[hi].cancel():
                out[hi] = read_block(_prepare_chunk(chunks[hi], single), chunks[hi])
                hi -= 1
            else:
                out[lo] = read_block(futures[lo].result(), chunks[lo])
                lo += 1
        return [r for block in out for r in block]
    finally:
        pool.shutdown(cancel_futures=True)


def _onnx_runtime_available() -> bool:
    # Only whether it is installed: importing it (0.2 s) waits until the workers have started
    # (see run); an installed one that cannot be imported falls back to torch there.
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _backend(model: str | None, backend: str | None) -> str:
    """The backend asked for, or the one the model implies; a mismatch is a usage error.

    With no ``--model`` and no ``--backend``, the bundled model runs with ONNX Runtime when it
    is installed (the same weights, about 4x faster per digit and no torch import), else with
    PyTorch.
    """
    from ..errors import UsageError

    is_onnx = model is not None and Path(model).suffix.lower() == ".onnx"
    if backend is None:
        if model is None:
            from ..inference import bundled_onnx_path

            if bundled_onnx_path().is_file() and _onnx_runtime_available():
                return "onnx"
            return "torch"
        return "onnx" if is_onnx else "torch"
    if backend == "onnx" and model is not None and not is_onnx:
        raise UsageError("--backend onnx needs --model FILE.onnx (make one with: digitnet export "
                         "--format onnx --out FILE.onnx)")
    if backend == "torch" and is_onnx:
        raise UsageError(f"{model}: an ONNX model runs with --backend onnx, not torch")
    return backend


def _load_onnx_predictor(model: str | None):
    # export.py imports numpy and onnxruntime only: reading digits this way never imports
    # torch (tests/test_export.py checks sys.modules).
    from ..errors import CheckpointError
    from ..export import OnnxPredictor
    from ..inference import bundled_onnx_path

    if model is None:
        model = str(bundled_onnx_path())
        if not Path(model).is_file():
            raise CheckpointError(f"{model}: the bundled ONNX model is missing from this "
                                  "installation; use --backend torch")
    # One thread, as for torch below: batches are small, and worker processes use the cores.
    return OnnxPredictor.load(model, threads=1)


def _load_network(model: str | None, backend: str, chosen: bool):
    """The predictor for ``backend``; when ONNX Runtime was ``chosen`` by default (not asked
    for) but cannot be imported (a wheel for another CPU or Python), PyTorch instead."""
    from ..errors import UsageError

    if backend == "onnx":
        try:
            return _load_onnx_predictor(model)
        except UsageError:
            if not chosen:
                raise
    return _load_predictor(model)


def _load_predictor(model: str | None):
    import torch

    from ..inference import Predictor

    # One intra-op thread: the network's batches here are small (one image's digits, or chunks
    # while worker processes decode on the other cores), and on a busy 2-core machine torch's
    # thread pool spends more time waiting for a core than computing (about 3 ms per image
    # with one thread, 70 ms with two, measured while other work ran).
    torch.set_num_threads(1)
    return Predictor.load(model)


def _png_bytes(img28) -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.round(img28 * 255).astype(np.uint8), "L").save(buf, "PNG")
    return buf.getvalue()


def _save_inputs(folder: str, readings) -> None:
    from .._io import ensure_dir, write_bytes

    out = ensure_dir(folder)
    used: set[str] = set()
    for r in readings:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(r.source).stem) or "image"
        for k, d in enumerate(r.digits):
            name, n = f"{stem}_{k}.png", 2
            while name in used:
                name, n = f"{stem}-{n}_{k}.png", n + 1
            used.add(name)
            write_bytes(out / name, _png_bytes(d.image))


# --------------------------------------------------------------------------- output


def _digits_summary(r, min_conf: float) -> str:
    parts = []
    for d in r.digits:
        alts = ", ".join(f"{a} {p:.3f}" for a, p in d.top[1:])
        flag = " LOW" if d.low_confidence else ""
        parts.append(f"{d.digit} {d.confidence:.3f}{flag}" + (f" ({alts})" if alts else ""))
    return "; ".join(parts)


def _print_table(readings, labels: list[str | None] | None, min_conf: float) -> None:
    ok = [r for r in readings if r.ok]
    if not ok:
        return
    w = min(60, max(len(r.source) for r in ok))
    if labels is None:
        print(f"{'image':<{w}}  {'read':<8}  digits (confidence, alternatives)")
    else:
        print(f"{'image':<{w}}  {'label':<8}  {'read':<8}  {'':5}  "
              "digits (confidence, alternatives)")
    for i, r in enumerate(readings):
        if not r.ok:
            continue
        text = r.text if r.text else "-"
        detail = _digits_summary(r, min_conf) if r.digits else (r.message or "no digit found")
        src = r.source if len(r.source) <= w else "..." + r.source[-(w - 3):]
        if labels is None:
            print(f"{src:<{w}}  {text:<8}  {detail}")
        else:
            lab = labels[i]
            verdict = "" if lab is None else ("right" if r.text == lab else "WRONG")
            print(f"{src:<{w}}  {lab or '?':<8}  {text:<8}  {verdict:<5}  {detail}")
    low = sum(d.low_confidence for r in ok for d in r.digits)
    if low:
        print(f"{low} digit(s) read with confidence below {min_conf:g} are marked LOW")


def _accuracy_line(readings, labels: list[str | None]) -> str | None:
    scored = [(r, lab) for r, lab in zip(readings, labels) if r.ok and lab is not None]
    if not scored:
        return None
    right = sum(r.text == lab for r, lab in scored)
    digits = [(r, lab) for r, lab in scored if len(lab) == 1]
    line = f"accuracy: {right}/{len(scored)} = {100.0 * right / len(scored):.1f}% (whole text)"
    if digits and len(digits) != len(scored):
        dr = sum(r.text == lab for r, lab in digits)
        line += f"; single digits {dr}/{len(digits)} = {100.0 * dr / len(digits):.1f}%"
    unlabeled = sum(1 for r, lab in zip(readings, labels) if r.ok and lab is None)
    if unlabeled:
        line += f"; {unlabeled} image(s) without a label in the name not scored"
    return line


def run(args: argparse.Namespace) -> int:
    from ..preprocess import Reading, classify

    backend = _backend(args.model, getattr(args, "backend", None))
    inputs = expand_inputs(list(args.paths))
    todo = [p for p, err in inputs if err is None]
    jobs = args.jobs if args.jobs is not None else min(4, os.cpu_count() or 1)
    if jobs < 1:
        from ..errors import UsageError

        raise UsageError("--jobs must be at least 1")
    predictor = None
    by_default = args.model is None and getattr(args, "backend", None) is None

    def read_block(prepared: list[Any], paths: list[str]) -> list[Any]:
        # The network loads on first use, after the workers (if any) have started: torch's
        # import is the largest single cost of a run and overlaps with their decoding.
        nonlocal predictor
        if predictor is None:
            predictor = _load_network(args.model, backend, chosen=by_default)
        return classify(prepared, paths, predictor, top_k=args.top_k,
                        min_confidence=args.min_confidence)

    readings_ok = _read_all(todo, args.single, jobs, read_block) if todo else []
    by_path = iter(readings_ok)
    readings = [Reading(p, error=err) if err is not None else next(by_path) for p, err in inputs]
    labels = [label_from_name(r.source) if r.ok else None for r in readings] \
        if args.labels_from_names else None
    if args.save_preprocessed:
        _save_inputs(args.save_preprocessed, [r for r in readings if r.ok])
    if args.json:
        for i, r in enumerate(readings):
            obj = r.to_json()
            if labels is not None:
                obj["label"] = labels[i]
                obj["correct"] = None if labels[i] is None or not r.ok else r.text == labels[i]
            print(json.dumps(obj))
    else:
        _print_table(readings, labels, args.min_confidence)
        if labels is not None:
            line = _accuracy_line(readings, labels)
            print(line or "accuracy: no image has a label in its name or folder")
    for r in readings:
        if not r.ok:
            print(f"digitnet predict: {r.error}", file=sys.stderr)
    return 1 if any(not r.ok for r in readings) else 0
