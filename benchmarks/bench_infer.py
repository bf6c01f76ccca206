"""Inference images/s (batch 1, 64, 1,024) and single-image latency per backend: ``digitnet bench --what infer``.

A thin wrapper so the benchmark can be run from a checkout without installing; every option of
``digitnet bench`` is accepted (see ``--help``), for example

    python benchmarks/bench_infer.py --repeats 5 --backends eager,torchscript,onnx,compile [--json]

Figures only; nothing here asserts. docs/performance.md has the measured figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from digitnet.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--what", "infer", *sys.argv[1:]]))
