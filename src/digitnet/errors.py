"""Errors meant for people.

Every error a user can cause (a bad file, a missing path, a wrong flag) is a ``DigitnetError``
subclass whose message names the input and the problem in one line. The CLI prints that line and
exits with ``exit_code``; anything else is a bug and keeps its traceback (shown with ``--debug``).
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "DataError",
    "DigitnetError",
    "DownloadError",
    "ImageError",
    "OutputError",
    "UsageError",
    "one_line",
]


class DigitnetError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""

    exit_code = 2


class UsageError(DigitnetError):
    """Bad command-line usage (conflicting or out-of-range options)."""


class DataError(DigitnetError):
    """A dataset file is missing, corrupt or not in the expected format."""


class ImageError(DigitnetError):
    """An image file cannot be read or holds nothing usable."""


class CheckpointError(DigitnetError):
    """A model file is missing, corrupt, unsafe or does not fit its model."""


class DownloadError(DigitnetError):
    """A download failed on every mirror (offline, checksum mismatch, ...)."""

    exit_code = 1


class OutputError(DigitnetError):
    """An output location cannot be written (permissions, full disk, ...)."""

    exit_code = 1


def one_line(text: object) -> str:
    """``text`` with newlines and other control characters escaped, so it prints as one line.

    File names may hold any byte but ``/`` and NUL; a name with a newline must not split an
    error message over two lines (scripts read the first line of stderr).
    """
    s = str(text)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)
