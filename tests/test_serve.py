"""``digitnet serve``'s HTTP API through an in-process client: every endpoint, every error
status, hostile uploads, the token, the bounded queue; and the command's refusals.

Readings are compared with what ``digitnet predict --json`` prints for the same file, so the
API cannot drift from the CLI.
"""

from __future__ import annotations

import io
import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("fastapi_offline", reason="the serve extra is not installed")

from fastapi.testclient import TestClient

from digitnet.cli import main
from digitnet.serve import ServeSettings, create_app
from digitnet.serve._reading import Reader, load_reader

TOKEN = "test-token-0123456789abcdef"


# --------------------------------------------------------------------------- images


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def drawn_seven(size: int = 280) -> Image.Image:
    """A 7 with a cross-bar, drawn as on the page's canvas (black on white)."""
    img = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(img)
    s = size / 280
    d.line([(70 * s, 60 * s), (205 * s, 60 * s), (120 * s, 235 * s)], fill=0, width=int(22 * s))
    d.line([(105 * s, 145 * s), (190 * s, 145 * s)], fill=0, width=int(16 * s))
    return img


def drawn_number() -> Image.Image:
    """ "17" written on one line: two digits for the reader to find."""
    img = Image.new("L", (420, 220), 255)
    d = ImageDraw.Draw(img)
    d.line([(90, 40), (90, 190)], fill=0, width=18)
    d.line([(220, 45), (350, 45), (260, 190)], fill=0, width=18)
    return img


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_canvas_gif(side: int = 9000) -> bytes:
    """A 1x1 GIF whose logical screen announces ``side`` x ``side`` pixels (tens of bytes)."""
    data = bytearray(encode(Image.new("L", (1, 1), 0), "GIF"))
    data[6:10] = struct.pack("<HH", side, side)
    return bytes(data)


def huge_transparent_png(side: int = 9000) -> bytes:
    """A fully transparent ``side`` x ``side`` grey+alpha PNG: a few hundred KB on disk."""
    row = b"\x00" + b"\x00\x00" * side
    raw = zlib.compress(row * side, 9)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 4, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", raw)
        + png_chunk(b"IEND", b"")
    )


def long_png(height: int = 80_000_000) -> bytes:
    """A real 1 x ``height`` grey PNG (about 150 KB): compressed in pieces, never held whole."""
    z = zlib.compressobj(9)
    piece = b"\x00\xff" * 1_000_000  # a million rows: filter byte + one white pixel each
    idat = b"".join(z.compress(piece) for _ in range(height // 1_000_000)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", 1, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def corrupt_png() -> bytes:
    """A valid header whose pixel data is garbage (its CRC fixed, so only inflate fails)."""
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"this is not deflate data" * 4)
        + png_chunk(b"IEND", b"")
    )


SEVEN = encode(drawn_seven())


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def reader() -> Reader:
    return load_reader(None)


@pytest.fixture(scope="module")
def client(reader):
    with TestClient(create_app(reader, ServeSettings(workers=2))) as c:
        yield c


def make_client(reader, **settings) -> TestClient:
    return TestClient(create_app(reader, ServeSettings(**settings)))


def predict_json(tmp_path: Path, monkeypatch, capsys, name: str, data: bytes, *flags: str) -> dict:
    """What ``digitnet predict --json`` prints for ``data`` saved as ``name``."""
    (tmp_path / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    main(["predict", "--json", *flags, name])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


# --------------------------------------------------------------------------- reading


def test_read_multipart_is_predicts_json(client, tmp_path, monkeypatch, capsys):
    r = client.post("/v1/read", files={"file": ("seven.png", SEVEN, "image/png")})
    assert r.status_code == 200
    got = r.json()
    assert got["text"] == "7"
    assert got == predict_json(tmp_path, monkeypatch, capsys, "seven.png", SEVEN)


def test_read_raw_bytes_and_options_match_predict(client, tmp_path, monkeypatch, capsys):
    data = encode(drawn_number())
    r = client.post(
        "/v1/read?top_k=5&min_confidence=0.99", content=data, headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 200
    got = r.json()
    want = predict_json(
        tmp_path,
        monkeypatch,
        capsys,
        "number.png",
        data,
        "--top-k",
        "5",
        "--min-confidence",
        "0.99",
    )
    assert got["path"] == "<upload>"
    assert {**got, "path": "number.png"} == want
    assert all(len(d["top"]) == 5 for d in got["digits"])
    # below 0.99 a digit is rejected: "?" in the text, as predict shows it
    assert len(got["digits"]) == 2
    for ch, d in zip(got["text"], got["digits"], strict=True):
        assert (ch == "?") == (d["confidence"] < 0.99) == d["low_confidence"]
    plain = client.post("/v1/read", content=data, headers={"Content-Type": "image/png"}).json()
    assert plain["text"] == "17"
    single = client.post(
        "/v1/read?single=true", content=data, headers={"Content-Type": "application/octet-stream"}
    ).json()
    assert len(single["digits"]) == 1
    want1 = predict_json(tmp_path, monkeypatch, capsys, "number.png", data, "--single")
    assert {**single, "path": "number.png"} == want1


def test_read_boxes_are_in_the_uploaded_images_pixels(client):
    got = client.post(
        "/v1/read", files={"file": ("n.png", encode(drawn_number()), "image/png")}
    ).json()
    (x1, _, w1, _), (x2, _, _, _) = (d["box"] for d in got["digits"])
    assert 70 <= x1 <= 90 and 10 <= w1 <= 30  # the 1 spans x 81-99 as drawn
    assert 200 <= x2 <= 230  # the 7 starts at x 211


def test_inputs_option_adds_the_28x28_inputs(client):
    got = client.post(
        "/v1/read?inputs=true", content=SEVEN, headers={"Content-Type": "image/png"}
    ).json()
    url = got["digits"][0]["input"]
    assert url.startswith("data:image/png;base64,")
    import base64

    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert img.size == (28, 28) and img.mode == "L"
    pixels = np.asarray(img)
    assert pixels.max() > 200 and pixels[0, 0] == 0  # white ink on black, as the network sees it


def test_blank_image_reads_as_nothing_with_a_message(client):
    r = client.post(
        "/v1/read",
        content=encode(Image.new("L", (280, 280), 255)),
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code == 200
    got = r.json()
    assert got["text"] == "" and got["digits"] == [] and got["message"]
    assert got["error"] is None


def test_batch_one_result_each_in_order_with_per_file_errors(client):
    files = [
        ("file", ("a.png", SEVEN, "image/png")),
        ("file", ("notes.txt", b"hello", "text/plain")),
        ("file", ("broken.png", corrupt_png(), "image/png")),
        ("file", ("bomb.gif", huge_canvas_gif(), "image/gif")),
        ("file", ("b.png", encode(drawn_number()), "image/png")),
    ]
    r = client.post("/v1/read/batch", files=files)
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["path"] for x in res] == ["a.png", "notes.txt", "broken.png", "bomb.gif", "b.png"]
    assert [x["text"] for x in res] == ["7", "", "", "", "17"]
    assert [x["error"] is None for x in res] == [True, False, False, False, True]
    assert "not an image" in res[1]["error"]
    assert "too large" in res[3]["error"]
    single = client.post("/v1/read", files={"file": ("a.png", SEVEN, "image/png")}).json()
    assert res[0] == single


def test_batch_limits(reader):
    with make_client(reader, max_batch_files=2) as c:
        files = [("file", (f"{i}.png", SEVEN, "image/png")) for i in range(3)]
        r = c.post("/v1/read/batch", files=files)
        assert r.status_code == 400 and "Too many files" in r.json()["error"]
        r = c.post("/v1/read/batch", content=SEVEN, headers={"Content-Type": "image/png"})
        assert r.status_code == 415 and "multipart" in r.json()["error"]


# --------------------------------------------------------------------------- other endpoints


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["queue"]["limit"] == 32


def test_model_describes_the_model(client, reader):
    info = client.get("/v1/model").json()
    meta = reader.predictor.meta
    assert info["name"] == meta["model"] == "digitnet"
    assert info["test_accuracy"] == pytest.approx(meta["metrics"]["test_accuracy"])
    assert "calibration" in info
    assert info["input"]["shape"] == [28, 28]
    assert info["input"]["normalisation"]["kind"] in ("standardize", "raw255")
    assert info["limits"]["max_upload_bytes"] == 10 * 1024 * 1024


def test_openapi_and_docs_work_offline(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/read", "/v1/read/batch", "/v1/model", "/healthz"} <= set(spec["paths"])
    body = spec["paths"]["/v1/read"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/png" in body
    docs = client.get("/docs")
    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    for a in assets:
        assert client.get(a).status_code == 200, a


def test_page_and_its_assets_come_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/app.css"):
        r = client.get(asset)
        assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
        # nothing fetched from elsewhere: no absolute URL in any asset
        assert not re.search(r"https?://", r.text), asset
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)


# --------------------------------------------------------------------------- errors


def test_unknown_endpoint_and_method_are_json(client):
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and "error" in r.json()
    r = client.get("/v1/read")
    assert r.status_code == 405 and "error" in r.json()


@pytest.mark.parametrize(
    "query",
    [
        "top_k=0",
        "top_k=11",
        "top_k=abc",
        "min_confidence=1.5",
        "min_confidence=-0.1",
        "min_confidence=nan",
        "min_confidence=inf",
        "single=maybe",
        "inputs=2",
    ],
)
def test_bad_query_values_are_400(client, query):
    r = client.post(f"/v1/read?{query}", content=SEVEN, headers={"Content-Type": "image/png"})
    assert r.status_code == 400
    msg = r.json()["error"]
    assert msg.startswith("bad option: ") and query.split("=")[0] in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("name", "data", "status", "words"),
    [
        ("empty.png", b"", 400, "empty file"),
        ("text.png", b"just some text, not an image", 400, "not an image"),
        ("corrupt.png", corrupt_png(), 400, "corrupt.png"),
        ("truncated.png", encode(drawn_seven(600))[:1500], 400, "truncated.png"),
        (
            "truncated.jpg",
            encode(drawn_seven(600).convert("RGB"), "JPEG")[:700],
            400,
            "truncated.jpg",
        ),
        ("bomb.gif", huge_canvas_gif(), 413, "too large"),
        ("clear.png", huge_transparent_png(), 413, "too large"),
        ("long.png", long_png(), 413, "1x80000000"),
        ("icon.ico", encode(drawn_seven(64), "ICO"), 415, "not accepted"),
    ],
)
def test_hostile_uploads_get_one_line_errors(client, name, data, status, words):
    t = time.perf_counter()
    r = client.post("/v1/read", files={"file": (name, data, "application/octet-stream")})
    assert time.perf_counter() - t < 5
    assert r.status_code == status, r.json()
    msg = r.json()["error"]
    assert words in msg and "\n" not in msg and "Traceback" not in msg


def test_pixel_limit_applies_before_decoding(reader):
    with make_client(reader, max_pixels=100 * 100) as c:
        ok = c.post(
            "/v1/read", content=encode(drawn_seven(100)), headers={"Content-Type": "image/png"}
        )
        assert ok.status_code == 200 and ok.json()["text"] == "7"
        r = c.post(
            "/v1/read", content=encode(drawn_seven(101)), headers={"Content-Type": "image/png"}
        )
        assert r.status_code == 413 and "101x101" in r.json()["error"]


def test_wrong_content_types_are_415(client):
    for ctype in ("text/plain", "application/json", "application/x-www-form-urlencoded"):
        r = client.post("/v1/read", content=SEVEN, headers={"Content-Type": ctype})
        assert r.status_code == 415 and ctype in r.json()["error"]
    r = client.post("/v1/read", content=SEVEN, headers={"Content-Type": ""})
    assert r.status_code == 415
    r = client.post("/v1/read", files={"file": ("seven.png", SEVEN, "text/html")})
    assert r.status_code == 415 and "text/html" in r.json()["error"]


def test_multipart_without_a_file(client):
    r = client.post("/v1/read", data={"other": "x"}, files={"x": ("a.png", SEVEN, "image/png")})
    assert r.status_code == 400 and "'file'" in r.json()["error"]
    r = client.post(
        "/v1/read", data={"file": "not a file"}, files={"x": ("a.png", SEVEN, "image/png")}
    )
    assert r.status_code == 400 and "file upload" in r.json()["error"]
    r = client.post(
        "/v1/read",
        content=b"--x\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 400


def test_upload_limit_by_content_length_and_while_streaming(reader):
    limit = 200_000
    with make_client(reader, max_upload_bytes=limit) as c:
        big = encode(drawn_seven(1400))  # about 60 KB, plus noise below
        big += b"\0" * (limit + 1 - len(big))  # trailing bytes after IEND still count
        r = c.post("/v1/read", content=big, headers={"Content-Type": "image/png"})
        assert r.status_code == 413 and "200,000 bytes" in r.json()["error"]
        r = c.post("/v1/read", files={"file": ("big.png", big, "image/png")})
        assert r.status_code == 413

        def chunks():  # no Content-Length: the cap applies while the body arrives
            for _ in range(100):
                yield b"\0" * 10_000

        r = c.post("/v1/read", content=chunks(), headers={"Content-Type": "image/png"})
        assert r.status_code == 413
        assert (
            c.post("/v1/read", content=SEVEN, headers={"Content-Type": "image/png"}).status_code
            == 200
        )


# --------------------------------------------------------------------------- token


def test_token_required_when_set(reader):
    with make_client(reader, token=TOKEN) as c:
        good = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "image/png"}
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-0123456789"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN},
        ):
            r = c.post("/v1/read", content=SEVEN, headers={**headers, "Content-Type": "image/png"})
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"] == "Bearer" and "error" in r.json()
            assert c.get("/v1/model", headers=headers).status_code == 401
            assert (
                c.post(
                    "/v1/read/batch", files={"file": ("a.png", SEVEN, "image/png")}, headers=headers
                ).status_code
                == 401
            )
        r = c.post("/v1/read", content=SEVEN, headers=good)
        assert r.status_code == 200 and r.json()["text"] == "7"
        assert c.get("/v1/model", headers=good).json()["auth"] is True
        # liveness, the page and the docs stay open (they hold no data)
        assert c.get("/healthz").status_code == 200
        assert c.get("/").status_code == 200
        assert c.get("/openapi.json").status_code == 200


def test_token_checked_before_the_body_is_read(reader):
    with make_client(reader, token=TOKEN, max_upload_bytes=1000) as c:
        r = c.post("/v1/read", content=b"\0" * 5000, headers={"Content-Type": "image/png"})
        assert r.status_code == 401


# --------------------------------------------------------------------------- load


class BlockingReader(Reader):
    """The real reader, held at a gate: requests pile up as under load."""

    def __init__(self, inner: Reader) -> None:
        super().__init__(inner.predictor, inner.model_path)
        self.gate = threading.Event()

    def read(self, data, name, options):
        self.gate.wait(10)
        return super().read(data, name, options)


def test_full_queue_answers_503_and_recovers(reader):
    slow = BlockingReader(reader)
    with TestClient(create_app(slow, ServeSettings(workers=1, queue_limit=2))) as c:

        def post(_):
            r = c.post("/v1/read", content=SEVEN, headers={"Content-Type": "image/png"})
            return r.status_code, r.json(), r.headers.get("retry-after")

        with ThreadPoolExecutor(5) as ex:
            futures = [ex.submit(post, i) for i in range(5)]
            deadline = time.time() + 10
            while sum(f.done() for f in futures) < 3 and time.time() < deadline:
                time.sleep(0.02)
            slow.gate.set()
            results = [f.result() for f in futures]
        codes = sorted(code for code, _, _ in results)
        assert codes == [200, 200, 503, 503, 503]
        for code, body, retry in results:
            if code == 503:
                assert "busy" in body["error"] and retry == "1"
            else:
                assert body["text"] == "7"
        assert c.get("/healthz").json()["queue"]["pending"] == 0
        assert (
            c.post("/v1/read", content=SEVEN, headers={"Content-Type": "image/png"}).status_code
            == 200
        )


def test_slow_request_times_out_with_503(reader):
    slow = BlockingReader(reader)
    with TestClient(create_app(slow, ServeSettings(workers=1, timeout_s=0.3))) as c:
        t = time.perf_counter()
        r = c.post("/v1/read", content=SEVEN, headers={"Content-Type": "image/png"})
        assert r.status_code == 503 and "longer than 0.3 s" in r.json()["error"]
        assert time.perf_counter() - t < 5
        slow.gate.set()


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--host", "0.0.0.0"], "refusing to listen beyond this machine"),
        (["--host", "192.0.2.1"], "refusing"),
        (["--port", "70000"], "between 0 and 65535"),
        (["--workers", "0"], "at least 1"),
        (["--max-upload-mb", "nan"], "positive number"),
        (["--token-file", "missing-token-file"], "no such file"),
    ],
)
def test_serve_refuses_bad_flags(argv, words, capsys):
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_token_file_checks(tmp_path, capsys):
    short = tmp_path / "short"
    short.write_text("abc\n")
    assert main(["serve", "--host", "0.0.0.0", "--token-file", str(short)]) == 2
    assert "at least 16" in capsys.readouterr().err
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" * 20)
    assert main(["serve", "--token-file", str(binary)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_loopback_rule():
    from digitnet.commands.serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.1") and is_loopback("::1")
    assert is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("::")
    assert not is_loopback("192.168.1.5") and not is_loopback("example.org")


def test_serve_command_end_to_end(tmp_path):
    """The real command in a fresh interpreter: a free loopback port, the page, one reading."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digitnet",
            "serve",
            "--port",
            "0",
            "--workers",
            "1",
            "--timeout",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        base = f"http://127.0.0.1:{m.group(1)}"
        with urllib.request.urlopen(base + "/", timeout=10) as r:
            assert b"<canvas" in r.read()
        req = urllib.request.Request(
            base + "/v1/read", data=SEVEN, method="POST", headers={"Content-Type": "image/png"}
        )
        with urllib.request.urlopen(req, timeout=20) as r:
            assert json.loads(r.read())["text"] == "7"
        # A client that announces a body and stalls is cut off at the deadline (--timeout).
        with socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                b"Content-Length: 5000\r\n\r\n" + SEVEN[:100]
            )
            t = time.perf_counter()
            answer = ""
            while not answer.endswith("}"):
                chunk = sock.recv(4096).decode("latin-1")
                if not chunk:
                    break
                answer += chunk
            assert answer.startswith("HTTP/1.1 408") and "not received within 3 s" in answer
            assert time.perf_counter() - t < 8
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_upload_names_are_one_line_and_without_folders(client):
    r = client.post(
        "/v1/read", files={"file": ("../../secret/evil\r\nname.png", b"xx", "image/png")}
    )
    assert r.status_code == 400
    msg = r.json()["error"]
    assert "\n" not in msg and "\r" not in msg and "secret" not in msg and "evil" in msg
    res = client.post("/v1/read/batch", files=[("file", ("a/b/c.png", SEVEN, "image/png"))])
    assert res.json()["results"][0]["path"] == "c.png"
