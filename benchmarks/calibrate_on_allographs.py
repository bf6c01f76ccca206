"""Fit a checkpoint's calibration temperature on held-out synthetic allographs and re-save it.

    python benchmarks/calibrate_on_allographs.py CHECKPOINT [--out OUT] [--count 2000]

For a model trained on every MNIST training image (no validation split is left to fit on):
``--count`` allographs drawn by ``digitnet.data.allographs.training_pool`` with seed 31337,
which no training run or benchmark uses, rendered as training renders them. This is how the
previous bundled model's ``meta["calibration"]`` was made (T = 0.632 on 2,000 images).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

SEED = 31337


def main(argv: list[str] | None = None) -> int:
    import torch

    from digitnet.calibration import calibrate_checkpoint_meta, collect_logits
    from digitnet.checkpoint import WRITTEN_KEYS, load_checkpoint, save_checkpoint
    from digitnet.data.allographs import training_pool
    from digitnet.data.tensors import DeviceDataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--out", type=Path, help="where to write (default: in place)")
    ap.add_argument("--count", type=int, default=2000)
    args = ap.parse_args(argv)
    model, meta = load_checkpoint(args.checkpoint)
    x, y = training_pool(args.count, seed=SEED)
    ds = DeviceDataset.from_numpy(x, y, meta["input"], torch.device("cpu"))
    cal = calibrate_checkpoint_meta(collect_logits(model, ds.images), y)
    cal["source"] = (
        f"{args.count:,} synthetic allographs (data/allographs.py training_pool, seed {SEED})"
    )
    keep = {k: v for k, v in meta.items() if k not in WRITTEN_KEYS}
    keep["calibration"] = cal
    out = save_checkpoint(args.out or args.checkpoint, model, keep)
    print(
        f"{out}: temperature {cal['temperature']:.4f}, ECE {cal['ece_before']:.4f} -> "
        f"{cal['ece_after']:.4f} on {cal['images']:,} allographs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
