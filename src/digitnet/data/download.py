"""Downloading the four official MNIST files from public mirrors.

Each file is fetched from the mirrors in order; any failure (network error, HTTP error, wrong size,
md5 mismatch) moves on to the next mirror. Files are streamed into a temporary sibling and renamed
into place only once their md5 matches, so an interrupted or corrupt download never ends up under
the final name. Only the standard library (urllib) is used.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .. import __version__
from .._io import atomic_write, ensure_dir
from ..errors import DownloadError, UsageError
from .mnist import file_md5

__all__ = ["DEFAULT_MIRRORS", "OFFICIAL_FILES", "DownloadResult", "download_mnist"]

# md5 and size in bytes of the official 60,000 / 10,000-item files (as published with MNIST).
OFFICIAL_FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", 9_912_422),
    "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432", 28_881),
    "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3", 1_648_877),
    "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c", 4_542),
}

# Tried in order. The first two are the mirrors torchvision uses; LeCun's own page comes last
# because it often answers 403 or is unreachable.
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

DEFAULT_TIMEOUT_S = 30.0
_CHUNK = 64 * 1024
_SCHEMES = ("http", "https", "file")
# Socket errors that mean "cannot reach the network at all", as opposed to a server that answered
# badly: these decide whether the final message says the machine is offline.
_OFFLINE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.ECONNREFUSED}


@dataclass(frozen=True)
class DownloadResult:
    """What happened to one file: ``action`` is "kept" (already valid) or "downloaded"."""

    path: Path
    action: str
    url: str | None = None


class _MirrorFailure(Exception):
    """One mirror failed for one file. Not an OSError, so atomic_write just discards the temp."""

    def __init__(self, reason: str, *, offline: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offline = offline


def _is_offline(reason: object) -> bool:
    if isinstance(reason, (socket.gaierror, ConnectionError, TimeoutError)):
        return True
    return isinstance(reason, OSError) and reason.errno in _OFFLINE_ERRNOS


def _describe(reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        return "host name not resolved"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


def _open_url(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": f"digitnet/{__version__}"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # schemes: _check_mirrors
    except urllib.error.HTTPError as exc:
        exc.close()  # the error carries an open response body
        raise _MirrorFailure(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _MirrorFailure(_describe(exc.reason), offline=_is_offline(exc.reason)) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _MirrorFailure(_describe(exc), offline=_is_offline(exc)) from None


def _copy_checked(
    response: Any, out: IO[bytes], name: str, expected: tuple[str, int], progress: bool
) -> None:
    """Stream ``response`` into ``out``; raise _MirrorFailure unless size and md5 match."""
    from tqdm import tqdm

    md5, size = expected
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    # disable=None: tqdm shows the bar only on a terminal, so logs and tests stay clean.
    with tqdm(
        total=size,
        unit="B",
        unit_scale=True,
        desc=name,
        leave=False,
        disable=None if progress else True,
    ) as bar:
        while True:
            try:
                block = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _MirrorFailure(
                    f"connection lost after {received:,} bytes ({_describe(exc)})"
                ) from None
            if not block:
                break
            received += len(block)
            if received > size:  # a wrong page or file: stop before wasting bandwidth
                raise _MirrorFailure(f"larger than the expected {size:,} bytes")
            digest.update(block)
            out.write(block)
            bar.update(len(block))
    if received != size:
        raise _MirrorFailure(f"got {received:,} bytes, expected {size:,}")
    if digest.hexdigest() != md5:
        raise _MirrorFailure(f"md5 mismatch (got {digest.hexdigest()}, expected {md5})")


def _fetch(
    url: str, target: Path, expected: tuple[str, int], timeout: float, progress: bool
) -> None:
    response = _open_url(url, timeout)
    with response, atomic_write(target, "wb") as out:
        _copy_checked(response, out, target.name, expected, progress)


def _check_mirrors(mirrors: Sequence[str]) -> list[str]:
    if not mirrors:
        raise UsageError("no download mirror given")
    checked = []
    for mirror in mirrors:
        scheme = urllib.parse.urlsplit(mirror).scheme.lower()
        if scheme not in _SCHEMES:
            raise UsageError(
                f"mirror {mirror!r}: unsupported URL scheme; use http://, https:// or file://"
            )
        checked.append(mirror if mirror.endswith("/") else mirror + "/")
    return checked


def _offline_error(folder: Path) -> DownloadError:
    names = ", ".join(OFFICIAL_FILES)
    return DownloadError(
        f"cannot download MNIST: this machine looks offline (no mirror could "
        f"be reached); get {names} elsewhere and put them in {folder}"
    )


def _download_one(
    name: str, folder: Path, mirrors: list[str], timeout: float, progress: bool
) -> str:
    """Fetch ``name`` from the first mirror that delivers it intact; return that URL."""
    failures: list[_MirrorFailure] = []
    urls = [urllib.parse.urljoin(mirror, name) for mirror in mirrors]
    for url in urls:
        try:
            _fetch(url, folder / name, OFFICIAL_FILES[name], timeout, progress)
            return url
        except _MirrorFailure as failure:
            failures.append(failure)
    if all(f.offline for f in failures):
        raise _offline_error(folder)
    tried = "; ".join(f"{url}: {f.reason}" for url, f in zip(urls, failures, strict=True))
    raise DownloadError(f"{folder / name}: download failed on every mirror ({tried})")


def download_mnist(
    data_dir: str | os.PathLike[str],
    *,
    mirrors: Sequence[str] | None = None,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
) -> list[DownloadResult]:
    """Make sure the four official MNIST files are in ``data_dir`` with their official md5.

    Files already present with the right md5 are kept unless ``force``; a present file with
    another md5 (e.g. a subset) is replaced only once a good copy has been downloaded. Raises
    ``DownloadError`` (one line) when a file cannot be had from any mirror, ``OutputError`` when
    ``data_dir`` cannot be written.
    """
    urls = _check_mirrors(DEFAULT_MIRRORS if mirrors is None else mirrors)
    folder = ensure_dir(Path(data_dir).expanduser())
    results = []
    for name, (md5, _size) in OFFICIAL_FILES.items():
        target = folder / name
        if not force and target.is_file() and file_md5(target) == md5:
            results.append(DownloadResult(target, "kept"))
            continue
        url = _download_one(name, folder, urls, timeout, progress)
        results.append(DownloadResult(target, "downloaded", url))
    return results
