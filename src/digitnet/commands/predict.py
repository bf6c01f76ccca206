"""``digitnet predict``: read the digits in people's own images (files, folders, globs).

The reading itself is ``digitnet.preprocess.read_files`` (the GUI's folder reading uses it too)
and the model comes from ``digitnet.inference.load_predictor``; this module is the command's
flags and output. By default the bundled model runs with ONNX Runtime and torch is never
imported; the model loads only once some image was read, so a bad path fails fast.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

NAME = "predict"
HELP = "read the digits in your own images (files, folders, globs)"

__all__ = ["add_arguments", "run"]

# Without --min-confidence, digits read below this are marked LOW (and still shown).
_LOW = 0.5

# The listing and label rules live with the reader (one rule for the CLI and the GUI); they
# are looked up there on first use, so that building the CLI's parser (every command) does not
# import numpy and scipy.
_FROM_READER = {
    "IMAGE_EXTENSIONS": "IMAGE_EXTENSIONS",
    "_PARALLEL_FROM": "_PARALLEL_FROM",
    "expand_inputs": "list_images",
    "label_from_name": "label_from_name",
    "list_images": "list_images",
}


def __getattr__(name: str) -> Any:
    if name in _FROM_READER:
        from ..preprocess import _files

        return getattr(_files, _FROM_READER[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
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


def _jobs(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= v <= 256:
        raise argparse.ArgumentTypeError(f"must be between 1 and 256, got {text}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="image files (PNG, JPEG, BMP, GIF, TIFF, WebP), folders (searched "
        "recursively) or glob patterns",
    )
    p.add_argument(
        "--model",
        metavar="CHECKPOINT",
        help="checkpoint to use (default: the bundled model); a .onnx file from "
        "'digitnet export' runs with ONNX Runtime",
    )
    p.add_argument(
        "--backend",
        choices=["torch", "onnx"],
        default=None,
        help="run the network with PyTorch or with ONNX Runtime (no torch import). "
        "Default: onnx for a .onnx model and for the bundled model (when "
        "onnxruntime imports), torch for other checkpoints",
    )
    p.add_argument(
        "--single",
        action="store_true",
        help="each image is one digit: no segmentation into several digits",
    )
    p.add_argument(
        "--top-k",
        type=_top_k,
        default=3,
        metavar="K",
        help="alternatives listed per digit (default 3)",
    )
    p.add_argument(
        "--min-confidence",
        type=_fraction,
        default=None,
        metavar="P",
        help="reject option: a digit read with a probability below P is shown as "
        "'?' in the text (its best guess and alternatives stay in --json). "
        f"Without it, digits below {_LOW:g} are marked LOW",
    )
    p.add_argument(
        "--labels-from-names",
        action="store_true",
        help="true label from the file name's leading digits (7.png, 2026-form.png) "
        "or a parent folder named by the label; prints accuracy",
    )
    p.add_argument(
        "--save-preprocessed",
        metavar="DIR",
        help="write the 28x28 inputs the network saw as PNG files into DIR",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per input per line")
    p.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        metavar="N",
        help="processes decoding and preprocessing images, this one included "
        "(default: CPU count, at most 4; 1 = this process only)",
    )


# --------------------------------------------------------------------------- work


def _load_network(model: str | None, backend: str | None) -> Any:
    """The predictor for ``--model`` / ``--backend`` (None: "auto").

    One intra-op thread: the network's batches here are small (one image's digits, or chunks
    while worker processes decode on the other cores), and on a busy 2-core machine torch's
    thread pool spends more time waiting for a core than computing (about 3 ms per image with
    one thread, 70 ms with two, measured while other work ran).
    """
    from ..inference import load_predictor

    return load_predictor(model, backend=backend or "auto", threads=1)


def _check_save_folder(
    folder: str, paths: list[str], entries: list[tuple[str, str | None]]
) -> Path:
    """``--save-preprocessed DIR``, checked before any image is read: never an input folder
    or the folder of an input file (its outputs could overwrite the user's images), and
    writable (a probe file is created and removed)."""
    import tempfile

    from .._io import ensure_dir
    from ..errors import OutputError, UsageError

    out = Path(folder)
    where = out.resolve()
    for raw in paths:
        if Path(raw).is_dir() and Path(raw).resolve() == where:
            raise UsageError(
                f"--save-preprocessed {folder}: is an input folder; its images "
                "would be overwritten (choose another folder)"
            )
    for path, err in entries:
        if err is None and Path(path).resolve().parent == where:
            raise UsageError(
                f"--save-preprocessed {folder}: holds the input {path}; it could "
                "be overwritten (choose another folder)"
            )
    ensure_dir(out)
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".digitnet-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"--save-preprocessed {folder}: cannot write there: {exc.strerror or exc}"
        ) from None
    return out


def _png_bytes(img28) -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.round(img28 * 255).astype(np.uint8), "L").save(buf, "PNG")
    return buf.getvalue()


def _save_inputs(out: Path, readings, inputs: set[Path]) -> None:
    from .._io import write_bytes
    from ..errors import OutputError

    used: set[str] = set()
    for r in readings:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(r.source).stem) or "image"
        for k, d in enumerate(r.digits):
            name, n = f"{stem}_{k}.png", 2
            while name in used:
                name, n = f"{stem}-{n}_{k}.png", n + 1
            used.add(name)
            if (out / name).resolve() in inputs:  # (checked before reading; never overwrite)
                raise OutputError(f"{out / name}: is an input image; not overwritten")
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
        print(
            f"{'image':<{w}}  {'label':<8}  {'read':<8}  {'':5}  digits (confidence, alternatives)"
        )
    for i, r in enumerate(readings):
        if not r.ok:
            continue
        text = r.text if r.text else "-"
        detail = _digits_summary(r, min_conf) if r.digits else (r.message or "no digit found")
        src = r.source if len(r.source) <= w else "..." + r.source[-(w - 3) :]
        if labels is None:
            print(f"{src:<{w}}  {text:<8}  {detail}")
        else:
            lab = labels[i]
            verdict = "" if lab is None else ("right" if r.text == lab else "WRONG")
            print(f"{src:<{w}}  {lab or '?':<8}  {text:<8}  {verdict:<5}  {detail}")
    low = sum(d.low_confidence for r in ok for d in r.digits)
    rejected = sum(d.rejected for r in ok for d in r.digits)
    if rejected:
        print(f"{rejected} digit(s) read with confidence below {min_conf:g} are shown as ?")
    elif low:
        print(f"{low} digit(s) read with confidence below {min_conf:g} are marked LOW")


def _accuracy_line(readings, labels: list[str | None]) -> str | None:
    scored = [(r, lab) for r, lab in zip(readings, labels, strict=True) if r.ok and lab is not None]
    if not scored:
        return None
    right = sum(r.text == lab for r, lab in scored)
    digits = [(r, lab) for r, lab in scored if len(lab) == 1]
    line = f"accuracy: {right}/{len(scored)} = {100.0 * right / len(scored):.1f}% (whole text)"
    if digits and len(digits) != len(scored):
        dr = sum(r.text == lab for r, lab in digits)
        line += f"; single digits {dr}/{len(digits)} = {100.0 * dr / len(digits):.1f}%"
    unlabeled = sum(1 for r, lab in zip(readings, labels, strict=True) if r.ok and lab is None)
    if unlabeled:
        line += f"; {unlabeled} image(s) without a label in the name not scored"
    return line


def run(args: argparse.Namespace) -> int:
    from ..inference import choose_backend
    from ..preprocess import Reading, label_from_name, list_images, read_files, reading_to_json

    backend = getattr(args, "backend", None)
    choose_backend(args.model, backend or "auto")  # a mismatch fails before any image is read
    entries = list_images(list(args.paths))
    jobs = args.jobs if args.jobs is not None else min(4, os.cpu_count() or 1)
    save_to = (
        _check_save_folder(args.save_preprocessed, list(args.paths), entries)
        if args.save_preprocessed
        else None
    )
    reject = args.min_confidence
    min_conf = _LOW if reject is None else reject
    with_labels = bool(args.labels_from_names)

    readings: list[Reading] = []
    labels: list[str | None] = []
    interrupted = False
    stream = read_files(
        [p for p, _ in entries],
        lambda: _load_network(args.model, backend),
        jobs=jobs,
        single=args.single,
        top_k=args.top_k,
        min_confidence=min_conf,
        reject_below=reject,
    )
    try:
        for r in stream:
            readings.append(r)
            labels.append(label_from_name(r.source) if with_labels and r.ok else None)
            if args.json:
                # One line per image as it is read: an interrupted run keeps what it printed.
                print(
                    json.dumps(
                        reading_to_json(r, label=labels[-1], with_label=with_labels),
                        allow_nan=False,
                    ),
                    flush=len(readings) % 64 == 0,
                )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stream.close()
    if not args.json:
        _print_table(readings, labels if with_labels else None, min_conf)
        if with_labels:
            line = _accuracy_line(readings, labels)
            print(line or "accuracy: no image has a label in its name or folder")
    sys.stdout.flush()
    if interrupted:
        print(
            f"digitnet predict: interrupted after {len(readings)} of {len(entries)} "
            "image(s); the readings above are those made",
            file=sys.stderr,
        )
        return 130
    # An image that could not be read, and one with no digit on it (blank, only light and
    # shadow, marks too small), each get a line on stderr and exit status 1; the readings of
    # the others are printed (and saved) all the same.
    for r in readings:
        if not r.ok:
            print(f"digitnet predict: {r.error}", file=sys.stderr)
        elif not r.digits:
            print(f"digitnet predict: {r.source}: {r.message or 'no digit found'}", file=sys.stderr)
    if save_to is not None:
        inputs = {Path(p).resolve() for p, err in entries if err is None}
        _save_inputs(save_to, [r for r in readings if r.ok], inputs)
    return 1 if any(not r.ok or not r.digits for r in readings) else 0
