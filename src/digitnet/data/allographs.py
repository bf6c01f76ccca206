"""Synthetic allographs: digits drawn stroke by stroke in the shapes people actually write.

MNIST's writers (American census staff and students) mostly write a 1 as a bare stem, a 7
without a bar and a 4 closed at the top; many other writers do not. Each ``STYLES`` entry is one
way of writing a digit, as pen strokes in a unit box (x to the right, y down, the digit about
0.7 wide and 1 tall); a stroke is a list of smooth runs joined at corners. ``draw`` jitters the
control points, slants, stretches and rotates the digit, and renders the strokes with a round
pen as anti-aliased ink coverage (an exact distance field, so there is no aliasing at any size).

Two users: training mixes a pool of these, pre-rendered through the reader's own MNIST-style
normalisation (``training_pool``), into its batches; the cross-population benchmark draws its
own set with another seed and a pressure-varying pen that training never uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["STYLES", "draw", "styles_of", "training_pool"]

Point = tuple[float, float]
Stroke = list[list[Point]]  # smooth runs; each run starts where the previous one ended


def _arc(
    cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 9
) -> list[Point]:
    """Points on an ellipse from angle a0 to a1 (degrees; 0 = right, 90 = down)."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(a0, a1, n)
    ]


# One entry per (digit, style): its strokes. Coordinates were drawn by hand on a 0..1 grid.
STYLES: dict[tuple[int, str], list[Stroke]] = {
    (0, "oval"): [[_arc(0.35, 0.5, 0.3, 0.49, -90, -450, 13)]],
    (0, "overlap"): [[_arc(0.35, 0.5, 0.28, 0.48, -70, -470, 14)]],
    (0, "narrow"): [[_arc(0.3, 0.5, 0.18, 0.49, -90, -450, 13)]],
    (1, "stem"): [[[(0.38, 0.0), (0.33, 1.0)]]],
    (1, "flag"): [[[(0.18, 0.22), (0.4, 0.0)], [(0.4, 0.0), (0.38, 1.0)]]],
    (1, "long_flag"): [[[(0.02, 0.42), (0.22, 0.2), (0.42, 0.0)], [(0.42, 0.0), (0.4, 1.0)]]],
    (1, "flag_base"): [
        [[(0.14, 0.24), (0.38, 0.0)], [(0.38, 0.0), (0.38, 1.0)]],
        [[(0.1, 1.0), (0.66, 1.0)]],
    ],
    (2, "plain"): [
        [
            [
                (0.06, 0.24),
                (0.18, 0.05),
                (0.4, 0.0),
                (0.6, 0.12),
                (0.6, 0.36),
                (0.36, 0.66),
                (0.04, 1.0),
            ],
            [(0.04, 1.0), (0.7, 0.98)],
        ]
    ],
    (2, "looped"): [
        [
            [
                (0.06, 0.24),
                (0.18, 0.05),
                (0.4, 0.0),
                (0.6, 0.12),
                (0.6, 0.36),
                (0.38, 0.64),
                (0.16, 0.86),
                (0.28, 0.82),
                (0.3, 0.96),
                (0.14, 1.0),
                (0.1, 0.9),
                (0.32, 0.94),
                (0.72, 0.97),
            ]
        ]
    ],
    (2, "angular"): [
        [
            [(0.05, 0.18), (0.3, 0.0), (0.58, 0.06), (0.62, 0.25)],
            [(0.62, 0.25), (0.05, 1.0)],
            [(0.05, 1.0), (0.68, 1.0)],
        ]
    ],
    (3, "round"): [
        [
            [(0.08, 0.14), (0.3, 0.0), (0.55, 0.08), (0.56, 0.3), (0.3, 0.46)],
            [(0.3, 0.46), (0.58, 0.58), (0.62, 0.84), (0.38, 1.0), (0.04, 0.88)],
        ]
    ],
    (3, "flat_top"): [
        [
            [(0.06, 0.02), (0.64, 0.02)],
            [(0.64, 0.02), (0.26, 0.42)],
            [(0.26, 0.42), (0.54, 0.48), (0.66, 0.74), (0.46, 0.98), (0.2, 1.0), (0.03, 0.86)],
        ]
    ],
    (4, "closed"): [
        [[(0.5, 0.0), (0.04, 0.66)], [(0.04, 0.66), (0.74, 0.66)]],
        [[(0.5, 0.0), (0.5, 1.0)]],
    ],
    (4, "open"): [
        [[(0.1, 0.0), (0.05, 0.6)], [(0.05, 0.6), (0.72, 0.6)]],
        [[(0.54, 0.08), (0.54, 1.0)]],
    ],
    (4, "open_slant"): [
        [[(0.3, 0.0), (0.04, 0.62)], [(0.04, 0.62), (0.72, 0.6)]],
        [[(0.56, 0.18), (0.5, 1.0)]],
    ],
    (5, "standard"): [
        [
            [(0.14, 0.03), (0.1, 0.46)],
            [(0.1, 0.46), (0.36, 0.38), (0.6, 0.5), (0.64, 0.78), (0.42, 0.99), (0.05, 0.9)],
        ],
        [[(0.14, 0.03), (0.64, 0.02)]],
    ],
    (5, "one_stroke"): [
        [
            [(0.62, 0.02), (0.14, 0.03)],
            [(0.14, 0.03), (0.1, 0.44)],
            [(0.1, 0.44), (0.38, 0.38), (0.62, 0.52), (0.62, 0.8), (0.4, 1.0), (0.06, 0.9)],
        ]
    ],
    (6, "loop"): [
        [
            [
                (0.56, 0.02),
                (0.26, 0.2),
                (0.08, 0.56),
                (0.14, 0.9),
                (0.38, 1.0),
                (0.58, 0.86),
                (0.56, 0.62),
                (0.32, 0.55),
                (0.1, 0.7),
            ]
        ]
    ],
    (6, "straight"): [
        [
            [(0.52, 0.0), (0.12, 0.64)],
            [
                (0.12, 0.64),
                (0.16, 0.92),
                (0.38, 1.0),
                (0.58, 0.86),
                (0.54, 0.62),
                (0.3, 0.56),
                (0.12, 0.66),
            ],
        ]
    ],
    (7, "plain"): [[[(0.04, 0.02), (0.68, 0.02)], [(0.68, 0.02), (0.26, 1.0)]]],
    (7, "crossed"): [
        [[(0.04, 0.02), (0.68, 0.02)], [(0.68, 0.02), (0.26, 1.0)]],
        [[(0.2, 0.52), (0.64, 0.5)]],
    ],
    (7, "hook"): [
        [
            [(0.04, 0.16), (0.07, 0.02)],
            [(0.07, 0.02), (0.66, 0.04)],
            [(0.66, 0.04), (0.46, 0.45), (0.34, 1.0)],
        ]
    ],
    (8, "single"): [
        [
            [
                (0.56, 0.12),
                (0.36, 0.0),
                (0.12, 0.12),
                (0.16, 0.32),
                (0.5, 0.6),
                (0.6, 0.84),
                (0.36, 1.0),
                (0.1, 0.86),
                (0.18, 0.62),
                (0.52, 0.32),
                (0.56, 0.12),
            ]
        ]
    ],
    (8, "two_loops"): [
        [_arc(0.35, 0.24, 0.2, 0.23, -90, -450, 11)],
        [_arc(0.35, 0.73, 0.27, 0.26, -90, -450, 11)],
    ],
    (9, "straight"): [[_arc(0.34, 0.25, 0.26, 0.24, 0, -360, 11)], [[(0.6, 0.1), (0.6, 1.0)]]],
    (9, "curved"): [
        [_arc(0.34, 0.25, 0.26, 0.24, 0, -360, 11)],
        [[(0.6, 0.22), (0.58, 0.7), (0.46, 0.97), (0.2, 0.96)]],
    ],
    (9, "slanted"): [[_arc(0.36, 0.25, 0.26, 0.24, 10, -350, 11)], [[(0.62, 0.2), (0.36, 1.0)]]],
}


def styles_of(digit: int) -> list[str]:
    """The style names of ``digit`` in ``STYLES``."""
    return [s for (d, s) in STYLES if d == digit]


def _catmull_rom(points: Sequence[Point], per_segment: int = 8) -> np.ndarray:
    """A smooth curve through ``points`` (centripetal-free uniform Catmull-Rom), (M, 2)."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 3:
        t = np.linspace(0.0, 1.0, per_segment + 1)[:, None]
        return p[0] + t * (p[-1] - p[0]) if len(p) == 2 else p
    ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    out.append(p[-1:])
    return np.vstack(out)


def _polylines(strokes: list[Stroke], rng: np.random.Generator, jitter: float) -> list[np.ndarray]:
    """Each stroke as one dense polyline in unit coordinates, control points jittered."""
    lines = []
    for stroke in strokes:
        parts = []
        corner = None  # the jittered end of the previous run: the next run starts there
        for run in stroke:
            pts = np.asarray(run, dtype=np.float64)
            pts = pts + rng.normal(0.0, jitter, pts.shape)
            if corner is not None:
                pts[0] = corner
            corner = pts[-1].copy()
            parts.append(_catmull_rom([tuple(q) for q in pts]))
        lines.append(np.vstack(parts))
    return lines


def draw(
    digit: int,
    style: str,
    rng: np.random.Generator,
    height: int = 64,
    *,
    width: float | None = None,
    slant: float | None = None,
    aspect: float | None = None,
    rotate: float | None = None,
    jitter: float = 0.025,
    pressure: float = 0.0,
    margin: float = 0.12,
) -> np.ndarray:
    """One allograph as ink coverage float32 (H, W) in [0, 1] (1 = ink), ``height`` px tall.

    Unset shape parameters are drawn at random: pen ``width`` (fraction of the height,
    0.07-0.16), ``slant`` (shear, -0.15..0.4: x moves by slant * height going up), ``aspect``
    (width scale, 0.75-1.3), ``rotate`` (degrees, +-8). ``pressure`` > 0 makes the pen width vary
    along each stroke by up to that fraction (a fountain pen or a finger on glass). ``margin``
    is the blank border, as a fraction of the height.
    """
    strokes = STYLES[(digit, style)]
    width = float(rng.uniform(0.07, 0.16)) if width is None else width
    slant = float(rng.uniform(-0.15, 0.4)) if slant is None else slant
    aspect = float(np.exp(rng.uniform(np.log(0.75), np.log(1.3)))) if aspect is None else aspect
    rotate = float(rng.uniform(-8.0, 8.0)) if rotate is None else rotate
    lines = _polylines(strokes, rng, jitter)
    c, s = math.cos(math.radians(rotate)), math.sin(math.radians(rotate))
    shaped = []
    for ln in lines:
        x, y = ln[:, 0] * aspect, ln[:, 1]
        x = x + slant * (0.5 - y)  # upright at mid-height; the top leans by slant / 2
        x, y = c * (x - 0.35) - s * (y - 0.5), s * (x - 0.35) + c * (y - 0.5)
        shaped.append(np.stack([x, y], 1))
    allpts = np.vstack(shaped)
    lo, hi = allpts.min(0), allpts.max(0)
    scale = height / max(hi[1] - lo[1], 1e-6)
    r0 = 0.5 * width * height
    pad = margin * height + r0 + 1.0
    w_px = math.ceil((hi[0] - lo[0]) * scale + 2 * pad)
    h_px = math.ceil(height + 2 * pad)
    # Rendered with a round pen at 4x resolution by Pillow, then area-averaged down: the
    # anti-aliasing of a real pen scanned at this size, at well under a millisecond a digit.
    ss = 4
    canvas = Image.new("L", (w_px * ss, h_px * ss), 0)
    pen = ImageDraw.Draw(canvas)
    for ln in shaped:
        pts = ((ln - lo) * scale + pad) * ss
        n = len(pts)
        if pressure > 0:
            phase = rng.uniform(0, 2 * np.pi)
            rad = r0 * (1.0 + pressure * np.sin(np.linspace(0, np.pi, n) * 2 + phase))
        else:
            rad = np.full(n, r0)
        rad = np.maximum(rad, 0.6) * ss
        for i in range(n):
            cx, cy, r = float(pts[i, 0]), float(pts[i, 1]), float(rad[i])
            pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
            if i + 1 < n:
                pen.line(
                    (cx, cy, float(pts[i + 1, 0]), float(pts[i + 1, 1])),
                    fill=255,
                    width=max(1, round(2 * r)),
                )
    small = canvas.resize((w_px, h_px), Image.Resampling.BOX)
    ink = np.asarray(small, dtype=np.float32) / 255.0
    return ink.astype(np.float32)


def training_pool(count: int, seed: int, height: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """``count`` allographs as uint8 (N, 28, 28) MNIST-style images (white on black) + labels.

    Each is drawn with a constant-width pen at random shape parameters and normalised by the
    reader's own ``to_mnist`` (crop, stroke width, 20x20 box, centre of mass), so training sees
    them as the network sees a user's digit. Styles are drawn uniformly within each digit and
    digits uniformly, so the shapes MNIST lacks are as common as those it has.
    """
    from ..preprocess._mnist import to_mnist

    rng = np.random.default_rng(seed)
    keys = list(STYLES)
    by_digit = {d: [k for k in keys if k[0] == d] for d in range(10)}
    xs = np.zeros((count, 28, 28), np.uint8)
    ys = np.zeros(count, np.int64)
    for i in range(count):
        d = int(i % 10)
        _, style = by_digit[d][int(rng.integers(len(by_digit[d])))]
        ink = draw(d, style, rng, height=height)
        img = to_mnist(ink)
        if img is not None:
            xs[i] = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
        ys[i] = d
    order = rng.permutation(count)
    return xs[order], ys[order]
