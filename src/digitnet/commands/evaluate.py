"""``digitnet evaluate``: accuracy, loss, per-class precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "evaluate"
HELP = "evaluate a checkpoint on the MNIST test set (per-class metrics, confusion matrix, report)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .safetensors checkpoint (or a .pt/.pth state_dict)")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files")
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--report", metavar="DIR", help="write confusion.png, errors.png and report.md here"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..data.mnist import load_mnist, resolve_data_dir
    from ..data.tensors import DeviceDataset
    from ..engine.fit import evaluate, resolve_device
    from ..errors import OutputError
    from ..evaluation import classification_report, write_report
    from ..inference import load_predictor

    device = resolve_device(args.device)
    # The one loader: a checked model (input spec, finite outputs, 10 classes) or one line.
    pred = load_predictor(args.checkpoint, backend="torch", device=str(device))
    model, meta = pred.model, pred.meta
    data_dir = resolve_data_dir(args.data_dir)
    images, labels = load_mnist(data_dir, args.split)
    ds = DeviceDataset.from_numpy(images, labels, pred.input, device)
    r = evaluate(model, ds, 1000, details=True)
    rep = classification_report(labels, r["predictions"])
    out = {
        "checkpoint": str(args.checkpoint),
        "model": meta.get("model"),
        "split": args.split,
        "n": r["n"],
        "accuracy": r["accuracy"],
        "loss": r["loss"],
        "train_images": (meta.get("data") or {}).get("train_images"),
        **rep,
    }
    # The metrics are printed even when the report cannot be written: the folder's error is
    # raised after them (exit 1), so the minutes spent evaluating are never lost.
    report_error: OutputError | None = None
    if args.report:
        try:
            write_report(args.report, out, images, labels, r["predictions"], r["probabilities"])
            out["report"] = str(args.report)
        except OutputError as exc:
            report_error = exc
            out["report_error"] = str(exc)
    if args.json:
        print(json.dumps(out))
        if report_error is not None:
            raise report_error
        return 0
    ti = out["train_images"]
    print(
        f"{meta.get('model')} on {args.split} ({r['n']:,} images): accuracy {r['accuracy']:.4%}  loss {r['loss']:.4f}"
        + (f"  (trained on {ti:,} images)" if ti else "")
    )
    print(f"{'class':>5} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>7}")
    for c, pc in enumerate(out["per_class"]):
        print(
            f"{c:>5} {pc['precision']:>9.4f} {pc['recall']:>7.4f} {pc['f1']:>7.4f} {pc['support']:>7}"
        )
    print("confusion matrix (rows: true, columns: predicted):")
    print("      " + " ".join(f"{c:>5}" for c in range(10)))
    for c, row in enumerate(np.asarray(out["confusion"])):
        print(f"{c:>5} " + " ".join(f"{v:>5}" for v in row))
    if report_error is not None:
        sys.stdout.flush()
        raise report_error
    if args.report:
        print(f"report: {args.report}")
    return 0
