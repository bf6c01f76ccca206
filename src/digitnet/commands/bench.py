"""``digitnet bench``: time-to-99.x% for our recipes and the peers', inference speed per backend.

One process, the same data and threads for everything, runs alternating over several repeats;
medians and ratios to ours are printed (or the whole measurement as JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

NAME = "bench"
HELP = "measure training time-to-accuracy and inference speed (ours beside the peers)"


# Upper bounds keep a typo from asking for a week of measuring (or an int too large for C).
_LIMITS = {int: 1_000_000, float: 86_400.0}


def _positive(kind, most: float | None = None):
    """A finite number > 0 (and at most ``most``, default _LIMITS[kind]): "nan", "inf", "-1",
    "0" are refused here, in one line, instead of hanging a measurement loop
    (``--min-time nan``)."""
    top = _LIMITS[kind] if most is None else most

    def parse(text: str):
        try:
            v = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(v) or v <= 0:
            raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
        if v > top:
            raise argparse.ArgumentTypeError(f"must be at most {top:g}, got {text}")
        return v

    return parse


# A batch of 65,536 digits is 205 MB of float32 input: far past where throughput stops growing.
_MAX_BATCH = 65_536


def _batches(text: str) -> list[int]:
    sizes = [_positive(int, _MAX_BATCH)(v) for v in _names(text)]
    if not sizes:
        raise argparse.ArgumentTypeError("needs at least one batch size")
    return sizes


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..bench import BACKENDS, BATCHES, DEFAULT_BACKENDS, INFER_MODELS, TRAIN_RECIPES

    p.add_argument("--what", choices=["train", "infer", "all"], default="all")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps, auto")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files")
    p.add_argument(
        "--repeats",
        type=_positive(int),
        default=3,
        metavar="R",
        help="repeats of every measurement (default 3; medians reported)",
    )
    p.add_argument(
        "--time-cap",
        type=_positive(float),
        default=120.0,
        metavar="S",
        help="stop a training run after S training seconds (default 120)",
    )
    p.add_argument(
        "--threads",
        type=_positive(int),
        default=None,
        metavar="N",
        help="CPU threads for torch and ONNX Runtime (default: torch's default)",
    )
    p.add_argument(
        "--recipes",
        type=_names,
        default=list(TRAIN_RECIPES),
        metavar="A,B",
        help=f"training recipes (default {','.join(TRAIN_RECIPES)})",
    )
    p.add_argument(
        "--models",
        type=_names,
        default=list(INFER_MODELS),
        metavar="A,B",
        help="inference models: 'default' (the bundled model) or model names "
        f"(default {','.join(INFER_MODELS)})",
    )
    p.add_argument(
        "--backends",
        type=_names,
        default=list(DEFAULT_BACKENDS),
        metavar="A,B",
        help=f"inference backends: {','.join(BACKENDS)} (default {','.join(DEFAULT_BACKENDS)})",
    )
    p.add_argument(
        "--batches",
        type=_batches,
        default=list(BATCHES),
        metavar="N,M",
        help="inference batch sizes (default 1,64,1024)",
    )
    p.add_argument(
        "--min-time",
        type=_positive(float),
        default=0.5,
        metavar="S",
        help="seconds of calls per inference measurement (default 0.5)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the whole measurement as one JSON object"
    )


def run(args: argparse.Namespace) -> int:
    from ..engine.config import RECIPES
    from ..errors import UsageError
    from ..models import list_models

    bad = [r for r in args.recipes if r not in RECIPES]
    if bad:
        raise UsageError(f"unknown recipe(s) {', '.join(bad)}; choose from: {', '.join(RECIPES)}")
    bad = [m for m in args.models if m != "default" and m not in list_models()]
    if bad:
        raise UsageError(
            f"unknown model(s) {', '.join(bad)}; choose from: default, {', '.join(list_models())}"
        )
    from ..bench import BACKENDS, bench_infer, bench_train, format_report, machine_info

    bad = [b for b in args.backends if b not in BACKENDS]
    if bad:
        raise UsageError(f"unknown backend(s) {', '.join(bad)}; choose from: {', '.join(BACKENDS)}")
    from ..engine.fit import resolve_device

    device = resolve_device(args.device)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    report = {"machine": machine_info()}
    if args.what in ("infer", "all"):
        if device.type != "cpu":
            log("bench: inference is measured on the CPU (ONNX Runtime and TorchScript CPU paths)")
        report["infer"] = bench_infer(
            args.models,
            args.backends,
            args.batches,
            repeats=args.repeats,
            min_time=args.min_time,
            threads=args.threads,
            log=log,
        )
    if args.what in ("train", "all"):
        report["train"] = bench_train(
            args.recipes,
            device=str(device),
            data_dir=args.data_dir,
            repeats=args.repeats,
            time_cap=args.time_cap,
            threads=args.threads,
            log=log,
        )
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0
