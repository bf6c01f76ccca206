"""Opening user images safely and turning them into one float32 grey channel.

Everything here treats the file as hostile: Pillow parses only the header before we check the
pixel count, decoding errors of any kind become one ``ImageError`` line, and warnings Pillow
raises about a broken file are answers about that file, not something to print.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any, BinaryIO, Literal, overload

import numpy as np
from PIL import Image, ImageChops, ImageOps, ImageStat

from .._io import check_user_file, read_user_file
from ..errors import ImageError, one_line

__all__ = [
    "MAX_PIXELS",
    "WORK_MAX_SIDE",
    "ImageSource",
    "decode",
    "from_array",
    "from_pil",
    "load_image",
]

ImageSource = (
    str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | Image.Image | np.ndarray
)

# Pillow's own decompression-bomb limit (about 89 megapixels, a 12k x 7k photo): larger images
# are refused before any pixel is decoded. Phone photos (12-50 MP) stay well inside it.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

# Analysis works on images whose longer side is at most this many pixels. A written number
# of six digits still gets digits about 100 px tall at this size, five times the 20 px the
# network sees, while a 12 MP photo is decoded (JPEG draft mode) and analysed in milliseconds.
WORK_MAX_SIDE = 1024

# Memory budget, applied from the header before a pixel is decoded: the decoded image (bytes
# per pixel of its mode; 4 for 16-bit and float data, which are scaled as float32) may take at
# most this much. A 9000x9000 RGBA PNG of 314 KB (fully transparent) needs 324 MB and is
# refused; every later intermediate stays within a small multiple of the 8-bit image, or of the
# reduced image when the caller asks for at most ``max_side`` pixels.
MAX_DECODED_BYTES = 256 << 20
# Without a ``max_side`` the grey result is still reduced (BOX) to at most this many pixels on
# its longer side where the image has transparency or more than 8 bits: those paths need float
# or several 8-bit planes at the working size.
FULL_MAX_SIDE = 4096
# Files are size-checked before they are read: no image we can decode within the budget above
# is near this (a 50 MP phone JPEG is 10-25 MB; an uncompressed 8000x8000 RGB TIFF 192 MB).
MAX_FILE_BYTES = 256 << 20
# Files larger than this must start with the signature of a format we know, or they are refused
# before they are read (Pillow's formats without a signature, such as TGA, stay readable when
# small).
SNIFF_ABOVE = 16 << 20
_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF",
    b"P1",
    b"P2",
    b"P3",
    b"P4",
    b"P5",
    b"P6",
    b"\x00\x00\x01\x00",
    b"\x00\x00\x00\x0cjP  ",
    b"\xff\x4f\xff\x51",
    b"8BPS",
    b"qoif",
)
_BYTES_PER_PIXEL = {
    "1": 1,
    "L": 1,
    "P": 1,
    "LA": 2,
    "La": 2,
    "PA": 2,
    "RGB": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "RGBa": 4,
    "RGBX": 4,
    "CMYK": 4,
}


def _name(src: Any, name: str | None) -> str:
    # Escaped: a file name with a newline must not split the error line that names it.
    if name:
        return one_line(name)
    if isinstance(src, (str, os.PathLike)):
        return one_line(os.fspath(src))
    return "<image>"


def _open(src: Any, label: str) -> Image.Image:
    if isinstance(src, (str, os.PathLike)):
        # Regular file, size, then the first bytes, all before the file is read into memory.
        size = check_user_file(
            src, error=ImageError, max_bytes=MAX_FILE_BYTES, what="image", label=label
        )
        if size > SNIFF_ABOVE:
            head = read_user_file(
                src, error=ImageError, max_bytes=1 << 40, what="image", label=label, head=16
            )
            if not head.startswith(_MAGIC):
                raise ImageError(
                    f"{label}: not an image file (no known image signature in its first bytes)"
                )
        data = read_user_file(
            src, error=ImageError, max_bytes=MAX_FILE_BYTES, what="image", label=label
        )
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
        raise ImageError(
            f"{label}: image too large ({w}x{h} pixels, limit {MAX_PIXELS:,}); "
            "possible decompression bomb"
        )


def _check_budget(img: Image.Image, label: str) -> None:
    """The decoded image must fit ``MAX_DECODED_BYTES`` (after JPEG draft mode shrank it)."""
    w, h = img.size
    need = w * h * _BYTES_PER_PIXEL.get(img.mode, 4)
    if need > MAX_DECODED_BYTES:
        raise ImageError(
            f"{label}: image too large to decode ({w}x{h} {img.mode} needs "
            f"{need / (1 << 20):,.0f} MiB, limit {MAX_DECODED_BYTES >> 20} MiB)"
        )


@overload
def decode(
    src: ImageSource,
    *,
    name: str | None = ...,
    max_side: int | None = ...,
    keep_8bit: Literal[False] = ...,
) -> tuple[np.ndarray, float, tuple[int, int]]: ...
@overload
def decode(
    src: ImageSource,
    *,
    name: str | None = ...,
    max_side: int | None = ...,
    keep_8bit: bool = ...,
) -> tuple[np.ndarray | Image.Image, float, tuple[int, int]]: ...
def decode(
    src: ImageSource,
    *,
    name: str | None = None,
    max_side: int | None = WORK_MAX_SIDE,
    keep_8bit: bool = False,
) -> tuple[np.ndarray | Image.Image, float, tuple[int, int]]:
    """Decode ``src`` into a grey float32 image in [0, 1] (0 black, 1 white).

    Returns ``(gray, scale, (width, height))``: ``gray`` is at most ``max_side`` pixels on its
    longer side, ``scale`` multiplies its pixel coordinates back to the upright full-size image
    of ``width`` x ``height`` pixels (EXIF orientation applied). With ``keep_8bit``, 8-bit
    images come back as PIL ``L`` images (``as_float``, ``resize_box`` and ``shape_of`` take
    either), so the caller converts to float only at the size it analyses.
    """
    label = _name(src, name)
    gray: np.ndarray | Image.Image
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
            raise ImageError(
                f"{label}: image too large (over {MAX_PIXELS:,} pixels); "
                "possible decompression bomb"
            ) from None
        except Image.UnidentifiedImageError:
            raise ImageError(
                f"{label}: not an image file (or a format Pillow cannot read)"
            ) from None
        except MemoryError:
            raise ImageError(f"{label}: not enough memory to decode this image") from None
        except Exception as exc:
            # Pillow's decoders report broken files with a zoo of types (OSError, SyntaxError,
            # ValueError, EOFError, struct.error, zlib.error, IndexError...). Only Pillow calls
            # run in this block, so any of them means "this file is broken", not a bug of ours.
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ImageError(f"{label}: cannot decode image: {reason}") from None
    return _finish(gray, full, max_side, keep_8bit)


def _finish(
    gray: np.ndarray | Image.Image,
    full: tuple[int, int],
    max_side: int | None,
    keep_8bit: bool = False,
) -> tuple[np.ndarray | Image.Image, float, tuple[int, int]]:
    # EXIF rotation may swap width and height: the decoded array has the upright orientation,
    # and JPEG draft mode may have decoded it smaller than the file's nominal size.
    h, w = shape_of(gray)
    same = (w >= h) == (full[0] >= full[1])
    upright = (int(full[0]), int(full[1])) if same else (int(full[1]), int(full[0]))
    if max_side and max(h, w) > max_side:
        f = max_side / max(h, w)
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        gray = (
            box_resize(gray, nw, nh) if isinstance(gray, Image.Image) else resize_box(gray, nw, nh)
        )
        h, w = nh, nw
    if not keep_8bit:
        gray = as_float(gray)
    scale = max(upright[0] / w, upright[1] / h)
    return gray, scale, upright


def load_image(
    src: ImageSource, *, name: str | None = None, max_side: int | None = None
) -> np.ndarray:
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
        raise ImageError(
            f"{label}: expected an (H, W), (H, W, 3) or (H, W, 4) image array, got shape {a.shape}"
        )
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


def from_pil(
    img: Image.Image, *, name: str | None = None, max_side: int | None = None
) -> np.ndarray:
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
        return as_float(box_resize(gray, w, h))
    return np.asarray(box_resize(Image.fromarray(gray, "F"), w, h), dtype=np.float32)


def box_resize(img: Image.Image, w: int, h: int) -> Image.Image:
    """BOX resize that first ``reduce``s by whole factors: Pillow's resize keeps a table of
    coefficients per output pixel (8 bytes for each input pixel it covers), 640 MB for an
    80,000,000 x 1 image resized to 1024 x 1; ``reduce`` needs none."""
    fx, fy = max(1, img.width // max(1, w)), max(1, img.height // max(1, h))
    if fx > 1 or fy > 1:
        img = img.reduce((fx, fy))
    return img if img.size == (w, h) else img.resize((w, h), Image.Resampling.BOX)


def _gray(img: Image.Image, label: str, max_side: int | None) -> np.ndarray | Image.Image:
    """The image's grey levels: an 8-bit PIL ``L`` image for 8-bit data (most files), else a
    float32 array in [0, 1] (16-bit, float, transparency composited)."""
    _check_size(img, label)
    if getattr(img, "n_frames", 1) != 1 and img.tell() != 0:
        img.seek(0)
    _jpeg_draft(img, max_side)
    _check_budget(img, label)
    img.load()  # decode the first frame only; GIF/TIFF frames after it are never touched
    if img.getexif().get(0x0112, 1) != 1:  # exif_transpose copies even an upright image
        img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    side = max_side or FULL_MAX_SIDE
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        if mode != "F" and mode != "I":
            img = img.convert("I")  # 16-bit -> 32-bit ints: Pillow reduces I and F, not I;16
        img = _reduce(img, side)
        a = np.asarray(img)
        return _scale_floats(a) if mode == "F" else _scale_ints(a)
    if mode == "1":
        return img.convert("L")
    if mode == "L" and "transparency" not in img.info:
        return img
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in img.info
    )
    if has_alpha:
        return _composite_8bit(img, side)
    if mode != "RGB":
        try:
            img = img.convert("RGB")
        except ValueError:
            raise ImageError(f"{label}: unsupported colour mode {mode}") from None
    return img.convert("L")


def _reduce(img: Image.Image, side: int) -> Image.Image:
    """Integer BOX reduction (Pillow's ``reduce``: premultiplied for LA) to at most ``side``."""
    f = -(-max(img.size) // side)  # ceil
    return img.reduce(f) if f > 1 else img


def _alpha_planes(img: Image.Image) -> tuple[Image.Image, Image.Image]:
    """(luma, alpha) of a transparent image as two 8-bit planes, without a 4-byte LA copy."""
    if img.mode == "P":
        # Through the palette: luma of each entry, and each entry's alpha as a grey palette.
        trns = img.info.get("transparency")
        rgb = (img.getpalette("RGB") or []) + [0] * 768
        if isinstance(trns, bytes):
            alphas = list(trns) + [255] * (256 - len(trns))
        else:
            alphas = [0 if i == trns else 255 for i in range(256)]
        if img.palette is not None and img.palette.mode == "RGBA":
            pal = img.getpalette("RGBA") or []
            alphas = [min(alphas[i], pal[4 * i + 3]) for i in range(len(pal) // 4)]
            alphas += [255] * (256 - len(alphas))
        luma = [
            (rgb[3 * i] * 299 + rgb[3 * i + 1] * 587 + rgb[3 * i + 2] * 114) // 1000
            for i in range(256)
        ]
        idx = img.copy()
        idx.info.pop("transparency", None)
        idx.putpalette([v for a in luma for v in (a, a, a)])
        grey = idx.convert("L")
        idx.putpalette([v for a in alphas[:256] for v in (a, a, a)])
        return grey, idx.convert("L")
    if img.mode in ("L", "RGB"):  # a colour key ("transparency" in info)
        grey = img.convert("L")
        key = img.info["transparency"]
        lut_img = img if img.mode == "L" else img.convert("RGB")
        if img.mode == "L":
            alpha = grey.point(lambda v, k=key: 0 if v == k else 255)
        else:
            alpha = (
                ImageChops.difference(lut_img, Image.new("RGB", img.size, tuple(key)))
                .convert("L")
                .point(lambda v: 0 if v == 0 else 255)
            )
        return grey, alpha
    if img.mode in ("RGBa", "La"):
        img = img.convert("RGBA")
    if img.mode == "PA":
        img = img.convert("RGBA")
    alpha = img.getchannel("A")
    return img.convert("L"), alpha  # RGBA/LA -> L ignores alpha: the colour's luma


def _composite_8bit(img: Image.Image, side: int) -> Image.Image:
    """``_composite`` in 8 bits: luma and alpha planes, premultiplied, reduced, composited.

    ``luma*alpha`` and ``alpha`` are linear in the pixels, so reducing them first composites
    exactly as the full-size image would (up to rounding); on white the grey is
    ``luma*alpha + (255 - alpha)``, on black ``luma*alpha``. Peak memory is the decoded image
    plus three 8-bit planes of it, never float32 at full size.
    """
    grey, alpha = _alpha_planes(img)
    ink = ImageChops.multiply(grey, alpha)  # luma * alpha / 255
    del grey
    ink, alpha = _reduce(ink, side), _reduce(alpha, side)
    lo = alpha.getextrema()[0]
    on_white = ImageChops.add(ink, ImageChops.invert(alpha))
    if isinstance(lo, (int, float)) and lo >= 255:
        return on_white
    if ImageStat.Stat(on_white).stddev[0] * 2.0 < ImageStat.Stat(ink).stddev[0]:
        return ink
    return on_white
