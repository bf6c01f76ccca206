"""``digitnet bench``: time-to-99.x% for our recipes and the peers', and inference speed per backend.

One process, the same data and threads for everything, runs alternating over several repeats;
medians and ratios to ours are printed (or the whole measurement as JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys

NAME = "bench"
HELP = "measure training time-to-accuracy and inference speed (ours beside the peers)"


def _positive(kind):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return v
    return parse


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..bench import BACKENDS, BATCHES, DEFAULT_BACKENDS, INFER_MODELS, TRAIN_RECIPES

    p.add_argument("--what", choices=["train", "infer", "all"], default="all")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps, auto")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files")
    p.add_argument("--repeats", type=_positive(int), default=3, metavar="R",
                   help="repeats of every measurement (default 3; medians reported)")
    p.add_argument("--time-cap", type=_positive(float), default=120.0, metavar="S",
                   help="stop a training run after S training seconds (default 120)")
    p.add_argument("--threads", type=_positive(int), default=None, metavar="N",
                   help="CPU threads for torch and ONNX Runtime (default: torch's default)")
    p.add_argument("--recipes", type=_names, default=list(TRAIN_RECIPES), metavar="A,B",
                   help=f"training recipes (default {','.join(TRAIN_RECIPES)})")
    p.add_argument("--models", type=_names, default=list(INFER_MODELS), metavar="A,B",
                   help="inference models: 'default' (the bundled model) or model names "
                        f"(default {','.join(INFER_MODELS)})")
    p.add_argument("--backends", type=_names, default=list(DEFAULT_BACKENDS), metavar="A,B",
                   help=f"inference backends: {','.join(BACKENDS)} (default {','.join(DEFAULT_BACKENDS)})")
    p.add_argument("--batches", type=lambda t: [_positive(int)(v) for v in _names(t)],
                   default=list(BATCHES), metavar="N,M", help="inference batch sizes (default 1,64,1024)")
    p.add_argument("--min-time", type=_positive(float), default=0.5, metavar="S",
                   help="seconds of calls per inference measurement (default 0.5)")
    p.add_argument("--json", action="store_true", help="print the whole measurement as one JSON object")


def run(args: argparse.Namespace) -> int:
    from ..engine.config import RECIPES
    from ..errors import UsageError
    from ..models import list_models

    bad = [r for r in args.recipes if r not in RECIPES]
    if bad:
        raise UsageError(f"unknown recipe(s) {', '.join(bad)}; choose from: {', '.join(RECIPES)}")
    bad = [m for m in args.models if m != "default" and m not in list_models()]
    if bad:
        raise UsageError(f"unknown model(s) {', '.join(bad)}; choose from: default, {', '.join(list_models())}")
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
        report["infer"] = bench_infer(args.models, args.backends, args.batches, repeats=args.repeats,
                                      min_time=args.min_time, threads=args.threads, log=log)
    if args.what in ("train", "all"):
        report["train"] = bench_train(args.recipes, device=str(device), data_dir=args.data_dir,
                                      repeats=args.repeats, time_cap=args.time_cap,
                                      threads=args.threads, log=log)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0
