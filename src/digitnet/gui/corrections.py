"""The user's corrections: labelled images kept in a folder (no Qt in here).

A correction is the image a reading came from, saved as ``<digits>_<timestamp>.<ext>`` (for
example ``7_20261201-201502-123.png``): the name carries the label by the same rule
``digitnet predict --labels-from-names`` and ``digitnet adapt`` read, so the folder can be
handed to either as it is.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import backend
from .backend import UsageError

__all__ = ["Correction", "CorrectionStore", "check_label"]

_LABEL = re.compile(r"^\d{1,32}$")
_NAME = re.compile(r"^(\d+)_(\d{8}-\d{6}-\d{3})(?:-\d+)?$")


@dataclass(frozen=True)
class Correction:
    path: Path
    label: str  # the digits the image shows
    stamp: str  # when it was saved, YYYYmmdd-HHMMSS-mmm


def check_label(text: str) -> str:
    """``text`` as a label (the digits the image shows); ``UsageError`` when it is not one."""
    t = text.strip()
    if not _LABEL.match(t):
        shown = t if len(t) <= 20 else t[:20] + "…"
        raise UsageError(f"correction {shown!r}: type the digits the image shows (0-9 only)")
    return t


def _mtime_ns(p: Path) -> int:
    try:
        return p.stat().st_mtime_ns
    except OSError:
        return 0


class CorrectionStore:
    """Corrections in ``folder`` (created on the first save)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _new_path(self, label: str, suffix: str) -> Path:
        t = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(t)) + f"-{int(t * 1000) % 1000:03d}"
        self.folder.mkdir(parents=True, exist_ok=True)
        p = self.folder / f"{label}_{stamp}{suffix}"
        n = 1
        while p.exists():  # two saves in one millisecond: never overwrite the first
            p = self.folder / f"{label}_{stamp}-{n}{suffix}"
            n += 1
        return p

    def add_png(self, label: str, png: bytes) -> Correction:
        """Keep a PNG image (a drawing) as showing ``label``."""
        label = check_label(label)
        p = self._new_path(label, ".png")
        backend.write_file(p, png)
        return self._entry(p)

    def add_file(self, label: str, source: str | Path) -> Correction:
        """Keep a copy of the image file ``source`` as showing ``label``."""
        label = check_label(label)
        src = Path(source)
        suffix = src.suffix.lower() if src.suffix.lower() in backend.IMAGE_SUFFIXES else ".png"
        p = self._new_path(label, suffix)
        try:
            shutil.copyfile(src, p)
        except OSError as exc:
            p.unlink(missing_ok=True)
            raise UsageError(
                f"{src}: cannot copy into {self.folder}: {exc.strerror or exc}"
            ) from None
        return self._entry(p)

    def _entry(self, p: Path) -> Correction:
        m = _NAME.match(p.stem)
        assert m is not None, p  # only names this store wrote get here
        return Correction(p, m.group(1), m.group(2))

    def items(self) -> list[Correction]:
        """Every correction in the folder, oldest first (other files are left alone)."""
        if not self.folder.is_dir():
            return []
        out = []
        for p in self.folder.iterdir():
            if p.is_file() and p.suffix.lower() in backend.IMAGE_SUFFIXES and _NAME.match(p.stem):
                out.append(self._entry(p))
        # Saves within one millisecond share a stamp: the file times order them.
        return sorted(out, key=lambda c: (c.stamp, _mtime_ns(c.path), c.path.name))

    def remove(self, path: str | Path) -> None:
        """Delete one correction; only files inside this store's folder."""
        p = Path(path)
        if p.parent.resolve() != self.folder.resolve() or not _NAME.match(p.stem):
            raise UsageError(f"{p}: not a correction in {self.folder}")
        p.unlink(missing_ok=True)

    def counts(self) -> dict[str, int]:
        """How many corrections show each single digit ("0".."9")."""
        out = {str(d): 0 for d in range(10)}
        for c in self.items():
            if len(c.label) == 1:
                out[c.label] += 1
        return out
