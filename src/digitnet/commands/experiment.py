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
    p.add_argument(
        "--models",
        type=_names,
        metavar="A,B,...",
        help="models to compare (default: the [models] tables of --config)",
    )
    p.add_argument(
        "--recipe",
        help="recipe for every model (default: the model's own recipe if it has one, else default)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="experiment file (.toml, or .yaml with pyyaml): models, recipes, overrides",
    )
    p.add_argument(
        "--runs", type=int, metavar="K", help="runs per model, seeds SEED..SEED+K-1 (default 3)"
    )
    p.add_argument("--seed", type=int, help="first seed (default 0)")
    p.add_argument(
        "--epochs", type=int, metavar="N", help="epochs per run (default: each recipe's)"
    )
    p.add_argument(
        "--limit-train", type=int, metavar="N", help="train on the first N training images only"
    )
    p.add_argument(
        "--data-dir",
        help="folder with the MNIST IDX files (default: $DIGITNET_DATA or the cache folder)",
    )
    p.add_argument("--device", help="auto (default), cpu, cuda, mps")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument(
        "--out", metavar="DIR", help="experiment folder; rerunning with it skips finished runs"
    )
    p.add_argument(
        "--tensorboard", action="store_true", default=None, help="TensorBoard event files per run"
    )
    p.add_argument("--no-figures", action="store_true", help="tables only, no figures")
    p.add_argument(
        "--summarize",
        "--no-train",
        dest="summarize",
        action="store_true",
        help="train nothing: tables (and figures) from the runs already finished in --out",
    )
    p.add_argument(
        "--results",
        metavar="DIR",
        help="also write the publishable results to DIR: "
        "runs.csv, history.csv, summary.json, tables.md",
    )
    p.add_argument(
        "--figures-dir",
        metavar="DIR",
        help="where --results / --plot draw their figures (default: DIR/figures)",
    )
    p.add_argument(
        "--classical",
        action="store_true",
        help="measure PCA + SVM, k-NN and logistic regression with scikit-learn on the same data "
        "into --results DIR/classical.json (needs digitnet[classical])",
    )
    p.add_argument(
        "--plot",
        metavar="DIR",
        help="only draw the figures from a results folder's summary.json and history.csv",
    )
    p.add_argument(
        "--machine",
        metavar="TEXT",
        help="words added to the detected machine description in summary.json, "
        "e.g. 'shared with other work'",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object on stdout"
    )


def _command_line(args: argparse.Namespace) -> str:
    parts = ["digitnet experiment"]
    if args.models:
        parts.append("--models " + ",".join(args.models))
    for flag, v in [
        ("--config", args.config),
        ("--recipe", args.recipe),
        ("--runs", args.runs),
        ("--seed", args.seed),
        ("--epochs", args.epochs),
        ("--limit-train", args.limit_train),
        ("--threads", args.threads),
        ("--out", args.out),
        ("--results", args.results),
        ("--figures-dir", args.figures_dir),
        ("--machine", None if args.machine is None else repr(args.machine)),
    ]:
        if v is not None:
            parts.append(f"{flag} {v}")
    for flag, on in [("--summarize", args.summarize), ("--classical", args.classical)]:
        if on:
            parts.append(flag)
    return " ".join(parts)


def _publish_figures(src, fig_dir) -> list:
    """Figure 6 and the per-epoch curves, drawn from a results folder's files only."""
    from .._io import ensure_dir
    from ..experiments import figures
    from ..experiments.publish import images_text, read_results

    summary, _runs, history = read_results(src)
    fig_dir = ensure_dir(fig_dir)
    figures.figure6(summary, fig_dir / "results_figure6.png")
    labels = [r["model"] for r in summary["rows"] if r["kind"] == "measured"]
    note = f"trained on {images_text(summary['trained_on'])} images"
    figures.curves_from_history(history, labels, fig_dir / "results_curves.png", note)
    return [fig_dir / "results_figure6.png", fig_dir / "results_curves.png"]


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .._io import ensure_dir, write_json
    from ..errors import UsageError
    from ..experiments import load_experiment_file, make_plan, run_experiment
    from ..experiments.runner import ExperimentProgress
    from ._progress import TqdmProgress
    from ._signals import StopOnSignals

    if args.plot:
        src = Path(args.plot)
        for p in _publish_figures(
            src, Path(args.figures_dir) if args.figures_dir else src / "figures"
        ):
            print(p)
        return 0
    if args.classical and not args.results:
        raise UsageError("--classical writes into a results folder: give --results DIR")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, not {args.threads}")
    file = load_experiment_file(args.config) if args.config else None
    plan = make_plan(
        models=args.models,
        recipe=args.recipe,
        runs=args.runs,
        epochs=args.epochs,
        seed=args.seed,
        limit_train=args.limit_train,
        data_dir=args.data_dir,
        out=args.out,
        tensorboard=args.tensorboard,
        device=args.device,
        threads=args.threads,
        file=file,
    )
    if not args.no_figures:
        from ..experiments.figures import require_matplotlib

        require_matplotlib()  # fail before an hour of training, not after it
    dest = ensure_dir(args.results) if args.results else None
    if args.threads:
        import torch

        # the evaluations and --classical too, not only training
        torch.set_num_threads(args.threads)
    if args.classical:
        from ..experiments.classical import measure_classical

        assert dest is not None  # --classical without --results was refused above
        c0 = plan.entries[0].config
        for row in measure_classical(c0.data_dir, c0.limit_train, dest, threads=args.threads):
            if not args.quiet:
                print(
                    f"[classical] {row['model']}: {100 * row['test_accuracy']:.2f}% test, "
                    f"fit {row['fit_seconds']:.1f} s",
                    file=sys.stderr,
                )
    if args.summarize:
        if not plan.out.is_dir():
            raise UsageError(f"{plan.out}: no such experiment folder (--summarize trains nothing)")
        return _report(args, plan, interrupted=False, dest=dest)
    if any(e.config.tensorboard for e in plan.entries):
        try:
            import torch.utils.tensorboard
        except ImportError:
            raise UsageError(
                "--tensorboard needs the tensorboard package: pip install 'digitnet[tensorboard]'"
            ) from None
    ensure_dir(plan.out)
    write_json(
        plan.out / "experiment.json",
        {
            "command": _command_line(args),
            **plan.settings,
            "entries": {e.label: e.config.to_dict() for e in plan.entries},
        },
    )

    with StopOnSignals() as signals:
        progress = ExperimentProgress(0, enabled=not args.quiet)
        _records, interrupted = run_experiment(
            plan,
            run_callbacks=lambda: [TqdmProgress(enabled=not args.quiet)],
            stop=signals.stop,
            progress=progress,
        )
    code = _report(args, plan, interrupted=interrupted, dest=dest)
    return signals.exit_code if interrupted else code


def _report(args: argparse.Namespace, plan, *, interrupted: bool, dest) -> int:
    from pathlib import Path

    from .._io import ensure_dir
    from ..experiments import summarize, write_tables
    from ..experiments.runner import load_records

    records = load_records(plan)  # the tables describe what is stored, nothing else
    summary = summarize(records, [e.label for e in plan.entries])
    summary["runs_planned"] = plan.total_runs()
    summary["runs_finished"] = len(records)
    if records and not interrupted:
        _best_confusion(plan.out, records, summary, figures=not args.no_figures)
    write_tables(plan.out, records, summary, _command_line(args))
    if records and not args.no_figures:
        from ..experiments import figures

        fig_dir = ensure_dir(plan.out / "figures")
        figures.accuracy_bars(summary, records, fig_dir / "accuracy.png")
        figures.curves(summary, records, fig_dir / "curves.png")

    if dest is not None:
        from ..experiments.publish import describe_machine, write_results

        write_results(
            dest, plan, records, describe_machine(args.threads, args.machine), _command_line(args)
        )
        if not args.no_figures:
            _publish_figures(dest, Path(args.figures_dir) if args.figures_dir else dest / "figures")
    if interrupted:
        print(
            f"digitnet experiment: interrupted; "
            f"{len(records)}/{summary['runs_planned']} runs finished; "
            f"run the same command again to continue",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(summary))
    else:
        print(Path(plan.out / "summary.md").read_text(encoding="utf-8"), end="")
    return 0


def _best_confusion(out, records, summary, figures: bool) -> None:
    """Evaluate the best run's saved model on the test set; its confusion matrix goes in the
    summary."""
    from ..data.mnist import load_mnist, resolve_data_dir
    from ..data.tensors import DeviceDataset
    from ..engine.fit import evaluate
    from ..evaluation import confusion_matrix
    from ..experiments.stats import best_run
    from ..inference import load_predictor

    b = best_run(records)
    assert b is not None  # the caller passes at least one record
    ckpt = out / b.run_dir / "model.safetensors"
    if not ckpt.is_file():
        # Records copied without their checkpoints (experiments/records/ in the repository):
        # the tables need only the records; the best run's confusion matrix needs its model.
        print(f"note: {ckpt} not found: no confusion matrix for the best run", file=sys.stderr)
        return
    pred = load_predictor(ckpt, backend="torch")
    model = pred.model
    xte, yte = load_mnist(resolve_data_dir(b.config.get("data_dir")), "test")
    import torch

    test = DeviceDataset.from_numpy(xte, yte, pred.input, torch.device("cpu"))
    r = evaluate(model, test, details=True)
    cm = confusion_matrix(yte, r["predictions"])
    summary["best_run"].update(checkpoint_test_accuracy=r["accuracy"], confusion=cm.tolist())
    if figures:
        from .._io import ensure_dir
        from ..experiments import figures as figs

        figs.confusion(
            cm,
            f"Best run: {b.label} seed {b.seed}, {100 * r['accuracy']:.2f}% test accuracy\n"
            f"(trained on {b.train_images:,} images, "
            f"{b.epochs:g} epoch{'' if b.epochs == 1 else 's'})",
            ensure_dir(out / "figures") / "confusion_best.png",
        )
