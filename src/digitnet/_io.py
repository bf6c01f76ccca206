"""Crash-safe file writing, and safe opening of user files, shared by the whole package.

Everything digitnet writes (checkpoints, downloads, reports, CSV) goes to a temporary file in the
destination folder, is flushed and fsync'ed, then renamed over the target: a crash or ``kill -9``
mid-write leaves either the old file or the new one, never half of one.

Everything digitnet reads from the user (checkpoints, config files, images, experiment files)
goes through ``read_user_file``: it refuses what is not a regular file (a FIFO would block the
read forever, a device would never end) and checks the size before a byte is read into memory.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import DigitnetError, OutputError, one_line

__all__ = [
    "atomic_write",
    "check_user_file",
    "ensure_dir",
    "read_user_file",
    "read_user_text",
    "write_bytes",
    "write_json",
    "write_text",
]

_KINDS = [
    (stat.S_ISDIR, "is a folder, not a file"),
    (stat.S_ISFIFO, "is a FIFO (named pipe), not a file"),
    (stat.S_ISCHR, "is a character device, not a file"),
    (stat.S_ISBLK, "is a block device, not a file"),
    (stat.S_ISSOCK, "is a socket, not a file"),
]


def _a(what: str) -> str:
    return f"an {what}" if what[:1] in "aeiou" else f"a {what}"


def _human(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n:,} bytes"


def _not_regular(mode: int) -> str | None:
    for test, what in _KINDS:
        if test(mode):
            return what
    return None if stat.S_ISREG(mode) else "is not a regular file"


def missing_reason(path: str | os.PathLike[str]) -> str:
    """Why ``path``, which does not exist, is not there: "no such file or folder", or what is
    wrong with the symbolic link it is (a dangling link names its target)."""
    if not os.path.islink(path):
        return "no such file or folder"
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (the link leads back to itself)"
    try:
        target = one_line(os.readlink(path))
    except OSError:
        return "broken symbolic link"
    return f"broken symbolic link (its target {target} does not exist)"


def check_user_file(
    path: str | os.PathLike[str],
    *,
    error: type[DigitnetError],
    max_bytes: int,
    what: str = "file",
    label: str | None = None,
    allow_empty: bool = False,
) -> int:
    """Check that ``path`` is a readable regular file of at most ``max_bytes``; return its size.

    Raises ``error`` with one line naming the file: ``no such file``, ``is a FIFO (named pipe),
    not a file``, ``empty file (0 bytes)``, ``3.0 GiB is too large for a checkpoint (limit ...)``.
    Nothing is opened (``stat`` follows symlinks), so a FIFO cannot block here.
    """
    name = one_line(label if label is not None else os.fspath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise error(f"{name}: {missing_reason(path)}") from None
        raise error(f"{name}: no such file") from None
    except NotADirectoryError:
        raise error(f"{name}: no such file (a part of the path is not a folder)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{name}: {missing_reason(path)}") from None
        raise error(f"{name}: cannot read: {exc.strerror or exc}") from None
    kind = _not_regular(st.st_mode)
    if kind is not None:
        if kind.startswith("is a folder"):
            kind = f"is a folder, not {_a(what)}"
        raise error(f"{name}: {kind}")
    if st.st_size == 0 and not allow_empty:
        raise error(f"{name}: empty file (0 bytes)")
    if st.st_size > max_bytes:
        raise error(
            f"{name}: {_human(st.st_size)} is too large for {_a(what)} (limit {_human(max_bytes)})"
        )
    return int(st.st_size)


def read_user_file(
    path: str | os.PathLike[str],
    *,
    error: type[DigitnetError],
    max_bytes: int,
    what: str = "file",
    label: str | None = None,
    allow_empty: bool = False,
    head: int | None = None,
) -> bytes:
    """The bytes of a user's file, after ``check_user_file``'s checks; never more than
    ``max_bytes`` are read (a file that grows while it is read is refused, not followed).
    With ``head``, only the first ``head`` bytes (to sniff a format before reading the rest).

    The file is opened with ``O_NONBLOCK`` and checked again through its descriptor, so a path
    swapped for a FIFO between the check and the open still cannot block.
    """
    name = one_line(label if label is not None else os.fspath(path))
    check_user_file(
        path, error=error, max_bytes=max_bytes, what=what, label=name, allow_empty=allow_empty
    )
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        what_ = (
            "permission denied"
            if exc.errno in (errno.EACCES, errno.EPERM)
            else (exc.strerror or str(exc))
        )
        raise error(f"{name}: cannot read: {what_}") from None
    try:
        st = os.fstat(fd)
        kind = _not_regular(st.st_mode)
        if kind is not None:
            raise error(f"{name}: {kind}")
        chunks: list[bytes] = []
        total = 0
        if head is not None:
            return os.read(fd, head)
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise error(f"{name}: more than {_human(max_bytes)}, too large for {_a(what)}")
    except OSError as exc:
        raise error(f"{name}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if not data and not allow_empty:
        raise error(f"{name}: empty file (0 bytes)")
    return data


def read_user_text(
    path: str | os.PathLike[str],
    *,
    error: type[DigitnetError],
    max_bytes: int = 16 << 20,
    what: str = "file",
    label: str | None = None,
) -> str:
    """A user's UTF-8 text file (config, experiment plan): ``read_user_file`` + a decoding
    error that names the file and the byte offset instead of a ``UnicodeDecodeError``."""
    name = one_line(label if label is not None else os.fspath(path))
    data = read_user_file(path, error=error, max_bytes=max_bytes, what=what, label=name)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"{name}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def _explain(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        what = "no space left on device"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = "permission denied"
    else:
        what = exc.strerror or str(exc)
    return OutputError(f"{path}: cannot write: {what}")


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents); raise ``OutputError`` with one clear line if impossible."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{p}: cannot create folder: a file of that name exists") from None
    except OSError as exc:
        raise _explain(p, exc) from None
    if not os.access(p, os.W_OK):
        raise OutputError(f"{p}: cannot write: permission denied")
    return p


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it into place on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError("atomic_write mode must be 'w' or 'wb'")
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    ensure_dir(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _explain(target, exc) from None
    try:
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        fh: IO[Any] = (
            os.fdopen(fd, "w", encoding="utf-8", newline="") if mode == "w" else os.fdopen(fd, "wb")
        )
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _explain(target, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable where the platform allows it.
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
