"""``digitnet train``: train with a named recipe; checkpoints and metrics go to a run folder."""

from __future__ import annotations

import argparse
import json
import os
import sys

NAME = "train"
HELP = "train a model (recipes: default, fast, paper, course, ...)"


def _accuracy(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    # Accept 0.99 and 99 (percent) alike.
    return v / 100.0 if v > 1.0 else v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model name (digitnet models); default: the recipe's model")
    p.add_argument(
        "--recipe",
        default=None,
        help="named settings: default, fast, paper, course, pytorch_example, keras_example",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="JSON or TOML file of training settings (applied after the recipe)",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="(peak) learning rate")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "adadelta"])
    p.add_argument("--schedule", choices=["onecycle", "cosine", "step", "none"])
    p.add_argument("--momentum", type=float)
    p.add_argument("--no-nesterov", dest="nesterov", action="store_false", default=None)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--label-smoothing", type=float)
    aug = p.add_mutually_exclusive_group()
    aug.add_argument(
        "--augment",
        dest="augment",
        action="store_true",
        default=None,
        help="random affine/elastic/thickness augmentation",
    )
    aug.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--deterministic",
        action="store_true",
        default=None,
        help="deterministic algorithms (bitwise repeatable on CPU)",
    )
    p.add_argument("--device", help="auto (default), cpu, cuda, mps")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument(
        "--data-dir",
        help="folder with the MNIST IDX files (default: $DIGITNET_DATA or the cache folder)",
    )
    p.add_argument("--limit-train", type=int, metavar="N", help="train on the first N images only")
    p.add_argument(
        "--val-split",
        type=int,
        metavar="N",
        help="hold out N training images for model selection and the confidence "
        "calibration (default: the recipe's; the default recipe holds out 1,000, or a "
        "tenth of a smaller training set; 0 = none, no calibration)",
    )
    p.add_argument(
        "--eval-every",
        type=float,
        metavar="EPOCHS",
        help="evaluate every this many epochs (e.g. 0.25)",
    )
    p.add_argument(
        "--target-accuracy",
        type=_accuracy,
        metavar="A",
        help="stop once test (or val) accuracy reaches A (0.99 or 99)",
    )
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/<model>-<recipe>-<time>)")
    p.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue an interrupted run from its last.safetensors",
    )
    p.add_argument(
        "--tensorboard", action="store_true", default=None, help="write TensorBoard event files"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON object (last line of stdout)",
    )


def run(args: argparse.Namespace) -> int:
    from .._io import ensure_dir
    from ..engine import fit, resolve_config
    from ._progress import TqdmProgress
    from ._signals import StopOnSignals

    overrides = dict(
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        schedule=args.schedule,
        momentum=args.momentum,
        nesterov=args.nesterov,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        augment=args.augment,
        seed=args.seed,
        deterministic=args.deterministic,
        device=args.device,
        threads=args.threads,
        compile=args.compile,
        data_dir=args.data_dir,
        limit_train=args.limit_train,
        val_split=args.val_split,
        eval_every=args.eval_every,
        target_accuracy=args.target_accuracy,
        out=args.out,
        tensorboard=args.tensorboard,
    )
    cfg = resolve_config(recipe=args.recipe, config_file=args.config, **overrides)
    if cfg.out:
        ensure_dir(cfg.out)  # fail before loading data if the output folder cannot be written

    with StopOnSignals() as signals:
        result = fit(
            cfg,
            callbacks=[TqdmProgress(enabled=not args.quiet)],
            stop=signals.stop,
            resume=args.resume,
        )

    # Under torchrun every rank runs this command; only rank 0 speaks (and writes files).
    if int(os.environ.get("RANK", "0")) != 0:
        return signals.exit_code if result.interrupted else 0
    if result.interrupted:
        print(
            f"digitnet train: interrupted by {signals.name} at epoch {result.epochs:.2f}; "
            f"resume with: "
            f"digitnet train --resume {result.last_checkpoint}",
            file=sys.stderr,
        )
        if args.json:
            print(json.dumps(result.to_json()))
        return signals.exit_code
    from ..calibration import calibrate_run

    # Honest confidence: a temperature fitted on the run's validation split (issue 12).
    calibration = calibrate_run(result.config, result.checkpoint) if result.checkpoint else None
    out = result.to_json()
    if calibration is not None:
        out["calibration"] = calibration
    if args.json:
        print(json.dumps(out))
    else:
        f = result.last
        nan = float("nan")
        line = (
            f"test accuracy {f.test_accuracy if f else nan:.4f}  "
            f"loss {f.test_loss if f else nan:.4f}  train {result.train_seconds:.1f} s  "
            f"epochs {result.epochs:g}  images {result.n_train:,}"
        )
        if cfg.target_accuracy is not None:
            hit = result.reached_target and result.target_seconds is not None
            reached = f"reached at {result.target_seconds:.1f} s" if hit else "not reached"
            line += f"  target {cfg.target_accuracy:.4f} {reached}"
        print(line)
        if calibration is not None:
            print(
                f"calibration: temperature {calibration['temperature']:.3f} on "
                f"{calibration['images']:,} validation images, ECE "
                f"{calibration['ece_before']:.4f} -> {calibration['ece_after']:.4f}"
            )
        print(f"checkpoint: {result.checkpoint}")
        if result.best_checkpoint is not None and result.best_accuracy is not None:
            split = result.evals[-1].split if result.evals else "test"
            print(
                f"best checkpoint: {result.best_checkpoint} ({split} accuracy "
                f"{result.best_accuracy:.4f} at epoch {result.best_epoch:g})"
            )
    return 0
