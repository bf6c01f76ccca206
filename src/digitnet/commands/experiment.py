"""``digitnet experiment``: train several models K times each and compare them with statistics."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "experiment"
HELP = "train models K times each (same seeds) and write runs.csv, summary tables and figures"


def _names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give model names separated by commas, e.g. paper,lenet5")
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", type=_names, metavar="A,B,...",
                   help="models to compare (default: the [models] tables of --config)")
    p.add_argument("--recipe", help="recipe for every model (default: the model's own recipe if it has one, else default)")
    p.add_argument("--config", metavar="FILE", help="experiment file (.toml, or .yaml with pyyaml): models, recipes, overrides")
    p.add_argument("--runs", type=int, metavar="K", help="runs per model, seeds SEED..SEED+K-1 (default 3)")
    p.add_argument("--seed", type=int, help="first seed (default 0)")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs per run (default: each recipe's)")
    p.add_argument("--limit-train", type=int, metavar="N", help="train on the first N training images only")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $DIGITNET_DATA or the cache folder)")
    p.add_argument("--device", help="auto (default), cpu, cuda, mps")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--out", metavar="DIR", help="experiment folder; rerunning with it skips finished runs")
    p.add_argument("--tensorboard", action="store_true", default=None, help="TensorBoard event files per run")
    p.add_argument("--no-figures", action="store_true", help="tables only (no matplotlib needed)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")


def _command_line(args: argparse.Namespace) -> str:
    parts = ["digitnet experiment"]
    if args.models:
        parts.append("--models " + ",".join(args.models))
    for flag, v in [("--config", args.config), ("--recipe", args.recipe), ("--runs", args.runs), ("--seed", args.seed),
                    ("--epochs", args.epochs), ("--limit-train", args.limit_train), ("--out", args.out)]:
        if v is not None:
            parts.append(f"{flag} {v}")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .._io import ensure_dir, write_json
    from ..experiments import (
        load_experiment_file,
        make_plan,
        run_experiment,
        summarize,
        write_tables,
    )
    from ..experiments.runner import ExperimentProgress, load_records
    from ._progress import TqdmProgress
    from ._signals import StopOnSignals

    file = load_experiment_file(args.config) if args.config else None
    plan = make_plan(models=args.models, recipe=args.recipe, runs=args.runs, epochs=args.epochs, seed=args.seed,
                     limit_train=args.limit_train, data_dir=args.data_dir, out=args.out,
                     tensorboard=args.tensorboard, device=args.device, threads=args.threads, file=file)
    if not args.no_figures:
        from ..experiments.figures import require_matplotlib

        require_matplotlib()  # fail before an hour of training, not after it
    if any(e.config.tensorboard for e in plan.entries):
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            from ..errors import UsageError

            raise UsageError("--tensorboard needs the tensorboard package: pip install 'digitnet[tensorboard]'") from None
    ensure_dir(plan.out)
    write_json(plan.out / "experiment.json", {"command": _command_line(args), **plan.settings,
                                              "entries": {e.label: e.config.to_dict() for e in plan.entries}})

    with StopOnSignals() as signals:
        progress = ExperimentProgress(0, enabled=not args.quiet)
        records, interrupted = run_experiment(
            plan, run_callbacks=lambda: [TqdmProgress(enabled=not args.quiet)], stop=signals.stop, progress=progress)

    records = load_records(plan)  # the tables describe what is stored, nothing else
    summary = summarize(records, [e.label for e in plan.entries])
    summary["runs_planned"] = len(plan.entries) * plan.runs
    summary["runs_finished"] = len(records)
    if records and not interrupted:
        _best_confusion(plan.out, records, summary, figures=not args.no_figures)
    write_tables(plan.out, records, summary, _command_line(args))
    if records and not args.no_figures:
        from ..experiments import figures

        fig_dir = ensure_dir(plan.out / "figures")
        figures.accuracy_bars(summary, records, fig_dir / "accuracy.png")
        figures.curves(summary, records, fig_dir / "curves.png")

    if interrupted:
        print(f"digitnet experiment: interrupted; {len(records)}/{summary['runs_planned']} runs finished; "
              f"run the same command again to continue", file=sys.stderr)
        return signals.exit_code
    if args.json:
        print(json.dumps(summary))
    else:
        print(Path(plan.out / "summary.md").read_text(encoding="utf-8"), end="")
    return 0


def _best_confusion(out, records, summary, figures: bool) -> None:
    """Evaluate the best run's saved model on the test set; its confusion matrix goes in the summary."""
    from ..checkpoint import load_checkpoint
    from ..data.mnist import load_mnist, resolve_data_dir
    from ..data.tensors import DeviceDataset
    from ..engine.fit import evaluate
    from ..evaluation import confusion_matrix
    from ..experiments.stats import best_run

    b = best_run(records)
    ckpt = out / b.run_dir / "model.safetensors"
    model, meta = load_checkpoint(ckpt)
    xte, yte = load_mnist(resolve_data_dir(b.config.get("data_dir")), "test")
    import torch

    test = DeviceDataset.from_numpy(xte, yte, meta["input"], torch.device("cpu"))
    r = evaluate(model, test, details=True)
    cm = confusion_matrix(yte, r["predictions"])
    summary["best_run"].update(checkpoint_test_accuracy=r["accuracy"], confusion=cm.tolist())
    if figures:
        from .._io import ensure_dir
        from ..experiments import figures as figs

        figs.confusion(cm, f"Best run: {b.label} seed {b.seed}, {100 * r['accuracy']:.2f}% test accuracy\n"
                           f"(trained on {b.train_images:,} images, {b.epochs:g} epoch{'' if b.epochs == 1 else 's'})",
                       ensure_dir(out / "figures") / "confusion_best.png")
