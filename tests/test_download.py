"""The MNIST downloader, against local mirrors only (file:// and an HTTP server on 127.0.0.1).

Small synthetic files stand in for the official ones; the checksum table is patched to match
them. Every default mirror is replaced by a closed local port, so no test can reach the internet.
"""

from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from digitnet.cli import main
from digitnet.data import download
from digitnet.data.download import OFFICIAL_FILES, download_mnist
from digitnet.data.idx import write_idx
from digitnet.data.mnist import clear_cache, load_mnist
from digitnet.errors import DownloadError, UsageError

NAMES = list(OFFICIAL_FILES)


def closed_port_url() -> str:
    """A 127.0.0.1 URL where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "DEFAULT_MIRRORS", (closed_port_url(),))
    clear_cache()


@pytest.fixture
def good(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A mirror folder holding four small valid MNIST files; the md5 table is patched to them."""
    folder = tmp_path / "good"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        )
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    table = {
        name: (
            hashlib.md5((folder / name).read_bytes()).hexdigest(),
            (folder / name).stat().st_size,
        )
        for name in NAMES
    }
    monkeypatch.setattr(download, "OFFICIAL_FILES", table)
    return folder


@pytest.fixture
def corrupt(tmp_path: Path, good: Path) -> Path:
    """Same names and sizes as ``good`` but one flipped byte each: md5 mismatch."""
    folder = tmp_path / "corrupt"
    folder.mkdir()
    for name in NAMES:
        data = bytearray((good / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / name).write_bytes(bytes(data))
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # stdlib's signature
        pass


class _HalfHandler(_QuietHandler):
    """Announces the full length, sends half the file, then hangs up (a dropped connection)."""

    def do_GET(self) -> None:  # stdlib's name
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.close_connection = True


@pytest.fixture
def serve() -> Iterator:
    """serve(folder, handler=_QuietHandler) -> base URL of an HTTP server on 127.0.0.1."""
    servers: list[http.server.ThreadingHTTPServer] = []
    threads: list[threading.Thread] = []

    def start(folder: Path, handler: type = _QuietHandler) -> str:
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(handler, directory=str(folder))
        )
        # A short poll interval keeps shutdown() (and so each test) fast.
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        servers.append(server)
        threads.append(thread)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server, thread in zip(servers, threads, strict=True):
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def assert_clean(folder: Path, expected: list[str]) -> None:
    """Only ``expected`` names in ``folder``: no partial or temporary files left behind."""
    present = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert present == sorted(expected)


def test_file_mirror(tmp_path: Path, good: Path) -> None:
    dest = tmp_path / "dest"
    results = download_mnist(dest, mirrors=[good.as_uri()])
    assert [r.action for r in results] == ["downloaded"] * 4
    assert results[0].url == f"{good.as_uri()}/{NAMES[0]}"
    for name in NAMES:
        assert (dest / name).read_bytes() == (good / name).read_bytes()
    assert_clean(dest, NAMES)
    assert load_mnist(dest, "train")[0].shape == (12, 28, 28)


def test_http_mirror(tmp_path: Path, good: Path, serve) -> None:
    base = serve(good)
    results = download_mnist(tmp_path / "dest", mirrors=[base], progress=False)
    assert {r.url for r in results} == {base + name for name in NAMES}
    assert load_mnist(tmp_path / "dest", "test")[1].tolist() == [0, 1, 2, 3, 4]


def test_fallback_after_http_404_and_refused_connection(tmp_path: Path, good: Path, serve) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    mirrors = [closed_port_url(), serve(empty), serve(good)]
    results = download_mnist(tmp_path / "dest", mirrors=mirrors)
    assert all(r.url is not None and r.url.startswith(mirrors[2]) for r in results)


def test_fallback_after_checksum_mismatch(tmp_path: Path, good: Path, corrupt: Path, serve) -> None:
    results = download_mnist(tmp_path / "dest", mirrors=[serve(corrupt), good.as_uri()])
    assert all(r.url is not None and r.url.startswith(good.as_uri()) for r in results)
    for name in NAMES:
        assert (tmp_path / "dest" / name).read_bytes() == (good / name).read_bytes()


def test_every_mirror_corrupt(tmp_path: Path, corrupt: Path, serve) -> None:
    dest = tmp_path / "dest"
    mirrors = [serve(corrupt), corrupt.as_uri()]
    with pytest.raises(DownloadError) as info:
        download_mnist(dest, mirrors=mirrors)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{dest / NAMES[0]}: download failed on every mirror")
    assert message.count("md5 mismatch") == 2
    assert mirrors[0] in message and corrupt.as_uri() in message
    assert_clean(dest, [])  # nothing under the final name, no temporary files


def test_dropped_connection_leaves_no_partial_file(tmp_path: Path, good: Path, serve) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    old = b"previous content"
    (dest / NAMES[0]).write_bytes(old)
    with pytest.raises(DownloadError, match=r"connection lost after|got [0-9,]+ bytes"):
        download_mnist(dest, mirrors=[serve(good, _HalfHandler)], force=True)
    assert (dest / NAMES[0]).read_bytes() == old  # untouched, not half-overwritten
    assert_clean(dest, [NAMES[0]])


def test_oversized_file_is_refused(tmp_path: Path, good: Path, monkeypatch) -> None:
    name = NAMES[3]
    md5, size = download.OFFICIAL_FILES[name]
    monkeypatch.setitem(download.OFFICIAL_FILES, name, (md5, size - 10))
    with pytest.raises(DownloadError, match=f"larger than the expected {size - 10:,} bytes"):
        download_mnist(tmp_path / "dest", mirrors=[good.as_uri()])
    assert_clean(tmp_path / "dest", NAMES[:3])


def test_offline_message(tmp_path: Path, good: Path) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as info:
        download_mnist(dest, mirrors=[closed_port_url(), closed_port_url()])
    message = str(info.value)
    assert "\n" not in message
    assert "offline" in message and str(dest) in message
    for name in NAMES:
        assert name in message
    assert_clean(dest, [])


def test_offline_is_the_default_mirrors_here(tmp_path: Path, good: Path) -> None:
    with pytest.raises(DownloadError, match="offline"):
        download_mnist(tmp_path / "dest")


def test_present_files_with_right_md5_are_kept(tmp_path: Path, good: Path) -> None:
    dest = tmp_path / "dest"
    shutil.copytree(good, dest)
    # The mirror is unreachable: success proves nothing was fetched.
    results = download_mnist(dest, mirrors=[closed_port_url()])
    assert [r.action for r in results] == ["kept"] * 4
    with pytest.raises(DownloadError, match="offline"):
        download_mnist(dest, mirrors=[closed_port_url()], force=True)
    for name in NAMES:
        assert (dest / name).read_bytes() == (good / name).read_bytes()


def test_present_file_with_wrong_md5_is_replaced(tmp_path: Path, good: Path, corrupt: Path) -> None:
    dest = tmp_path / "dest"
    shutil.copytree(corrupt, dest)
    results = download_mnist(dest, mirrors=[good.as_uri()])
    assert [r.action for r in results] == ["downloaded"] * 4
    assert (dest / NAMES[1]).read_bytes() == (good / NAMES[1]).read_bytes()


def test_force_downloads_again(tmp_path: Path, good: Path) -> None:
    dest = tmp_path / "dest"
    shutil.copytree(good, dest)
    results = download_mnist(dest, mirrors=[good.as_uri()], force=True)
    assert [r.action for r in results] == ["downloaded"] * 4


def test_bad_mirror_scheme(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unsupported URL scheme"):
        download_mnist(tmp_path, mirrors=["ftp://example.invalid/mnist/"])


def test_cli_download(tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "dest"
    argv = ["data", "download", "--data-dir", str(dest), "--mirror", good.as_uri()]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{NAMES[0]}: downloaded from {good.as_uri()}/{NAMES[0]}" in out
    assert main(argv) == 0
    assert f"{NAMES[2]}: already present, md5 ok" in capsys.readouterr().out


def test_cli_download_offline(
    tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "data",
            "download",
            "--data-dir",
            str(tmp_path / "d"),
            "--mirror",
            closed_port_url(),
            "--timeout",
            "5",
        ]
    )
    assert code == 1  # DownloadError: a failure of the environment, not bad input
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "offline" in err


def test_cli_rejects_bad_timeout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "download", "--data-dir", str(tmp_path), "--timeout", "0"]) == 2
    assert "--timeout must be positive" in capsys.readouterr().err
