"""Any user image or canvas -> 28x28 MNIST-style input(s) -> the digits read; shared by the
CLI, the GUI and the web service. Nothing here imports torch: the predictor is handed in.

Pipeline (see docs/architecture.md, "Input convention", and docs/reading.md):

1. ``_load``: ``load_image`` / ``from_pil`` / ``from_array`` decode safely (EXIF orientation,
   transparency composited, 16-bit scaled, first frame only, pixel budget) to grey float32.
2. ``_ink``: ``ink_layer`` / ``ink_mask`` decide polarity, flatten uneven lighting and
   threshold; ink grey levels in [0, 1].
3. ``_segment``: pieces of ink left to right (merged, specks dropped, touching digits cut).
4. ``_mnist``: ``to_mnist`` crops, normalises stroke width, fits 20x20 and centres in 28x28.
5. ``_candidates`` / ``_analyse``: ``prepare`` makes the digit crops and the alternatives
   (joins of neighbouring pieces, splits of one piece into two digits): a ``Prepared``.
6. ``_choose`` / ``_reading``: ``classify`` lets the network choose among them and returns
   ``Reading``s (text, digits with their probabilities); ``read_digits`` and ``read_bytes``
   run steps 1-6; ``reading_to_json`` is the per-image object of ``predict --json``.
7. ``_files``: ``read_files`` reads files, folders and globs (one listing rule,
   ``list_images``; one label rule, ``label_from_name``), in worker processes when many.
"""

from __future__ import annotations

from ._analyse import prepare, prepare_single, segment
from ._candidates import DigitCrop, Prepared, SplitSource
from ._files import IMAGE_EXTENSIONS, label_from_name, list_images, read_files
from ._ink import InkLayer, ink_layer, ink_mask, otsu_threshold
from ._load import MAX_PIXELS, WORK_MAX_SIDE, ImageSource, from_array, from_pil, load_image
from ._mnist import deskew, stroke_width, to_mnist
from ._reading import (
    REJECTED,
    DigitResult,
    ProbaPredictor,
    Reading,
    classify,
    read_bytes,
    read_digits,
    reading_to_json,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "REJECTED",
    "WORK_MAX_SIDE",
    "DigitCrop",
    "DigitResult",
    "ImageSource",
    "InkLayer",
    "Prepared",
    "ProbaPredictor",
    "Reading",
    "SplitSource",
    "classify",
    "deskew",
    "from_array",
    "from_pil",
    "ink_layer",
    "ink_mask",
    "label_from_name",
    "list_images",
    "load_image",
    "otsu_threshold",
    "prepare",
    "prepare_single",
    "read_bytes",
    "read_digits",
    "read_files",
    "reading_to_json",
    "segment",
    "stroke_width",
    "to_mnist",
]
