"""Time-to-99.0/99.3/99.5% test accuracy for our recipes and the peers': ``digitnet bench --what train``.

A thin wrapper so the benchmark can be run from a checkout without installing; every option of
``digitnet bench`` is accepted (see ``--help``), for example

    python benchmarks/bench_train.py --repeats 3 --time-cap 120 [--json]

Figures only; nothing here asserts. docs/performance.md has the measured figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from digitnet.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--what", "train", *sys.argv[1:]]))
