"""Classification metrics and the evaluation report (confusion-matrix and error-gallery PNGs).

The pictures are drawn with Pillow, so ``digitnet evaluate --report`` needs no plotting library.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write, ensure_dir, write_text

__all__ = [
    "classification_report",
    "confusion_matrix",
    "confusion_png",
    "gallery_png",
    "write_report",
]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int = 10) -> np.ndarray:
    """``cm[t, p]`` = number of images of true class t predicted as p."""
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, k: int = 10) -> dict[str, Any]:
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(float)
    pred_n = cm.sum(0).astype(float)
    true_n = cm.sum(1).astype(float)
    precision = np.divide(tp, pred_n, out=np.zeros(k), where=pred_n > 0)
    recall = np.divide(tp, true_n, out=np.zeros(k), where=true_n > 0)
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0
    )
    per_class = [
        {
            "class": c,
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
            "support": int(true_n[c]),
        }
        for c in range(k)
    ]
    return {"per_class": per_class, "macro_f1": float(f1.mean()), "confusion": cm.tolist()}


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _save_png(img, path: Path) -> None:
    with atomic_write(path, "wb") as fh:
        img.save(fh, format="PNG")


def confusion_png(
    cm: np.ndarray, path: str | os.PathLike[str], title: str = "Confusion matrix"
) -> None:
    """A labelled heat map: rows true class, columns predicted class, counts in the cells."""
    from PIL import Image, ImageDraw

    k = cm.shape[0]
    cell, left, top = 56, 90, 90
    w, h = left + k * cell + 20, top + k * cell + 60
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    f, fs, ft = _font(16), _font(14), _font(20)
    d.text((w // 2, 22), title, fill="black", font=ft, anchor="mm")
    d.text((left + k * cell // 2, 60), "predicted class", fill="black", font=f, anchor="mm")
    row_max = np.maximum(cm.sum(1, keepdims=True), 1)
    for t in range(k):
        d.text((left - 12, top + t * cell + cell // 2), str(t), fill="black", font=f, anchor="rm")
        d.text((left + t * cell + cell // 2, top - 12), str(t), fill="black", font=f, anchor="mm")
        for p in range(k):
            frac = cm[t, p] / row_max[t, 0]
            if t == p:
                color = (int(255 - 200 * frac), int(255 - 90 * frac), int(255 - 200 * frac))
            else:
                a = min(1.0, frac * 20)  # errors are rare; make a handful visible
                color = (255, int(255 - 170 * a), int(255 - 170 * a))
            x0, y0 = left + p * cell, top + t * cell
            d.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=color, outline=(220, 220, 220))
            if cm[t, p]:
                d.text(
                    (x0 + cell // 2, y0 + cell // 2),
                    str(int(cm[t, p])),
                    fill="black",
                    font=fs,
                    anchor="mm",
                )
    # rotated "true class" label on the left
    lab = Image.new("RGB", (k * cell, 24), "white")
    ImageDraw.Draw(lab).text((k * cell // 2, 12), "true class", fill="black", font=f, anchor="mm")
    img.paste(lab.rotate(90, expand=True), (20, top))
    d.text(
        (w // 2, h - 25),
        "cell = number of test images; green diagonal = correct",
        fill=(90, 90, 90),
        font=fs,
        anchor="mm",
    )
    _save_png(img, Path(path))


def gallery_png(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    conf: np.ndarray,
    path: str | os.PathLike[str],
    max_items: int = 60,
    cols: int = 10,
) -> int:
    """Misclassified digits, most confident mistakes first, captioned true/predicted/confidence."""
    from PIL import Image, ImageDraw

    wrong = np.flatnonzero(y_true != y_pred)
    wrong = wrong[np.argsort(-conf[wrong])][:max_items]
    n = len(wrong)
    tile, cap = 84, 34
    rows = max(1, (n + cols - 1) // cols)
    img = Image.new("RGB", (cols * tile, 40 + rows * (tile + cap)), "white")
    d = ImageDraw.Draw(img)
    d.text(
        (cols * tile // 2, 20),
        f"Misclassified test digits ({n} shown, most confident first)",
        fill="black",
        font=_font(18),
        anchor="mm",
    )
    f = _font(13)
    for j, i in enumerate(wrong):
        r, c = divmod(j, cols)
        x0, y0 = c * tile, 40 + r * (tile + cap)
        digit = Image.fromarray(255 - images[i].astype(np.uint8)).resize(
            (tile - 12, tile - 12), Image.Resampling.NEAREST
        )
        img.paste(digit, (x0 + 6, y0 + 4))
        d.text(
            (x0 + tile // 2, y0 + tile - 2),
            f"true {int(y_true[i])} pred {int(y_pred[i])}",
            fill=(160, 0, 0),
            font=f,
            anchor="mt",
        )
        d.text(
            (x0 + tile // 2, y0 + tile + 14),
            f"{conf[i]:.0%}",
            fill=(90, 90, 90),
            font=f,
            anchor="mt",
        )
    _save_png(img, Path(path))
    return n


def write_report(
    folder: str | os.PathLike[str],
    summary: dict[str, Any],
    images: np.ndarray,
    labels: np.ndarray,
    preds: np.ndarray,
    probs: np.ndarray,
) -> None:
    out = ensure_dir(folder)
    cm = np.asarray(summary["confusion"])
    confusion_png(
        cm,
        out / "confusion.png",
        title=f"{summary.get('model')}: confusion matrix ({summary['split']} set)",
    )
    n_err = gallery_png(images, labels, preds, probs.max(1), out / "errors.png")
    ti = summary.get("train_images")
    lines = [
        f"# Evaluation of `{Path(summary['checkpoint']).name}` ({summary.get('model')})",
        "",
        f"- split: {summary['split']} ({summary['n']:,} images)"
        + (f"; trained on {ti:,} images" if ti else ""),
        f"- accuracy: **{summary['accuracy']:.4%}** ({summary['n'] - int(np.trace(cm)):,} errors)",
        f"- loss: {summary['loss']:.4f}",
        f"- macro F1: {summary['macro_f1']:.4f}",
        "",
        "| class | precision | recall | F1 | support |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *[
            f"| {p['class']} | {p['precision']:.4f} | {p['recall']:.4f} | {p['f1']:.4f} | {p['support']} |"
            for p in summary["per_class"]
        ],
        "",
        "![confusion matrix](confusion.png)",
        "",
        f"![misclassified digits](errors.png) ({n_err} shown)",
        "",
    ]
    write_text(out / "report.md", "\n".join(lines))
