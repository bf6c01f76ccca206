"""Hostile and unusual image files: each gives a correct result or one ImageError line.

Every file is generated here (no committed binaries). "Correct" is checked without a model:
the same picture stored in an unusual way must give the same 28x28 network input as when it is
stored as a plain 8-bit grey PNG.
"""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitnet.errors import ImageError
from digitnet.preprocess import load_image, prepare


def seven(size: int = 120) -> Image.Image:
    """A dark '7' with a cross-bar on light paper (8-bit grey): asymmetric, so rotations show."""
    img = Image.new("L", (size, size), 235)
    d = ImageDraw.Draw(img)
    s = size / 120
    d.line([(30 * s, 25 * s), (88 * s, 25 * s), (52 * s, 100 * s)], fill=20, width=int(9 * s))
    d.line([(45 * s, 62 * s), (80 * s, 62 * s)], fill=20, width=int(7 * s))
    return img


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    p = prepare(encode(seven(), "PNG"), single=True)
    assert p.image is not None
    return p.image


def same_input(a: np.ndarray | None, b: np.ndarray, tol: float = 0.9) -> bool:
    if a is None:
        return False
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) > tol


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_zero_bytes(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.png: empty file"):
        prepare(p)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_cut_in_half(tmp_path, fmt, reference):
    data = encode(seven(300).convert("L"), fmt)
    p = tmp_path / f"half.{fmt.lower()}"
    p.write_bytes(data[: len(data) // 2])
    try:
        got = prepare(p, single=True)
    except ImageError as exc:
        assert str(exc).startswith(str(p)) and "\n" not in str(exc)
    else:  # a decoder that fills the missing half must still not invent something else
        assert got.image is None or got.crops


def test_png_bad_crc(tmp_path):
    data = bytearray(encode(seven(), "PNG"))
    data[29] ^= 0xFF  # last byte of the IHDR chunk's CRC (8 signature + 4 + 4 + 13)
    p = tmp_path / "crc.png"
    p.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"crc\.png"):
        prepare(p)


def test_html_renamed_png(tmp_path):
    p = tmp_path / "page.png"
    p.write_text("<!doctype html><html><body>not an image</body></html>")
    with pytest.raises(ImageError, match=r"page\.png: not an image"):
        prepare(p)


def test_header_claims_100000_squared(tmp_path):
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )
    p = tmp_path / "bomb.png"
    p.write_bytes(data)
    t = time.perf_counter()
    with pytest.raises(ImageError, match=r"bomb\.png: image too large"):
        prepare(p)
    assert time.perf_counter() - t < 1.0  # refused from the header, nothing decoded


def test_one_by_100000(tmp_path):
    img = Image.new("L", (100_000, 1), 240)
    p = tmp_path / "line.png"
    img.save(p)
    got = prepare(p)
    assert got.crops == () and got.message


def test_gif_thousands_of_frames_reads_first(reference):
    first = seven().convert("P")
    blank = Image.new("P", first.size, 0)
    data = encode(first, "GIF", save_all=True, append_images=[blank] * 3000, duration=10)
    t = time.perf_counter()
    got = prepare(data, single=True)
    assert time.perf_counter() - t < 1.0, "only the first frame should be decoded"
    assert same_input(got.image, reference)


def test_16_bit_grey_not_white(reference):
    a = np.asarray(seven(), dtype=np.uint16) * 257
    img = Image.fromarray(a)
    assert img.mode.startswith("I;16")
    data = encode(img, "PNG")
    gray = load_image(data)
    assert 0.8 < float(np.median(gray)) < 0.99 and float(gray.min()) < 0.15
    assert same_input(prepare(data, single=True).image, reference)


def test_rgba_on_transparent_not_black(reference):
    ink = 255 - np.asarray(seven())  # alpha = ink coverage, colour black everywhere
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = np.where(ink > 100, 255, 0)
    data = encode(Image.fromarray(rgba, "RGBA"), "PNG")
    gray = load_image(data)
    assert float(np.median(gray)) > 0.9  # background came out white, not black
    assert same_input(prepare(data, single=True).image, reference, 0.85)


def test_white_ink_on_transparent_is_found(reference):
    ink = 255 - np.asarray(seven())
    rgba = np.full((*ink.shape, 4), 255, np.uint8)
    rgba[..., 3] = np.where(ink > 100, 255, 0)
    got = prepare(encode(Image.fromarray(rgba, "RGBA"), "PNG"), single=True)
    assert same_input(got.image, reference, 0.85)


def test_cmyk_jpeg(reference):
    data = encode(seven().convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert same_input(prepare(data, single=True).image, reference)


def test_palette_with_transparency(reference):
    img = seven().convert("P")
    img.info["transparency"] = 0
    data = encode(img, "PNG", transparency=int(np.asarray(img)[0, 0]))
    opened = Image.open(io.BytesIO(data))
    assert opened.mode == "P" and "transparency" in opened.info
    assert same_input(prepare(data, single=True).image, reference)


@pytest.mark.parametrize("orientation, rotate", [(6, 90), (8, 270), (3, 180)])
def test_exif_rotated_jpeg_read_upright(orientation, rotate, reference):
    # The camera stores the pixels sideways and says so in EXIF; viewers show it upright.
    stored = seven().rotate(rotate, expand=True)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    assert same_input(prepare(data, single=True).image, reference)
    up = load_image(data)
    assert np.allclose(up, np.asarray(seven(), np.float32) / 255, atol=0.12)


def test_errors_are_one_line(tmp_path):
    cases = {"a.png": b"", "b.png": b"GIF89a" + b"\x00" * 5, "c.jpg": b"\xff\xd8\xff" + b"x" * 40}
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ImageError) as info:
            prepare(p)
        msg = str(info.value)
        assert msg.startswith(str(p)) and "\n" not in msg


# --------------------------------------------------------------------------- round 2: budgets


def test_rgba_canvas_over_the_decode_budget_is_refused_from_its_header(tmp_path):
    # 9000x9000 RGBA: 324 MB decoded (Pillow keeps 4 bytes per pixel), refused before decoding.
    ihdr = struct.pack(">IIBBBBB", 9000, 9000, 8, 6, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )
    p = tmp_path / "clear.png"
    p.write_bytes(data)
    t = time.perf_counter()
    with pytest.raises(ImageError, match=r"clear\.png: image too large to decode \(9000x9000 RGBA"):
        prepare(p)
    assert time.perf_counter() - t < 1.0


def test_huge_garbage_is_refused_by_size_before_reading(tmp_path):
    p = tmp_path / "huge.png"
    with open(p, "wb") as fh:
        fh.truncate(3 * 10**9)  # sparse
    with pytest.raises(ImageError, match=r"huge\.png: 2\.8 GiB is too large for an image"):
        prepare(p)


def test_big_file_without_an_image_signature_is_refused_unread(tmp_path):
    p = tmp_path / "big.png"
    with open(p, "wb") as fh:
        fh.truncate(20 * 10**6)
    with pytest.raises(ImageError, match="no known image signature"):
        prepare(p)


def test_fifo_is_named_as_a_fifo(tmp_path):
    import os

    p = tmp_path / "pipe.png"
    os.mkfifo(p)
    with pytest.raises(ImageError, match=r"pipe\.png: is a FIFO \(named pipe\), not a file"):
        prepare(p)


def test_name_with_a_newline_gives_a_one_line_message(tmp_path):
    p = tmp_path / "two\nlines.png"
    p.write_bytes(b"not an image")
    with pytest.raises(ImageError) as info:
        prepare(p)
    assert "\n" not in str(info.value) and "two\\nlines.png" in str(info.value)


def test_transparent_composite_in_8_bits_matches_the_float_composite():
    # Dark ink at partial alpha on a transparent ground: the 8-bit path (reduce, then composite)
    # gives the grey that compositing in float at full size gives, within rounding.
    rng = np.random.default_rng(0)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 80, (64, 64, 3))
    rgba[16:48, 28:36, 3] = 200
    want = rgba[..., :3].astype(np.float32) / 255 @ np.array([0.299, 0.587, 0.114], np.float32)
    a = rgba[..., 3].astype(np.float32) / 255
    want = want * a + (1 - a)
    got = load_image(Image.fromarray(rgba, "RGBA"))
    assert np.abs(got - want).max() < 2.5 / 255
