"""Opening user images safely and turning them into one float32 grey channel.

Everything here treats the file as hostile: Pillow parses only the header before we check the
pixel count, decoding errors of any kind become one ``ImageError`` line, and warnings Pillow
raises about a broken file are answers about that file, not something to print.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps

from ..errors import ImageError

__all__ = ["ImageSource", "MAX_PIXELS", "WORK_MAX_SIDE", "load_image", "from_pil", "from_array",
           "decode"]

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Image.Image,
                    np.ndarray]

# Pillow's own decompression-bomb limit (about 89 megapixels, a 12k x 7k photo): larger images
# are refused before any pixel is decoded. Phone photos (12-50 MP) stay well inside it.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

# Analysis works on images whose longer side is at most this many pixels. A written number
# of six digits still gets digits about 100 px tall at this size, five times the 20 px the
# network sees, while a 12 MP photo is decoded (JPEG draft mode) and analysed in milliseconds.
WORK_MAX_SIDE = 1024


def _name(src: Any, name: str | None) -> str:
    if name:
        return name
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    return "<image>"


def _open(src: Any, label: str) -> Image.Image:
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise ImageError(f"{label}: no such file")
        if path.is_dir():
            raise ImageError(f"{label}: is a folder, not an image")
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ImageError(f"{label}: cannot read: {exc.strerror or exc}") from None
        if size == 0:
            raise ImageError(f"{label}: empty file (0 bytes)")
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ImageError(f"{label}: cannot read: {exc.strerror or exc}") from None
        return _open(data, label)
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise ImageError(f"{label}: empty file (0 bytes)")
        src = io.BytesIO(bytes(src))
    return Image.open(src)


def _check_size(img: Image.Image, label: str) -> None:
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageError(f"{label}: image has no pixels ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise ImageError(f"{label}: image too large ({w}x{h} pixels, limit {MAX_PIXELS:,}); "
                         "possible decompression bomb")


def decode(src: ImageSource, *, name: str | None = None, max_side: int | None = WORK_MAX_SIDE,
           keep_8bit: bool = False) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Decode ``src`` into a grey float32 image in [0, 1] (0 black, 1 white).

    Returns ``(gray, scale, (width, height))``: ``gray`` is at most ``max_side`` pixels on its
    longer side, ``scale`` multiplies its pixel coordinates back to the upright full-size image
    of ``width`` x ``height`` pixels (EXIF orientation applied). With ``keep_8bit``, 8-bit
    images come back as PIL ``L`` images (``as_float``, ``resize_box`` and ``shape_of`` take
    either), so the caller converts to float only at the size it analyses.
    """
    label = _name(src, name)
    if isinstance(src, np.ndarray):
        gray = from_array(src, name=label)
        return _finish(gray, (gray.shape[1], gray.shape[0]), max_side)
    if isinstance(src, Image.Image):
        _check_size(src, label)
        full = src.size
        gray = _gray(src, label, max_side)
        return _finish(gray, full, max_side, keep_8bit)
    with warnings.catch_warnings():
        # A bomb warning (between 1x and 2x Pillow's limit) must refuse the file like the error
        # above 2x does; every other Pillow warning (bad EXIF, odd palettes) is about a file we
        # still read correctly, and under ``-W error`` it would otherwise abort the read.
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = _open(src, label)
            _check_size(img, label)
            full = img.size
            gray = _gray(img, label, max_side)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"{label}: image too large (over {MAX_PIXELS:,} pixels); "
                             "possible decompression bomb") from None
        except Image.UnidentifiedImageError:
            raise ImageError(f"{label}: not an image file (or a format Pillow cannot read)") \
                from None
        except MemoryError:
            raise ImageError(f"{label}: not enough memory to decode this image") from None
        except Exception as exc:  # noqa: BLE001
            # Pillow's decoders report broken files with a zoo of types (OSError, SyntaxError,
            # ValueError, EOFError, struct.error, zlib.error, IndexError...). Only Pillow calls
            # run in this block, so any of them means "this file is broken", not a bug of ours.
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ImageError(f"{label}: cannot decode image: {reason}") from None
    return _finish(gray, full, max_side, keep_8bit)


def _finish(gray: np.ndarray | Image.Image, full: tuple[int, int], max_side: int | None,
            keep_8bit: bool = False) -> tuple[np.ndarray, float, tuple[int, int]]:
    # EXIF rotation may swap width and height: the decoded array has the upright orientation,
    # and JPEG draft mode may have decoded it smaller than the file's nominal size.
    h, w = shape_of(gray)
    same = (w >= h) == (full[0] >= full[1])
    upright = (int(full[0]), int(full[1])) if same else (int(full[1]), int(full[0]))
    if max_side and max(h, w) > max_side:
        f = max_side / max(h, w)
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        gray = gray.resize((nw, nh), Image.BOX) if isinstance(gray, Image.Image) \
            else resize_box(gray, nw, nh)
        h, w = nh, nw
    if not keep_8bit:
        gray = as_float(gray)
    scale = max(upright[0] / w, upright[1] / h)
    return gray, scale, upright


def load_image(src: ImageSource, *, name: str | None = None,
               max_side: int | None = None) -> np.ndarray:
    """Decode any supported image (path, bytes, file object, PIL image, array) to grey float32.

    The result is in [0, 1] with 0 black and 1 white (the image as seen, no polarity decision
    yet), EXIF orientation applied, transparency composited, 16-bit data scaled. Raises
    ``ImageError`` with one line naming the file for anything that is not a readable image.
    """
    return decode(src, name=name, max_side=max_side)[0]


def _scale_ints(a: np.ndarray) -> np.ndarray:
    """Integer pixels -> [0, 1], by the range the data evidently uses (never clipped)."""
    a = a.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0 and hi <= 255:
        return a / 255.0
    if lo >= 0 and hi <= 65535:
        return a / 65535.0
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _scale_floats(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0 and hi <= 1:
        return a
    if lo >= 0 and hi <= 255:
        return a / 255.0
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _composite(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Grey of a transparent image: on white, unless only black shows the drawing.

    A digit drawn in dark ink on a transparent background must come out dark-on-white (not a
    black square); one drawn in white on a transparent background would vanish on white, so
    it is composited on black instead when that gives clearly more contrast.
    """
    on_white = rgb * alpha + (1.0 - alpha)
    if float(alpha.min()) >= 1.0:
        return on_white
    on_black = rgb * alpha
    if float(on_white.std()) * 2.0 < float(on_black.std()):
        return on_black
    return on_white


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def from_array(a: np.ndarray, *, name: str | None = None) -> np.ndarray:
    """Grey float32 [0, 1] from an array: (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA."""
    label = name or "<array>"
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        raise ImageError(f"{label}: expected an (H, W), (H, W, 3) or (H, W, 4) image array, "
                         f"got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"{label}: image has no pixels ({a.shape[1]}x{a.shape[0]})")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise ImageError(f"{label}: image too large ({a.shape[1]}x{a.shape[0]} pixels)")
    if a.dtype == np.bool_:
        x = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        x = _scale_ints(a)
    elif np.issubdtype(a.dtype, np.floating):
        x = _scale_floats(a)
    else:
        raise ImageError(f"{label}: unsupported pixel type {a.dtype}")
    if x.ndim == 2:
        return np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[2] == 2:  # grey + alpha
        g = _composite(x[..., :1], x[..., 1:2])[..., 0]
    elif x.shape[2] == 4:
        g = _luma(_composite(x[..., :3], x[..., 3:4]))
    else:
        g = _luma(x)
    return np.ascontiguousarray(g, dtype=np.float32)


def _jpeg_draft(img: Image.Image, max_side: int | None) -> None:
    # JPEG can decode at 1/2, 1/4 or 1/8 size directly: a 12 MP photo then costs a few ms.
    if max_side and img.format == "JPEG" and max(img.size) > 2 * max_side:
        f = max_side / max(img.size)
        target = (max(1, int(img.size[0] * f)), max(1, int(img.size[1] * f)))
        img.draft("RGB" if img.mode in ("RGB", "YCbCr", "CMYK") else img.mode, target)


def from_pil(img: Image.Image, *, name: str | None = None,
             max_side: int | None = None) -> np.ndarray:
    """Grey float32 [0, 1] from a PIL image (first frame, EXIF orientation applied)."""
    return as_float(_gray(img, name or "<image>", max_side))


def as_float(gray: np.ndarray | Image.Image) -> np.ndarray:
    """A grey image kept as 8-bit PIL ``L`` (see ``_gray``) -> float32 [0, 1]; arrays pass."""
    if isinstance(gray, Image.Image):
        return np.asarray(gray, dtype=np.float32) * np.float32(1.0 / 255.0)
    return gray


def shape_of(gray: np.ndarray | Image.Image) -> tuple[int, int]:
    """(height, width) of a grey array or PIL image."""
    if isinstance(gray, Image.Image):
        return gray.height, gray.width
    return gray.shape[0], gray.shape[1]


def resize_box(gray: np.ndarray | Image.Image, w: int, h: int) -> np.ndarray:
    """Area-averaged (BOX) resize of a grey image to ``w`` x ``h``, as float32 [0, 1].

    8-bit images are resized before the float conversion: a phone photo is then converted at
    the analysis size, not at full size (a quarter to a tenth of the work).
    """
    if isinstance(gray, Image.Image):
        return as_float(gray.resize((w, h), Image.BOX))
    return np.asarray(Image.fromarray(gray, "F").resize((w, h), Image.BOX), dtype=np.float32)


def _gray(img: Image.Image, label: str, max_side: int | None) -> np.ndarray | Image.Image:
    """The image's grey levels: an 8-bit PIL ``L`` image for 8-bit data (most files), else a
    float32 array in [0, 1] (16-bit, float, transparency composited)."""
    _check_size(img, label)
    if getattr(img, "n_frames", 1) != 1 and img.tell() != 0:
        img.seek(0)
    _jpeg_draft(img, max_side)
    img.load()  # decode the first frame only; GIF/TIFF frames after it are never touched
    img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return _scale_ints(np.asarray(img))
    if mode == "F":
        return _scale_floats(np.asarray(img))
    if mode == "1":
        return img.convert("L")
    if mode == "L":
        return img
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in img.info)
    if has_alpha:
        if mode in ("RGBa", "La"):
            img = img.convert("RGBA")
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        return np.ascontiguousarray(_luma(_composite(rgba[..., :3], rgba[..., 3:4])),
                                    dtype=np.float32)
    if mode != "RGB":
        try:
            img = img.convert("RGB")
        except ValueError:
            raise ImageError(f"{label}: unsupported colour mode {mode}") from None
    return img.convert("L")
