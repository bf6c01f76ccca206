"""``digitnet export``: a checkpoint as ONNX or TorchScript (dynamic batch), checked against eager.

Refused in one line before anything is written: an output that is the checkpoint itself or its
sidecar, and ONNX export without the exporter's pieces (the ``onnx`` extra)."""

from __future__ import annotations

import argparse
import json

NAME = "export"
HELP = "export a checkpoint to ONNX or TorchScript (with a parity check against PyTorch)"

# Exported and eager logits may differ by float rounding (other kernels, fused ops); more than
# this on 64 images means the export is wrong, not rounded. Measured differences are ~1e-5.
MAX_DIFF = 1e-3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "checkpoint",
        nargs="?",
        default=None,
        help="a .safetensors checkpoint (or a .pt/.pth state_dict); default: the bundled model",
    )
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    p.add_argument("--out", required=True, metavar="FILE", help="file to write (e.g. model.onnx)")
    p.add_argument("--opset", type=int, default=None, metavar="N", help="ONNX opset (default 18)")
    p.add_argument("--json", action="store_true", help="print the export report as one JSON object")


def run(args: argparse.Namespace) -> int:
    from ..errors import DigitnetError, UsageError
    from ..export import export_checkpoint, sidecar_for

    if args.opset is not None and args.format == "onnx" and not 7 <= args.opset <= 23:
        raise UsageError(f"--opset must be between 7 and 23, not {args.opset}")
    rep = export_checkpoint(args.checkpoint, args.format, args.out, args.opset)
    if args.json:
        print(json.dumps(rep))
    else:
        print(
            f"wrote {rep['out']} ({rep['format']}, model {rep['model']}, {rep['bytes']:,} bytes) "
            f"and {sidecar_for(rep['out']).name}; "
            f"max |exported - eager| = {rep['max_abs_diff']:.2e} on {rep['n_checked']} images"
        )
    if rep["max_abs_diff"] > MAX_DIFF:
        err = DigitnetError(
            f"{rep['out']}: exported model differs from the checkpoint by "
            f"{rep['max_abs_diff']:.2e} (> {MAX_DIFF:g}); do not use it"
        )
        err.exit_code = 1
        raise err
    return 0
