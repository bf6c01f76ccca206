"""Generate a realistic test collection of digit images from the MNIST *test* digits.

Each image is a handwritten MNIST test digit (or a number composed of several) rendered as a
person's photo, scan or canvas drawing would look: scaled up to 60-300 px, off-centre on paper
with texture and gradients, both polarities, uneven light, blur, noise, JPEG compression, thick
brush or thin pen strokes, small rotations, and 2-6 digit numbers with realistic spacing (some
touching). File names carry the label (``<label>_<id>.png``) so ``digitnet predict
--labels-from-names`` can score them; ``manifest.csv`` lists file, label and condition.

    python benchmarks/synth_digits.py OUT_DIR [--count 1000] [--seed 0] [--data-dir DIR]

Only MNIST's test split is used, so a model trained on the training split never saw these
writers' digits.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parents[1]

CONDITIONS = [
    "clean",
    "paper",
    "inverted",
    "uneven_light",
    "blur_noise",
    "jpeg",
    "thick",
    "thin",
    "rotated",
    "color",
    "number",
]


def load_test_digits(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST test images (uint8 N x 28 x 28) and labels, via digitnet when it is available."""
    try:
        sys.path.insert(0, str(REPO / "src"))
        from digitnet.data.mnist import load_mnist  # type: ignore[import-not-found]

        return load_mnist(data_dir, "test")
    except ImportError:
        pass

    def read(name: str, offset: int) -> np.ndarray:
        for cand in (name + ".gz", name):
            p = data_dir / cand
            if p.exists():
                raw = gzip.open(p).read() if cand.endswith(".gz") else p.read_bytes()
                return np.frombuffer(raw, np.uint8, offset=offset)
        raise SystemExit(f"{data_dir}: {name} not found")

    x = read("t10k-images-idx3-ubyte", 16).reshape(-1, 28, 28)
    y = read("t10k-labels-idx1-ubyte", 8).astype(np.int64)
    return x, y


def default_data_dir() -> Path:
    env = os.environ.get("DIGITNET_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "mnist"


def render_digit(
    img28: np.ndarray,
    height: int,
    rng: np.random.Generator,
    stroke: str = "normal",
    angle: float = 0.0,
) -> np.ndarray:
    """One MNIST digit as crisp ink coverage in [0, 1], ``height`` px tall (plus rotation)."""
    a = img28.astype(np.float32) / 255.0
    rows = np.flatnonzero(a.max(axis=1) > 0.1)
    cols = np.flatnonzero(a.max(axis=0) > 0.1)
    a = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    pad = 3
    a = np.pad(a, pad)
    scale = height / (a.shape[0] - 2 * pad)
    size = (max(1, round(a.shape[1] * scale)), max(1, round(a.shape[0] * scale)))
    up = np.asarray(Image.fromarray(a, "F").resize(size, Image.BICUBIC), dtype=np.float32)
    up = ndi.gaussian_filter(up, max(0.5, scale * 0.35))
    # Pen ink is crisp: a steep ramp around the half level gives solid strokes with a thin
    # anti-aliased edge instead of MNIST's blurry upscaled look.
    level = 0.45
    if stroke == "thin":
        # A fine pen draws every stroke, only narrower: each stroke is cut at a fixed fraction
        # of its own peak. (A single high cut, as at first, erased MNIST's fainter strokes
        # outright and left digits no one could read, such as a 2 reduced to a bare arc.)
        peak = ndi.grey_dilation(up, size=(max(3, int(scale * 3)) | 1,) * 2)
        level = np.maximum(0.88 * peak, 0.3)
    ink = np.clip((up - level) * 6.0 + 0.5, 0.0, 1.0)
    if stroke == "thick":
        r = max(1, round(scale * rng.uniform(0.8, 1.6)))
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        ink = np.pad(ink, r)
        ink = ndi.grey_dilation(ink, footprint=(xx * xx + yy * yy) <= r * r)
    if angle:
        ink = ndi.rotate(ink, angle, reshape=True, order=1, mode="constant")
    return np.clip(ink, 0.0, 1.0)


def compose_number(digits: list[np.ndarray], height: int, rng: np.random.Generator) -> np.ndarray:
    """Several digits side by side with handwriting-like spacing (some touching)."""
    parts = []
    for d in digits:
        h = int(height * rng.uniform(0.88, 1.08))
        parts.append(render_digit(d, h, rng))
    H = max(p.shape[0] for p in parts) + int(0.12 * height)
    gaps = []
    for _ in parts[1:]:
        # One gap in five touches or slightly overlaps the previous digit.
        gaps.append(
            int(
                height
                * (rng.uniform(-0.06, 0.02) if rng.random() < 0.2 else rng.uniform(0.06, 0.35))
            )
        )
    W = sum(p.shape[1] for p in parts) + sum(gaps) + 2
    canvas = np.zeros((H, max(W, 1)), np.float32)
    x = 0
    for i, p in enumerate(parts):
        if i:
            x += gaps[i - 1]
        x = max(x, 0)
        y = int(rng.integers(0, H - p.shape[0] + 1))
        w = min(p.shape[1], canvas.shape[1] - x)
        canvas[y : y + p.shape[0], x : x + w] = np.maximum(
            canvas[y : y + p.shape[0], x : x + w], p[:, :w]
        )
        x += p.shape[1]
    return canvas


def paper(h: int, w: int, rng: np.random.Generator, textured: bool) -> np.ndarray:
    base = rng.uniform(0.78, 0.97)
    bg = np.full((h, w), base, np.float32)
    if textured:
        grain = ndi.gaussian_filter(rng.normal(0, 1, (h, w)).astype(np.float32), 1.0)
        blotch = ndi.zoom(
            rng.normal(0, 1, (max(2, h // 40), max(2, w // 40))),
            (h / max(2, h // 40), w / max(2, w // 40)),
            order=1,
        )[:h, :w]
        bg += 0.02 * grain + 0.03 * np.pad(
            blotch, ((0, h - blotch.shape[0]), (0, w - blotch.shape[1])), mode="edge"
        )
    return bg


def lighting(h: int, w: int, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Multiplicative light: a linear gradient plus a soft off-centre spot or shadow."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = rng.uniform(0, 2 * np.pi)
    grad = (xx / max(w, 1) - 0.5) * np.cos(t) + (yy / max(h, 1) - 0.5) * np.sin(t)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    spot = np.exp(-(((yy - cy) / (0.6 * h)) ** 2 + ((xx - cx) / (0.6 * w)) ** 2))
    light = 1.0 + strength * grad + rng.choice([-1, 1]) * 0.5 * strength * (spot - 0.5)
    return np.clip(light, 0.25, 1.3)


def make_image(
    x: np.ndarray, y: np.ndarray, condition: str, rng: np.random.Generator
) -> tuple[Image.Image, str, str]:
    """One synthetic image: (PIL image, label text, file extension)."""
    height = int(rng.uniform(60, 300))
    if condition == "number":
        n = int(rng.integers(2, 7))
        height = int(rng.uniform(50, 160))
        idx = rng.integers(0, len(x), n)
        ink = compose_number([x[i] for i in idx], height, rng)
        label = "".join(str(int(y[i])) for i in idx)
    else:
        i = int(rng.integers(0, len(x)))
        stroke = condition if condition in ("thick", "thin") else "normal"
        angle = rng.uniform(-12, 12) if condition == "rotated" else rng.uniform(-3, 3)
        ink = render_digit(x[i], height, rng, stroke=stroke, angle=angle)
        label = str(int(y[i]))
    # Off-centre placement with margins of 0.15-1.0 digit heights on each side.
    m = [int(rng.uniform(0.15, 1.0) * height) for _ in range(4)]
    ink = np.pad(ink, ((m[0], m[1]), (m[2], m[3])))
    h, w = ink.shape
    textured = condition not in ("clean",)
    bg = paper(h, w, rng, textured)
    ink_level = rng.uniform(0.05, 0.35)
    if condition == "inverted":  # chalk or white pen on a dark board / screen
        bg = 1.0 - bg * rng.uniform(0.9, 1.0)
        ink_level = rng.uniform(0.75, 0.98)
    img = bg * (1 - ink) + ink_level * ink
    if condition == "uneven_light":
        img = img * lighting(h, w, rng, rng.uniform(0.5, 0.9))
    elif condition not in ("clean",):
        img = img * lighting(h, w, rng, rng.uniform(0.0, 0.25))
    if condition == "blur_noise":
        img = ndi.gaussian_filter(img, rng.uniform(0.8, 2.5))
        img = img + rng.normal(0, rng.uniform(0.02, 0.06), img.shape)
    elif condition != "clean":
        img = img + rng.normal(0, 0.01, img.shape)
    img = np.clip(img, 0, 1)
    if condition == "color":
        paper_rgb = np.array(rng.uniform(0.8, 1.0, 3), np.float32)
        ink_rgb = np.array(
            [rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.3), rng.uniform(0.3, 0.8)], np.float32
        )[rng.permutation(3)]
        rgb = (img[..., None] - ink_level) / max(1e-3, (img.max() - ink_level))
        rgb = np.clip(rgb, 0, 1) * paper_rgb + (1 - np.clip(rgb, 0, 1)) * ink_rgb
        pil = Image.fromarray((rgb * 255).astype(np.uint8), "RGB")
    else:
        pil = Image.fromarray((img * 255).astype(np.uint8), "L")
    ext = ".png"
    if condition in ("jpeg", "blur_noise", "uneven_light", "color"):
        if condition == "color":
            pil = pil.filter(ImageFilter.GaussianBlur(0.6))
        buf = io.BytesIO()
        q = int(rng.uniform(15, 40)) if condition == "jpeg" else int(rng.uniform(60, 90))
        pil.save(buf, "JPEG", quality=q)
        pil = Image.open(io.BytesIO(buf.getvalue()))
        ext = ".jpg"
    return pil, label, ext


def generate(
    out: Path, count: int, seed: int, data_dir: Path, conditions: list[str] | None = None
) -> list[tuple[str, str, str]]:
    x, y = load_test_digits(data_dir)
    rng = np.random.default_rng(seed)
    conds = conditions or CONDITIONS
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(count):
        cond = conds[k % len(conds)]
        pil, label, ext = make_image(x, y, cond, rng)
        name = f"{label}_{k:05d}{ext}"
        if ext == ".jpg":
            (out / name).write_bytes(_jpeg_bytes(pil))
        else:
            pil.save(out / name)
        rows.append((name, label, cond))
    with open(out / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label", "condition"])
        w.writerows(rows)
    return rows


def _jpeg_bytes(pil: Image.Image) -> bytes:
    # Already JPEG-compressed in make_image: re-save losslessly-ish at the same quality so the
    # file on disk is a JPEG with the artefacts baked in.
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument(
        "--conditions", default=None, help=f"comma-separated subset of: {','.join(CONDITIONS)}"
    )
    args = ap.parse_args(argv)
    conds = args.conditions.split(",") if args.conditions else None
    if conds and set(conds) - set(CONDITIONS):
        ap.error(f"unknown condition(s): {sorted(set(conds) - set(CONDITIONS))}")
    rows = generate(args.out, args.count, args.seed, args.data_dir or default_data_dir(), conds)
    print(f"wrote {len(rows)} images to {args.out} (manifest.csv lists label and condition)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
