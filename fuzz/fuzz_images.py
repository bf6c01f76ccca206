"""Coverage-guided fuzzing of the image loader and preprocessing with atheris.

The property: whatever bytes a user hands to ``digitnet.preprocess.prepare`` (a file on disk or
bytes from the GUI's clipboard), it returns a ``Prepared`` whose crops are float32 28x28 arrays in
[0, 1] (or none, with a reason), or raises ``ImageError`` with one line naming the input. Any
other exception, a multi-line message, or libFuzzer's memory/time limits being hit is a finding.
Not run in CI; see README.md in this folder for how to run it for a bounded time.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import warnings

import atheris

# Instrument only our code: Pillow, numpy and scipy would just slow the fuzzer down (Pillow's
# decoders are C and fuzzed by OSS-Fuzz already; what we own is how their answers are handled).
with atheris.instrument_imports(include=["digitnet"]):
    from digitnet.errors import ImageError
    from digitnet.preprocess import prepare

# pytest runs with -W error; run the harness the same way so a warning that would abort a
# user's read under that setting is a finding too.
warnings.simplefilter("error")

_LABEL = "fuzz-input"
# Byte inputs go through the same decoder as paths except for the file checks; every 4th input
# is written to a file so the path branch (size 0, reading) is fuzzed too.
_PATH = os.path.join(tempfile.mkdtemp(prefix="fuzz_images."), "input.png")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:]
    single = bool(mode & 1)
    if mode & 2 and mode & 4:
        with open(_PATH, "wb") as fh:
            fh.write(body)
        src, label = _PATH, _PATH
    else:
        src, label = body, _LABEL
    try:
        out = prepare(src, single=single, name=None if src is _PATH else _LABEL)
    except ImageError as exc:
        message = str(exc)
        if "\n" in message or not message.startswith(f"{label}: "):
            raise RuntimeError(f"badly formed error message: {message!r}") from None
        return
    if not out.crops and not out.message:
        raise RuntimeError("no digits and no reason given")
    for c in out.crops:
        img = c.image
        if img.shape != (28, 28) or img.dtype.name != "float32":
            raise RuntimeError(f"bad crop {img.dtype} {img.shape}")
        if not (float(img.min()) >= 0.0 and float(img.max()) <= 1.0):  # also catches NaN
            raise RuntimeError(f"crop values outside [0, 1]: {img.min()} .. {img.max()}")


def write_seeds(folder: str) -> None:
    """Small valid images in the formats users send (mode byte + file bytes)."""
    import numpy as np
    from PIL import Image, ImageDraw

    os.makedirs(folder, exist_ok=True)
    img = Image.new("L", (40, 32), 230)
    d = ImageDraw.Draw(img)
    d.line([(8, 6), (30, 6), (16, 28)], fill=15, width=3)

    def enc(im: Image.Image, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        return buf.getvalue()

    rgba = img.convert("RGBA")
    rgba.putalpha(Image.fromarray((np.asarray(img) < 128).astype(np.uint8) * 255))
    seeds = {
        "gray_png": bytes([0]) + enc(img, "PNG"),
        "gray_png_file": bytes([6]) + enc(img, "PNG"),
        "rgba_png": bytes([1]) + enc(rgba, "PNG"),
        "palette_png": bytes([0]) + enc(img.convert("P"), "PNG", transparency=0),
        "i16_png": bytes([0])
        + enc(Image.fromarray(np.asarray(img).astype(np.uint16) * 257), "PNG"),
        "jpeg": bytes([0]) + enc(img, "JPEG", quality=80),
        "cmyk_jpeg": bytes([1]) + enc(img.convert("CMYK"), "JPEG"),
        "gif": bytes([0]) + enc(img, "GIF"),
        "bmp": bytes([0]) + enc(img, "BMP"),
        "tiff": bytes([0]) + enc(img, "TIFF"),
        "webp": bytes([0]) + enc(img, "WEBP"),
    }
    for name, blob in seeds.items():
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(blob)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        write_seeds(sys.argv[2])
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
