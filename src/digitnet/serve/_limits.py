"""What the server checks about an upload before any pixel of it is decoded.

The size of the request body is capped while it is received (``app.py``); here the image's
header is parsed (Pillow reads only the header on ``open``) to check its format and its pixel
count, so a 43-byte GIF announcing a 9000x9000 canvas is refused before it can cost memory.
"""

from __future__ import annotations

import io
import warnings

__all__ = ["ALLOWED_FORMATS", "DEFAULT_MAX_PIXELS", "UploadRejected", "check_image_header"]

# The formats ``digitnet predict`` lists for folders. Pillow can open more (EPS, PSD, ICO...),
# some through outside programs; a public endpoint reads only these.
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")

# 40 megapixels: a 48 MP phone photo at full size is refused, everything a person draws,
# scans or photographs at normal settings is not. Decoded to 8-bit grey that is 40 MB, the
# largest single buffer one request can make the reading code allocate before it shrinks the
# image to its working size.
DEFAULT_MAX_PIXELS = 40_000_000


class UploadRejected(Exception):
    """An upload the server refuses: ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_image_header(data: bytes, name: str, max_pixels: int) -> tuple[str, int, int]:
    """``(format, width, height)`` of ``data``; ``UploadRejected`` when it must not be decoded.

    400: empty or not an image; 415: an image in a format the server does not read;
    413: more pixels than ``max_pixels``.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UploadRejected(400, f"{name}: empty file (0 bytes)")
    with warnings.catch_warnings():
        # Pillow warns about odd but readable headers, and about decompression bombs (the
        # pixel check below answers those first).
        warnings.simplefilter("ignore")
        try:
            with Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS)) as img:
                fmt, (w, h) = str(img.format), img.size
        except UnidentifiedImageError:
            try:
                with Image.open(io.BytesIO(data)) as other:
                    fmt = str(other.format)
            except Exception:  # any failure here means "not an image"
                raise UploadRejected(
                    400, f"{name}: not an image file (or a format that cannot be read)"
                ) from None
            raise UploadRejected(
                415, f"{name}: {fmt} images are not accepted (send {', '.join(ALLOWED_FORMATS)})"
            ) from None
        except Image.DecompressionBombError:
            raise UploadRejected(
                413, f"{name}: image too large (possible decompression bomb)"
            ) from None
        except Exception as exc:  # Pillow reports broken headers in many types
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UploadRejected(400, f"{name}: cannot read image header: {reason}") from None
    if w <= 0 or h <= 0:
        raise UploadRejected(400, f"{name}: image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise UploadRejected(
            413, f"{name}: image too large ({w}x{h} = {w * h:,} pixels, limit {max_pixels:,})"
        )
    return fmt, w, h
