"""The experiment's PNG figures (matplotlib, Agg backend, imported only here).

Sized for a README column: 10 inches at 100 dpi = 1000 px wide, fonts >= 11 pt, so they stay
legible scaled down to ~800 px.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from .._io import write_bytes
from ..errors import UsageError
from .runner import RunRecord

__all__ = ["accuracy_bars", "confusion", "curves", "require_matplotlib"]


def require_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window (works without a display)
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("the experiment figures need matplotlib: pip install 'digitnet[plots]'") from None
    plt.rcParams.update({"font.size": 12, "axes.titlesize": 14, "axes.labelsize": 12, "legend.fontsize": 10})
    return plt


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    write_bytes(path, buf.getvalue())
    import matplotlib.pyplot as plt

    plt.close(fig)


def _images(rows: list[dict[str, Any]]) -> str:
    imgs = sorted({r["train_images"] for r in rows if isinstance(r["train_images"], int)})
    return " / ".join(f"{i:,}" for i in imgs) or "?"


def accuracy_bars(summary: dict[str, Any], records: list[RunRecord], path: Path) -> None:
    plt = require_matplotlib()
    rows = summary["models"]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    x = np.arange(len(rows))
    means = np.array([100 * r["test_accuracy_mean"] for r in rows])
    stds = np.array([100 * (r["test_accuracy_std"] or 0.0) for r in rows])
    ax.bar(x, means, yerr=stds, capsize=6, color="#4c72b0", alpha=0.85, label="mean of runs, error bar = ±1 sample std")
    for i, r in enumerate(rows):
        ys = [100 * rec.test_accuracy for rec in records if rec.label == r["model"]]
        ax.scatter(np.full(len(ys), x[i]) + np.linspace(-0.15, 0.15, len(ys)), ys, s=18, color="black", zorder=3,
                   label="single run" if i == 0 else None)
        ax.annotate(f"{means[i]:.2f}", (x[i], means[i] + stds[i]), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=11)
    lo = min(float((means - stds).min()), min(100 * rec.test_accuracy for rec in records))
    # Zoom in: the differences that matter are fractions of a percent; the axis says it does not start at 0.
    ax.set_ylim(max(0.0, np.floor(lo - 1.0)), 100.0)
    ax.set_xticks(x, [f"{r['model']}\n({r['recipe']})" for r in rows])
    ax.set_ylabel("test accuracy (%, axis not from 0)")
    ax.set_xlabel("model (recipe)")
    n = sorted({r["n"] for r in rows})
    ep = sorted({f"{r['epochs']:g}" if isinstance(r["epochs"], float) else str(r["epochs"]) for r in rows})
    ax.set_title(f"Mean test accuracy over {'/'.join(map(str, n))} runs, {'/'.join(ep)} epoch{'' if ep == ['1'] else 's'}, "
                 f"trained on {_images(rows)} images")
    # Below the axes: inside, it would cover bars near 100%.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def curves(summary: dict[str, Any], records: list[RunRecord], path: Path) -> None:
    """Per-epoch loss and accuracy, mean line with a ±1 std band over runs, one colour per model."""
    plt = require_matplotlib()
    from matplotlib import ticker

    rows = summary["models"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    panels = [("train_loss", "training loss (cross-entropy)", axes[0, 0]),
              ("test_loss", "test loss (cross-entropy)", axes[0, 1]),
              ("train_accuracy", "training accuracy (%)", axes[1, 0]),
              ("test_accuracy", "test accuracy (%)", axes[1, 1])]
    colors = plt.get_cmap("tab10").colors
    seen: dict[str, list[float]] = {key: [] for key, _, _ in panels}
    max_ep = 1
    for i, r in enumerate(rows):
        rs = [rec for rec in records if rec.label == r["model"]]
        n_ep = min(len(rec.history) for rec in rs)  # runs of one model have the same epochs
        if n_ep == 0:
            continue
        ep = np.array([rec.history[k]["epoch"] for k in range(n_ep) for rec in rs[:1]])
        for key, _, ax in panels:
            scale = 100.0 if "accuracy" in key else 1.0
            v = scale * np.array([[rec.history[k][key] for k in range(n_ep)] for rec in rs])
            m = v.mean(0)
            s = v.std(0, ddof=1) if len(rs) > 1 else np.zeros_like(m)
            seen[key] += list((m - s).ravel()) + list((m + s).ravel())
            c, lab = colors[i % 10], f"{r['model']} (n={len(rs)})"
            if n_ep == 1:
                # One epoch: a band has no width, so show mean ± std as an error bar, each model
                # shifted a little sideways so the bars do not hide each other.
                dx = 0.05 * (i - (len(rows) - 1) / 2)
                ax.errorbar(ep + dx, m, yerr=s, fmt="o", capsize=4, color=c, label=lab)
            else:
                ax.plot(ep, m, marker="o", color=c, label=lab)
                ax.fill_between(ep, m - s, m + s, color=c, alpha=0.2)
        max_ep = max(max_ep, round(float(ep[-1])))
    for key, label, ax in panels:
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        v = [x for x in seen[key] if x > 0]
        if "loss" in key and v and max(v) / min(v) > 10:
            # Losses span 2.3 (chance) to ~0.02: a log axis keeps the late epochs readable.
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xticks(range(1, max_ep + 1) if max_ep <= 20 else ax.get_xticks())
        if max_ep == 1:
            ax.set_xlim(0.5, 1.5)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(f"Per-epoch curves: mean ± 1 sample std over runs (trained on {_images(rows)} images)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))), frameon=False)
    _save(fig, path)


def confusion(cm: np.ndarray, title: str, path: Path) -> None:
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(8, 7))
    k = cm.shape[0]
    # Colour the errors only (row-normalised, log): the diagonal would otherwise drown them.
    off = cm.astype(float) / np.maximum(cm.sum(1, keepdims=True), 1)
    np.fill_diagonal(off, np.nan)
    im = ax.imshow(100 * off, cmap="Reds", vmin=0, vmax=max(0.5, float(np.nanmax(100 * off)) if np.isfinite(off).any() else 1))
    for t in range(k):
        for p in range(k):
            if cm[t, p]:
                ax.text(p, t, str(int(cm[t, p])), ha="center", va="center", fontsize=10,
                        color="darkgreen" if t == p else "black", fontweight="bold" if t == p else "normal")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="errors, % of the true digit's test images")
    _save(fig, path)
