"""The experiment's PNG figures (matplotlib, Agg backend, imported only here).

Sized for a README column: 10 inches at 100 dpi = 1000 px wide, fonts >= 11 pt, so they stay
legible scaled down to ~800 px.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from .._io import write_bytes
from ..errors import UsageError
from .runner import RunRecord

__all__ = [
    "accuracy_bars",
    "confusion",
    "curves",
    "curves_from_history",
    "figure6",
    "require_matplotlib",
]


def require_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window (works without a display)
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "the figures need matplotlib, a dependency of digitnet: pip install matplotlib"
        ) from None
    plt.rcParams.update(
        {"font.size": 12, "axes.titlesize": 14, "axes.labelsize": 12, "legend.fontsize": 10}
    )
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
    ax.bar(
        x,
        means,
        yerr=stds,
        capsize=6,
        color="#4c72b0",
        alpha=0.85,
        label="mean of runs, error bar = ±1 sample std",
    )
    for i, r in enumerate(rows):
        ys = [100 * rec.test_accuracy for rec in records if rec.label == r["model"]]
        ax.scatter(
            np.full(len(ys), x[i]) + np.linspace(-0.15, 0.15, len(ys)),
            ys,
            s=18,
            color="black",
            zorder=3,
            label="single run" if i == 0 else None,
        )
        ax.annotate(
            f"{means[i]:.2f}",
            (x[i], means[i] + stds[i]),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=11,
        )
    lo = min(float((means - stds).min()), min(100 * rec.test_accuracy for rec in records))
    # Zoom in: the differences that matter are fractions of a percent; the axis says it does not
    # start at 0.
    ax.set_ylim(max(0.0, np.floor(lo - 1.0)), 100.0)
    ax.set_xticks(x, [f"{r['model']}\n({r['recipe']})" for r in rows])
    ax.set_ylabel("test accuracy (%, axis not from 0)")
    ax.set_xlabel("model (recipe)")
    n = sorted({r["n"] for r in rows})
    ep = sorted(
        {f"{r['epochs']:g}" if isinstance(r["epochs"], float) else str(r["epochs"]) for r in rows}
    )
    ax.set_title(
        f"Mean test accuracy over {'/'.join(map(str, n))} runs, "
        f"{'/'.join(ep)} epoch{'' if ep == ['1'] else 's'}, "
        f"trained on {_images(rows)} images"
    )
    # Below the axes: inside, it would cover bars near 100%.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def curves(summary: dict[str, Any], records: list[RunRecord], path: Path) -> None:
    """Per-epoch curves of an experiment folder's runs (see ``curves_from_history``)."""
    from .publish import history_rows

    labels = [r["model"] for r in summary["models"]]
    curves_from_history(
        history_rows(records), labels, path, f"trained on {_images(summary['models'])} images"
    )


def _f(v: Any) -> float:
    return float("nan") if v in (None, "") else float(v)


def curves_from_history(
    rows: list[dict[str, Any]], labels: list[str], path: Path, note: str
) -> None:
    """Per-epoch loss and accuracy, mean line with a ±1 std band over runs, one colour per model.

    ``rows`` are history rows (``history.csv``: label, seed, epoch, train/test loss/accuracy).
    """
    plt = require_matplotlib()
    from matplotlib import ticker

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    panels = [
        ("train_loss", "training loss (cross-entropy)", axes[0, 0]),
        ("test_loss", "test loss (cross-entropy)", axes[0, 1]),
        ("train_accuracy", "training accuracy (%)", axes[1, 0]),
        ("test_accuracy", "test accuracy (%)", axes[1, 1]),
    ]
    colors = plt.get_cmap("tab10").colors
    seen: dict[str, list[float]] = {key: [] for key, _, _ in panels}
    max_ep = 1
    for i, label in enumerate(labels):
        by_seed: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if r["label"] == label:
                by_seed.setdefault(str(r["seed"]), []).append(r)
        if not by_seed:
            continue
        runs = [sorted(v, key=lambda r: _f(r["epoch"])) for v in by_seed.values()]
        n_ep = min(len(v) for v in runs)  # runs of one model have the same epochs
        ep = np.array([_f(runs[0][k]["epoch"]) for k in range(n_ep)])
        for key, _, ax in panels:
            scale = 100.0 if "accuracy" in key else 1.0
            v = scale * np.array([[_f(run[k][key]) for k in range(n_ep)] for run in runs])
            m = v.mean(0)
            s = v.std(0, ddof=1) if len(runs) > 1 else np.zeros_like(m)
            seen[key] += list((m - s).ravel()) + list((m + s).ravel())
            c, lab = colors[i % 10], f"{label} (n={len(runs)})"
            if n_ep == 1:
                # One epoch: a band has no width, so show mean ± std as an error bar, each model
                # shifted a little sideways so the bars do not hide each other.
                dx = 0.05 * (i - (len(labels) - 1) / 2)
                ax.errorbar(ep + dx, m, yerr=s, fmt="o", capsize=4, color=c, label=lab)
            else:
                ax.plot(ep, m, marker="o" if n_ep <= 20 else None, markersize=3, color=c, label=lab)
                ax.fill_between(ep, m - s, m + s, color=c, alpha=0.2)
        max_ep = max(max_ep, round(float(ep[-1])))
    for key, label, ax in panels:
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        positive = [x for x in seen[key] if x > 0 and np.isfinite(x)]
        if "loss" in key and positive and max(positive) / min(positive) > 10:
            # Losses span 2.3 (chance) to ~0.001: a log axis keeps the late epochs readable.
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        if max_ep <= 20:
            ax.set_xticks(range(1, max_ep + 1))
        if max_ep == 1:
            ax.set_xlim(0.5, 1.5)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    handles, labels_ = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(
        f"Per-epoch curves: mean ± 1 sample std over runs ({note})\n"
        "training loss / accuracy: running mean over each epoch, as the weights change"
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.legend(
        handles, labels_, loc="lower center", ncol=min(4, max(1, len(labels_))), frameon=False
    )
    _save(fig, path)


def _ep(e: Any) -> str:
    return f"{e:g}" if isinstance(e, (int, float)) else str(e)


# How each kind of bar is drawn in Figure 6: measured here (solid, error bar), measured here
# with scikit-learn (hatched), cited from the literature (light, cross-hatched, no error bar).
_KIND_STYLE: dict[str, dict[str, str | None]] = {
    "measured": {
        "color": "#4c72b0",
        "hatch": None,
        "label": "our networks, measured here (mean ± 1 std over runs)",
    },
    "classical": {
        "color": "#dd8452",
        "hatch": "//",
        "label": "classical methods, measured here (scikit-learn)",
    },
    "reported": {
        "color": "#d9d9d9",
        "hatch": "xx",
        "label": "reported, not measured here (the 2024 seed paper and the results it cites)",
    },
}


def figure6(summary: dict[str, Any], path: Path) -> None:
    """The seed paper's Figure 6 (test accuracy per method), with each bar's kind drawn apart."""
    plt = require_matplotlib()
    from matplotlib.patches import Patch

    from .publish import images_text

    order = {"reported": 0, "classical": 1, "measured": 2}
    rows = sorted(summary["rows"], key=lambda r: (order[r["kind"]], r["test_accuracy"]["mean"]))
    fig, ax = plt.subplots(figsize=(12, 6.5))
    x = np.arange(len(rows))
    means = np.array([100 * r["test_accuracy"]["mean"] for r in rows])
    stds = np.array([100 * (r["test_accuracy"]["std"] or 0.0) for r in rows])
    for i, r in enumerate(rows):
        st = _KIND_STYLE[r["kind"]]
        ax.bar(
            x[i],
            means[i],
            color=st["color"],
            hatch=st["hatch"],
            edgecolor="#444444",
            linewidth=0.8,
            yerr=stds[i] if r["kind"] == "measured" and r["runs"] and r["runs"] > 1 else None,
            capsize=5,
        )
        ax.annotate(
            f"{means[i]:.2f}",
            (x[i], means[i] + stds[i]),
            textcoords="offset points",
            xytext=(0, 4),
            ha="center",
            fontsize=9,
        )
    lo = float(means.min())
    ax.set_ylim(max(0.0, 5 * np.floor((lo - 2.0) / 5)), 100.5)

    def name(r: dict[str, Any]) -> str:
        if r["kind"] != "measured":
            return textwrap.shorten(r["model"], 64, placeholder="...")
        runs = f"{r['runs']}" + (
            f" of {r['runs_planned']}" if r.get("runs_planned") not in (None, r["runs"]) else ""
        )
        return f"{r['model']} ({r['recipe']}, {_ep(r['epochs'])} ep, {runs} runs)"

    # One line per label, rotated about its right end: multi-line labels of neighbouring bars
    # overlapped once there were a dozen bars.
    ax.set_xticks(
        x, [name(r) for r in rows], rotation=50, ha="right", rotation_mode="anchor", fontsize=9
    )
    ax.set_ylabel("test accuracy (%, axis not from 0)")
    ax.set_title(
        f"Figure 6 again: test accuracy on the 10,000 MNIST test images\n"
        f"measured rows trained on {images_text(summary['trained_on'])} images; "
        f"{summary['machine']}",
        fontsize=12,
        pad=26,
    )
    ax.grid(axis="y", alpha=0.3)
    kinds = [k for k in ("measured", "classical", "reported") if any(r["kind"] == k for r in rows)]
    handles = [
        Patch(
            facecolor=_KIND_STYLE[k]["color"],
            hatch=_KIND_STYLE[k]["hatch"],
            edgecolor="#444444",
            label=_KIND_STYLE[k]["label"],
        )
        for k in kinds
    ]
    # Between the title and the bars, one row: every part of the axes below holds a bar.
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=len(handles),
        fontsize=9,
        frameon=False,
    )
    _save(fig, path)


def confusion(cm: np.ndarray, title: str, path: Path) -> None:
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(8, 7))
    k = cm.shape[0]
    # Colour the errors only (row-normalised, log): the diagonal would otherwise drown them.
    off = cm.astype(float) / np.maximum(cm.sum(1, keepdims=True), 1)
    np.fill_diagonal(off, np.nan)
    im = ax.imshow(
        100 * off,
        cmap="Reds",
        vmin=0,
        vmax=max(0.5, float(np.nanmax(100 * off)) if np.isfinite(off).any() else 1),
    )
    for t in range(k):
        for p in range(k):
            if cm[t, p]:
                ax.text(
                    p,
                    t,
                    str(int(cm[t, p])),
                    ha="center",
                    va="center",
                    fontsize=10,
                    color="darkgreen" if t == p else "black",
                    fontweight="bold" if t == p else "normal",
                )
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="errors, % of the true digit's test images")
    _save(fig, path)
