"""Reading image files and folders: one listing rule, one label rule, one reader.

- ``list_images(paths)``: which files a list of files, folders and glob patterns stands for.
  Folders are searched recursively (sorted; hidden files and folders skipped) for the
  extensions in ``IMAGE_EXTENSIONS``; a file named explicitly is tried whatever its extension.
- ``label_from_name(path)``: the true label a file's name gives (``7_anna.png`` -> "7",
  ``2026-form.png`` -> "2026", ``digits/7/anna.png`` -> "7").
- ``read_files(paths, predictor, jobs=...)``: one ``Reading`` per listed image, yielded in that
  order, decoding in worker processes when there are many.

``digitnet predict`` and the GUI's folder reading both use these, so one folder reads the same
in both.
"""

from __future__ import annotations

import glob
import os
import re
import signal
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import Any, Union, cast

from .._io import missing_reason
from ..errors import ImageError
from ._analyse import prepare
from ._reading import ProbaPredictor, Reading, classify

__all__ = ["IMAGE_EXTENSIONS", "label_from_name", "list_images", "read_files"]

# Extensions picked up when a folder or glob is expanded; a file named explicitly is tried
# whatever its extension (Pillow decides by content).
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".gif", ".tif", ".tiff", ".webp"}
)
# Below this many images the work is done in this process; above it, image decoding and
# preprocessing run in worker processes too. (Starting a worker costs about 0.3 s: worth it
# from a few dozen images on.)
_PARALLEL_FROM = 48
# Images prepared together by one process, whose digits then go to the network in one batch.
_CHUNK = 16

PathLike = Union[str, "os.PathLike[str]"]


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _walk(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in sorted(files) if _is_image_name(Path(f)))
    return found


def list_images(paths: Iterable[PathLike]) -> list[tuple[str, str | None]]:
    """``(path, error)`` per image to read, in the order given; folders and globs expanded.

    ``error`` is None for an image to read, else the one-line reason the entry gives nothing
    (no such file or folder, a folder without images, a pattern that matches nothing).
    """
    out: list[tuple[str, str | None]] = []
    for raw_path in paths:
        raw = os.fspath(raw_path)
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
                out.append(
                    (raw, f"{raw}: folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
                )
            out.extend((str(f), None) for f in files)
        elif p.exists():
            out.append((raw, None))
        else:
            out.append((raw, f"{raw}: {missing_reason(p)}"))
    return out


_LEADING = re.compile(r"^(\d+)")


def label_from_name(path: PathLike) -> str | None:
    """``7.png`` -> "7", ``7_anna.png`` -> "7", ``2026-form.png`` -> "2026",
    ``digits/7/anna.png`` -> "7" (a parent folder named by the label), else None."""
    p = Path(path)
    m = _LEADING.match(p.stem)
    if m:
        return m.group(1)
    if p.parent.name.isdigit():
        return p.parent.name
    return None


def _prepare_chunk(paths: list[str], single: bool, deskew_digits: bool = False) -> list[Any]:
    """Images -> ``Prepared`` each, or the error line (a string); runs in workers too."""
    out: list[Any] = []
    for path in paths:
        try:
            out.append(prepare(path, single=single, name=path, deskew_digits=deskew_digits))
        except ImageError as exc:
            out.append(str(exc))
    return out


def _worker_init() -> None:
    # Ctrl-C goes to the whole process group: the main process stops the reading and prints
    # what it has; workers must not die with tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _blocks(
    paths: list[str],
    single: bool,
    deskew_digits: bool,
    jobs: int,
    read_block: Callable[[list[Any], list[str]], list[Reading]],
) -> Generator[list[Reading], None, None]:
    """Prepare ``paths`` in chunks, hand each to ``read_block(prepared, paths)`` (the network)
    and yield the readings chunk by chunk, in order.

    With ``jobs`` > 1, ``jobs - 1`` worker processes prepare chunks from the front of the list
    while this process, between network calls, prepares chunks from the back that no worker
    has taken yet: every process both decodes and reads, and no process idles while the
    others work (this process would otherwise wait for the workers' start-up).
    """
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    if jobs <= 1 or len(paths) < _PARALLEL_FROM:
        for c in chunks:
            yield read_block(_prepare_chunk(c, single, deskew_digits), c)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # "spawn": workers must not inherit a half-initialised torch (fork after torch's thread
    # pools start can deadlock), and it behaves the same on Linux, macOS and Windows.
    pool = ProcessPoolExecutor(
        max_workers=jobs - 1, mp_context=mp.get_context("spawn"), initializer=_worker_init
    )
    try:
        futures = [pool.submit(_prepare_chunk, c, single, deskew_digits) for c in chunks]
        done: dict[int, list[Reading]] = {}  # chunks from the back, read ahead of their turn
        lo, hi = 0, len(chunks) - 1
        while lo <= hi:
            # cancel() succeeds only for a chunk no worker has taken: then it is ours.
            if not futures[lo].done() and futures[hi].cancel():
                done[hi] = read_block(_prepare_chunk(chunks[hi], single, deskew_digits), chunks[hi])
                hi -= 1
            else:
                yield read_block(futures[lo].result(), chunks[lo])
                lo += 1
        for i in range(lo, len(chunks)):
            yield done.pop(i)
    finally:
        pool.shutdown(cancel_futures=True)


def read_files(
    paths: Iterable[PathLike],
    predictor: ProbaPredictor | Callable[[], ProbaPredictor],
    *,
    jobs: int = 1,
    single: bool = False,
    top_k: int = 3,
    min_confidence: float = 0.0,
    reject_below: float | None = None,
    deskew_digits: bool = False,
) -> Generator[Reading, None, None]:
    """Read image files, folders and glob patterns; yield one ``Reading`` per entry of
    ``list_images(paths)``, in that order, as soon as it is read.

    ``predictor``: a ``Predictor`` (``digitnet.inference.load_predictor()``), or a function of
    no arguments returning one, called once when the first images are ready (so a model's
    import overlaps the workers' start-up). ``jobs``: processes decoding images, this one
    included (1 = this process only; worker processes are used from 48 images on).
    ``single``: each image is one digit. ``top_k``, ``min_confidence``, ``reject_below``: as
    ``classify``. An entry that cannot be read yields a ``Reading`` with ``error`` set; the
    others are still read. Stopping the iteration early (or Ctrl-C) stops the workers.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    entries = list_images(paths)
    todo = [p for p, err in entries if err is None]
    model: list[ProbaPredictor] = []

    def read_block(prepared: list[Any], names: list[str]) -> list[Reading]:
        if not model:
            # A predictor has predict_proba; anything else callable makes one.
            if hasattr(predictor, "predict_proba"):
                model.append(cast(ProbaPredictor, predictor))
            else:
                model.append(predictor())
        return classify(
            prepared,
            names,
            model[0],
            top_k=top_k,
            min_confidence=min_confidence,
            reject_below=reject_below,
        )

    blocks: Generator[list[Reading], None, None] = _blocks(
        todo, single, deskew_digits, jobs, read_block
    )
    readings = (r for block in blocks for r in block)
    try:
        for path, err in entries:
            yield Reading(path, error=err) if err is not None else next(readings)
    finally:
        blocks.close()  # stops the worker processes now, not when garbage-collected
