"""``digitnet adapt``: teach a model your handwriting from a few labelled examples.

    digitnet adapt my-digits/ --out me.safetensors
    digitnet predict --model me.safetensors photo.png

Examples are labelled as ``predict --labels-from-names`` reads them: ``7_anna.png`` or a folder
named ``7``. The work is in ``digitnet.adapt`` (the GUI uses the same function).
"""

from __future__ import annotations

import argparse
import json
import sys

NAME = "adapt"
HELP = "teach a model your handwriting from a few labelled examples (7_anna.png, 7/...)"

# One torch thread: on a 2-core machine with anything else running (a browser, the GUI, a
# background job), two threads made each training step about 3x slower than one (0.7 s against
# 2.1 s per batch of 128, measured with other work on the machine); see docs/adapt.md.
_THREADS = 1


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < v <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, got {text}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "examples",
        nargs="+",
        metavar="EXAMPLE",
        help="labelled image files or folders: 7_anna.png, or any image in a folder named 7",
    )
    p.add_argument(
        "--out", required=True, metavar="CHECKPOINT", help="where to write the adapted model"
    )
    p.add_argument(
        "--model", metavar="BASE", help="checkpoint to adapt (default: the bundled model)"
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="MNIST files replayed while adapting so the model keeps reading MNIST-style "
        "digits (default: $DIGITNET_DATA, else the user cache; without them the base weights "
        "anchor the model instead)",
    )
    p.add_argument(
        "--seconds",
        type=_seconds,
        default=60.0,
        metavar="S",
        help="time budget (default 60); stops earlier once the examples are learnt",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _say_skipped(lines) -> None:
    for line in lines:
        print(f"digitnet adapt: skipped {line}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ..adapt import (
        AdaptProgress,
        NoExamplesError,
        adapt_model,
        check_out,
        output_path,
        read_examples,
    )
    from ..inference import bundled_model_path

    base = args.model if args.model is not None else bundled_model_path()
    check_out(args.out, base, args.examples)  # before reading anything: a wrong --out fails fast
    out = output_path(args.out)
    try:
        examples = read_examples(args.examples)
    except NoExamplesError as exc:
        _say_skipped(exc.skipped[1:] if len(exc.skipped) == 1 else exc.skipped)
        raise
    _say_skipped(examples.skipped)  # said now, not after a minute of training

    def show(p: AdaptProgress) -> None:
        if args.json or not sys.stderr.isatty():
            return
        fit = "" if p.fit_accuracy is None else f", examples read right {p.fit_accuracy:.0%}"
        print(
            f"\radapting ({p.mode}): step {p.step}, {p.elapsed:.0f}/{p.seconds:.0f} s{fit}   ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    import torch

    torch.set_num_threads(_THREADS)
    result = adapt_model(
        examples,
        out=out,
        base=args.model,
        data_dir=args.data_dir,
        seconds=args.seconds,
        seed=args.seed,
        progress=show,
    )
    if not args.json and sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    per = " ".join(f"{d}:{n}" for d, n in result.per_digit.items() if n)
    missing = [str(d) for d, n in result.per_digit.items() if n == 0]
    how = (
        f"replaying {result.replay_images:,} MNIST training images"
        + (f" and {result.replay_allographs:,} allographs" if result.replay_allographs else "")
        + f"; trained {result.trained_layers}"
        if result.mode == "replay"
        else "no MNIST data found: weights held near the base (L2-SP); trained "
        f"{result.trained_layers} only (pass --data-dir to keep MNIST accuracy better)"
    )
    why = {"fit": "examples learnt", "time": "time budget used", "cancelled": "cancelled"}
    print(
        f"adapted {result.base.name} to {result.examples} example(s) ({per}) in "
        f"{result.seconds:.1f} s, {result.steps} steps ({why[result.stopped]})"
    )
    print(f"mode: {result.mode} ({how})")
    print(
        f"examples read right: {result.accuracy_before:.0%} before, "
        f"{result.accuracy_after:.0%} after"
    )
    if missing:
        print(f"no examples of {', '.join(missing)}: those digits are read as the base reads them")
    print(f"wrote {result.checkpoint} (use it with: digitnet predict --model {result.checkpoint})")
    return 0
