"""Regenerate docs/screenshots/gui-recognise.png and gui-train.png with something on screen.

``digitnet gui --screenshot FILE`` renders the window as it opens (empty); the pictures in the
README show it in use: a drawn 7 read live, an image of "42" read digit by digit, a folder of
labelled digits, a few corrections, and a finished short training run. Off-screen, with
throwaway settings, so nothing of the user's is read or changed:

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_gui_screenshots.py \
        --data ../shared/data/mnist [--out docs/screenshots]

The training shown is the ``fast`` recipe on the first 4,096 training images for 3 epochs on
the CPU (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))


def circle(cx: float, cy: float, rx: float, ry: float, n: int = 48) -> list[tuple[float, float]]:
    return [
        (cx + rx * math.sin(2 * math.pi * t / n), cy - ry * math.cos(2 * math.pi * t / n))
        for t in range(n + 1)
    ]


# Strokes on the 280 px canvas for a few digits, as a person draws them.
STROKES = {
    "0": [circle(140, 140, 60, 95)],
    "1": [[(150, 40), (140, 240)]],
    "2": [[(80, 90), (110, 50), (170, 45), (200, 90), (190, 140), (80, 240), (210, 240)]],
    "4": [[(170, 240), (170, 40), (70, 170), (210, 170)]],
    "7": [[(70, 55), (210, 50), (150, 150), (120, 240)]],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("DIGITNET_DATA"), help="MNIST folder")
    ap.add_argument("--out", default=str(HERE), help="folder for the two PNG files")
    args = ap.parse_args()
    if not args.data:
        ap.error("--data (or $DIGITNET_DATA) is required for the training picture")

    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtGui import QImage, QPainter

    from digitnet.gui.app import create_application, save_screenshot
    from digitnet.gui.canvas import DrawingCanvas
    from digitnet.gui.main_window import MainWindow

    app = create_application(offscreen=True)
    # Under the home folder, which the window writes as "~": no machine path in the picture.
    cache = Path.home() / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="digitnet-shots-", dir=cache))
    settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings, interactive_errors=False, data_dir=tmp / "data")
    w.resize(1280, 760)
    w.show()
    w.load_initial_model()

    def settle(ms: int = 300) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def drawing(digit: str) -> DrawingCanvas:
        c = DrawingCanvas()
        for s in STROKES[digit]:
            c.add_stroke(s)
        return c

    # A folder of labelled drawings, and a two-digit image made of two of them side by side.
    folder = tmp / "digits"
    folder.mkdir()
    for i, (d, who) in enumerate(
        [
            ("0", "carla"),
            ("1", "bob"),
            ("2", "anna"),
            ("4", "dan"),
            ("7", "eve"),
            ("1", "finn"),
            ("0", "gus"),
        ]
    ):
        drawing(d).save_png(folder / f"{d}_{who}{i}.png")
    left, right = drawing("4").to_image(), drawing("2").to_image()
    pair = QImage(left.width() * 2, left.height(), QImage.Format.Format_RGB32)
    p = QPainter(pair)
    p.drawImage(0, 0, left)
    p.drawImage(left.width(), 0, right)
    p.end()
    pair.save(str(tmp / "42_anna.png"))

    rec = w.recognise
    rec.images.open_paths([folder])
    while rec.images.is_reading():
        settle(100)
    rec.images.open_paths([tmp / "42_anna.png"])
    for d in ("1", "7"):  # two corrections kept earlier
        rec.corrections.add_png(d, drawing(d).png_bytes())
    for s in STROKES["7"]:
        rec.canvas.add_stroke(s)
    rec.predict_drawing()
    settle()
    save_screenshot(w, Path(args.out) / "gui-recognise.png")

    form = w.train.form
    form.recipe_combo.setCurrentText("fast")
    form.set_values({"epochs": 3, "limit_train": 4096, "device": "cpu", "data_dir": args.data})
    form.out_edit.setText(str(tmp / "runs"))
    w.tabs.setCurrentWidget(w.train)
    loop = QEventLoop()
    w.train.trainingFinished.connect(lambda _r: loop.quit())
    w.train.errorRaised.connect(lambda m: (print(m, file=sys.stderr), loop.quit()))
    w.train.start_training()
    loop.exec()
    settle()
    save_screenshot(w, Path(args.out) / "gui-train.png")
    w.close()
    app.processEvents()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
