"""How long the desktop app's event loop stalls while a training runs in its worker thread.

A 10 ms timer ticks on the GUI thread while the Train page trains (recipe ``fast``, CPU); the
gaps between ticks, measured from the first batch on, are how long the window could not paint
or react. Training on the GUI thread would stall it for whole seconds; the target is under
100 ms. Figures only; nothing here asserts.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui_stall.py \
        --data ../shared/data/mnist --limit 2048 [--batch 64] [--epochs 1] [--json]

The first optimizer built in a process imports ``torch._dynamo`` (seconds, holding the GIL in
stretches); the app does that on a background thread at start-up, and so does this script
before it measures, as the app would have by the time a user starts a training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data",
        default=os.environ.get("DIGITNET_DATA"),
        help="MNIST folder (default: $DIGITNET_DATA)",
    )
    ap.add_argument("--limit", type=int, default=2048, help="training images")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--tick-ms", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = ap.parse_args(argv)
    if not args.data:
        ap.error("--data (or $DIGITNET_DATA) is required")

    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from digitnet.gui import backend
    from digitnet.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    backend.warm_up_training()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings, interactive_errors=False, data_dir=tmp / "data")
    w.show()
    form = w.train.form
    form.recipe_combo.setCurrentText("fast")
    form.set_values(
        {
            "epochs": args.epochs,
            "batch_size": args.batch,
            "limit_train": args.limit,
            "device": "cpu",
            "data_dir": args.data,
        }
    )
    form.out_edit.setText(str(tmp / "runs"))

    gaps: list[float] = []
    at: list[float] = []  # when each gap ended, seconds after the first batch
    last = [0.0]
    training = [0.0]

    def tick() -> None:
        now = time.perf_counter()
        if training[0] and last[0]:
            gaps.append(now - last[0])
            at.append(now - training[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(args.tick_ms)
    loop = QEventLoop()
    w.train.trainingFinished.connect(lambda _r: loop.quit())
    w.train.errorRaised.connect(lambda m: (print(f"error: {m}", file=sys.stderr), loop.quit()))
    t0 = time.perf_counter()
    w.train.start_training()
    if w.train.handle is None:
        return 2
    w.train.handle.worker.fitStarted.connect(
        lambda _s: training.__setitem__(0, time.perf_counter())
    )
    loop.exec()
    wall = time.perf_counter() - t0
    timer.stop()
    w.close()
    app.processEvents()
    if not gaps:
        print("error: no ticks measured (training too short?)", file=sys.stderr)
        return 1
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    worst_at = at[worst]
    gaps.sort()
    res = {
        "ticks": len(gaps),
        "tick_ms": args.tick_ms,
        "train_images": args.limit,
        "batch": args.batch,
        "epochs": args.epochs,
        "wall_s": round(wall, 2),
        "median_gap_ms": round(1000 * gaps[len(gaps) // 2], 1),
        "p99_gap_ms": round(1000 * gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))], 1),
        "max_gap_ms": round(1000 * gaps[-1], 1),
        "max_gap_at_s": round(worst_at, 2),
        "over_100ms": sum(g > 0.1 for g in gaps),
        "cpu_cores": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(res))
    else:
        print(
            f"GUI event loop while training {args.limit} images x {args.epochs} epoch(s), "
            f"batch {args.batch}, {res['cpu_cores']} CPU cores ({res['wall_s']} s):"
        )
        print(
            f"  {res['ticks']} ticks of {args.tick_ms} ms; gap median {res['median_gap_ms']} "
            f"ms, p99 {res['p99_gap_ms']} ms, max {res['max_gap_ms']} ms at "
            f"{res['max_gap_at_s']} s after the first batch"
        )
        print(f"  {res['over_100ms']} gaps over 100 ms (target: none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
