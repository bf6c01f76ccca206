"""The desktop app, off-screen: canvas, live reading, images and folders, corrections and
adapting, the training form and runs, closing, the command.

Reading tests use the bundled model and skip only when its file is absent (or set
``DIGITNET_TEST_MODEL`` to another checkpoint). Training tests use the small synthetic MNIST of
``tiny_mnist`` (a few hundred images, one epoch): they test the mechanics, not accuracy. The
window's responsiveness while training is measured by ``benchmarks/bench_gui_stall.py``.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gui
pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest

from digitnet.gui import backend
from digitnet.gui.canvas import DrawingCanvas
from digitnet.gui.corrections import CorrectionStore
from digitnet.gui.main_window import MainWindow
from digitnet.gui.recognise_page import NO_READING
from digitnet.gui.widgets import LineChart, ProbabilityBars

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "src" / "digitnet" / "weights" / "digitnet.safetensors"


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """An isolated settings file: tests never read or change the user's remembered settings."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings: QSettings, tmp_path: Path):
    w = MainWindow(settings, interactive_errors=False, data_dir=tmp_path / "user-data")
    qtbot.addWidget(w)
    w.show()
    yield w
    w.shutdown()  # no test leaves a worker thread running behind it


@pytest.fixture(scope="session")
def model_path() -> Path:
    p = Path(os.environ.get("DIGITNET_TEST_MODEL") or BUNDLED)
    if not p.exists():
        pytest.skip(f"model {p.name} not installed")
    return p


@pytest.fixture
def reader(window: MainWindow, model_path: Path) -> MainWindow:
    window.recognise.models.set_model(None if model_path == BUNDLED else model_path)
    return window


def circle(cx: float, cy: float, rx: float, ry: float, n: int = 48) -> list[tuple[float, float]]:
    return [
        (cx + rx * math.sin(2 * math.pi * t / n), cy - ry * math.cos(2 * math.pi * t / n))
        for t in range(n + 1)
    ]


def train_setup(
    w: MainWindow, data: Path, out: Path, *, limit: int, epochs: int = 1, batch: int = 64
) -> None:
    form = w.train.form
    form.recipe_combo.setCurrentText("fast")
    form.set_values(
        {
            "epochs": epochs,
            "batch_size": batch,
            "limit_train": limit,
            "device": "cpu",
            "data_dir": str(data),
        }
    )
    form.out_edit.setText(str(out))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


# ----------------------------------------------------------------------------------- canvas


def test_canvas_strokes_undo_clear(qtbot, tmp_path: Path) -> None:
    c = DrawingCanvas()
    qtbot.addWidget(c)
    assert c.is_blank() and not c.ink_array().any()
    with qtbot.waitSignal(c.changed):
        c.add_stroke([(140, 40), (140, 240)])
    ink = c.ink_array()
    dpr = c.devicePixelRatioF()
    x = round(140 * dpr)
    assert ink[:, x].max() == 255 and ink[:, round(30 * dpr)].max() == 0  # ink where drawn only
    c.add_stroke([(40, 140), (240, 140)])
    c.undo()
    assert np.array_equal(c.ink_array(), ink)  # undo removes exactly the last stroke
    c.clear()
    assert c.is_blank() and not c.ink_array().any()
    c.undo()  # undo brings back what clear wiped
    assert np.array_equal(c.ink_array(), ink)
    out = c.save_png(tmp_path / "d.png")
    assert png_size(out) == (ink.shape[1], ink.shape[0])


def test_canvas_mouse_drawing_and_pen_width(qtbot) -> None:
    c = DrawingCanvas()
    qtbot.addWidget(c)
    c.show()
    c.set_pen_width(8)
    QTest.mousePress(c, Qt.MouseButton.LeftButton, pos=QPoint(50, 50))
    for y in range(60, 231, 10):
        QTest.mouseMove(c, QPoint(50, y))
    QTest.mouseRelease(c, Qt.MouseButton.LeftButton, pos=QPoint(50, 230))
    assert len(c.strokes()) == 1 and len(c.strokes()[0].points) >= 10
    thin = int((c.ink_array()[140] > 128).sum())
    c.clear()
    c.set_pen_width(40)
    c.add_stroke([(50, 50), (50, 230)])
    thick = int((c.ink_array()[140] > 128).sum())
    dpr = c.devicePixelRatioF()
    assert abs(thin - 8 * dpr) <= 3 and abs(thick - 40 * dpr) <= 3


def test_canvas_tablet_pen_pressure(qtbot) -> None:
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QInputDevice, QPointingDevice, QTabletEvent
    from PySide6.QtWidgets import QApplication

    c = DrawingCanvas(pen_width=22)
    qtbot.addWidget(c)
    c.show()
    pen = QPointingDevice(
        "test pen",
        1,
        QInputDevice.DeviceType.Stylus,
        QPointingDevice.PointerType.Pen,
        QInputDevice.Capability.Position | QInputDevice.Capability.Pressure,
        1,
        3,
    )
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton

    def event(
        kind: QEvent.Type, y: float, button: Qt.MouseButton, buttons: Qt.MouseButton
    ) -> QTabletEvent:
        pos = QPointF(50, y)
        return QTabletEvent(
            kind, pen, pos, pos, 0.5, 0, 0, 0, 0, 0, Qt.KeyboardModifier.NoModifier, button, buttons
        )

    events = (
        [event(QEvent.Type.TabletPress, 50, left, left)]
        + [event(QEvent.Type.TabletMove, y, none, left) for y in range(60, 231, 10)]
        + [event(QEvent.Type.TabletRelease, 230, left, none)]
    )
    for ev in events:
        QApplication.sendEvent(c, ev)
        assert ev.isAccepted()  # accepted: Qt synthesises no duplicate mouse stroke
    assert len(c.strokes()) == 1
    # Half pressure: 22 px x (0.4 + 0.6 x 0.5) = 15.4 px wide.
    width = int((c.ink_array()[140] > 128).sum()) / c.devicePixelRatioF()
    assert 13 <= width <= 18


def test_canvas_high_dpi_maps_logical_to_device_pixels() -> None:
    # A fresh process: the scale factor must be set before Qt starts.
    code = (
        "from PySide6.QtWidgets import QApplication; app = QApplication([]);"
        "from digitnet.gui.canvas import DrawingCanvas; c = DrawingCanvas(); c.show();"
        "app.processEvents(); c.add_stroke([(140, 40), (140, 240)], width=10);"
        "a = c.ink_array(); cols = (a > 128).any(axis=0).nonzero()[0];"
        "print(c.devicePixelRatioF(), a.shape[0], a.shape[1], cols.min(), cols.max())"
    )
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "QT_SCALE_FACTOR": "2",
        "PYTHONPATH": str(REPO / "src"),
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    dpr, h, w, lo, hi = out.stdout.split()
    assert float(dpr) == 2.0 and (int(h), int(w)) == (560, 560)  # backing store in device px
    # A 10 px (logical) line at x = 140 covers device columns ~270..290.
    assert 266 <= int(lo) <= 272 and 288 <= int(hi) <= 294


# ----------------------------------------------------------------------------------- widgets


def test_probability_bars_and_chart(qtbot) -> None:
    b = ProbabilityBars()
    qtbot.addWidget(b)
    b.set_probabilities([0.0] * 9 + [1.0])
    assert b.probabilities()[9] == 1.0
    with pytest.raises(ValueError):
        b.set_probabilities([0.5, 0.5])
    b.set_probabilities(None)
    assert b.probabilities() is None
    ch = LineChart("Loss")
    qtbot.addWidget(ch)
    ch.add_point("train", 1, 0.5)
    ch.add_point("train", 2, float("nan"))  # a diverged epoch is skipped, not plotted
    ch.add_point("test", 1, 0.4)
    assert ch.series() == {"train": [(1.0, 0.5)], "test": [(1.0, 0.4)]}
    ch.resize(300, 200)
    assert not ch.grab().isNull()


def test_undo_is_enabled_after_the_first_mouse_stroke(qtbot, window: MainWindow) -> None:
    rec = window.recognise
    c = rec.canvas
    assert c.is_blank() and not rec.undo_button.isEnabled()
    QTest.mousePress(c, Qt.MouseButton.LeftButton, pos=QPoint(140, 40))
    for y in range(50, 241, 10):
        QTest.mouseMove(c, QPoint(140, y))
    QTest.mouseRelease(c, Qt.MouseButton.LeftButton, pos=QPoint(140, 240))
    assert len(c.strokes()) == 1
    assert rec.undo_button.isEnabled()  # the first stroke on a fresh canvas can be undone
    rec.undo_button.click()
    assert c.is_blank() and not rec.undo_button.isEnabled()


# ----------------------------------------------------------------------------------- reading


def test_blank_canvas_shows_no_prediction(reader: MainWindow) -> None:
    rec = reader.recognise
    rec.predict_drawing()
    assert rec.last_reading is None and rec.bars.probabilities() is None
    assert rec.result_label.text() == NO_READING


def test_vertical_line_reads_one_live(qtbot, reader: MainWindow) -> None:
    rec = reader.recognise
    with qtbot.waitSignal(rec.readingShown, timeout=3000) as sig:
        rec.canvas.add_stroke([(140, 40), (140, 240)])
    assert sig.args == ["1"]
    assert rec.result_label.text() == "1"
    p = rec.bars.probabilities()
    assert p is not None and int(np.argmax(p)) == 1 and p[1] > 0.5
    assert rec.input_view.count() == 1


def test_debounce_reads_once_per_pause(qtbot, reader: MainWindow) -> None:
    rec = reader.recognise
    shown: list[str] = []
    rec.readingShown.connect(shown.append)
    # Many pen movements in quick succession, as while drawing: one reading after the pause.
    for i in range(12):
        rec.canvas.add_stroke([(140, 40 + 15 * i), (140, 55 + 15 * i)])
    assert shown == []  # nothing read while the pen is moving
    qtbot.waitUntil(lambda: shown == ["1"], timeout=3000)
    qtbot.wait(400)
    assert shown == ["1"]


def test_two_digits_read_as_a_number(qtbot, reader: MainWindow) -> None:
    rec = reader.recognise
    rec.canvas.add_stroke([(80, 50), (80, 230)])
    rec.canvas.add_stroke(circle(195, 140, 45, 90))
    rec.predict_drawing()
    r = rec.last_reading
    assert r is not None and r.text == "10" and len(r.boxes) == 2
    assert rec.input_view.count() == 2
    rec.input_view.selected.emit(1)  # clicking the second digit shows its probabilities
    assert int(np.argmax(rec.bars.probabilities())) == 0


def test_clear_and_undo_update_prediction(qtbot, reader: MainWindow) -> None:
    rec = reader.recognise
    rec.canvas.add_stroke([(140, 40), (140, 240)])
    rec.predict_drawing()
    assert rec.result_label.text() == "1"
    rec.canvas.clear()
    assert rec.last_reading is None and rec.result_label.text() == NO_READING
    with qtbot.waitSignal(rec.readingShown, timeout=3000) as sig:
        rec.canvas.undo()
    assert sig.args == ["1"]


def test_keyboard_shortcuts(qtbot, reader: MainWindow) -> None:
    c = reader.recognise.canvas
    reader.activateWindow()
    c.add_stroke([(140, 40), (140, 240)])
    c.add_stroke([(40, 140), (240, 140)])
    QTest.keyClick(reader, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(c.strokes()) == 1
    QTest.keyClick(reader, Qt.Key.Key_Delete)
    assert c.is_blank()
    c.add_stroke([(140, 40), (140, 240)])
    QTest.keyClick(reader, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert c.is_blank()
    keys = {a.text(): [k.toString() for k in a.shortcuts()] for a in reader.actions()}
    assert "Ctrl+O" in keys["&Open image(s)…"] and "Ctrl+S" in keys["&Save drawing…"]
    assert "Ctrl+T" in keys["&Start training"]


def _drawn_png(qtbot, path: Path, strokes: list[list[tuple[float, float]]]) -> Path:
    c = DrawingCanvas()
    qtbot.addWidget(c)
    for s in strokes:
        c.add_stroke(s)
    return c.save_png(path)


def test_load_image_shows_boxes_text_and_target(qtbot, reader: MainWindow, tmp_path: Path) -> None:
    rec, images = reader.recognise, reader.recognise.images
    one = [[(140, 40), (140, 240)]]
    right = _drawn_png(qtbot, tmp_path / "1_anna.png", one)
    images.open_paths([right])
    assert images.image_view.has_image()
    boxes = images.image_view.boxes()
    assert len(boxes) == 1 and boxes[0].label == "1" and boxes[0].ok is True
    assert "1_anna.png" in images.image_result.text() and "right" in images.image_result.text()
    assert rec.result_label.text() == "1" and rec.source == right
    wrong = _drawn_png(qtbot, tmp_path / "7_bob.png", one)
    images.open_paths([wrong])
    assert images.image_view.boxes()[0].ok is False and "wrong" in images.image_result.text()
    nameless = _drawn_png(qtbot, tmp_path / "scan.png", one)
    images.open_paths([nameless])
    assert images.image_view.boxes()[0].ok is None
    text = images.image_result.text()
    assert "right" not in text and "wrong" not in text


def test_bad_image_is_one_line_not_a_crash(reader: MainWindow, tmp_path: Path) -> None:
    bad = tmp_path / "3_broken.png"
    bad.write_bytes(b"not an image at all")
    reader.recognise.images.open_paths([bad])  # the slot reports; it must not raise
    assert reader.last_error is not None and "3_broken.png" in reader.last_error
    assert "\n" not in reader.last_error
    assert "3_broken.png" in reader.statusBar().currentMessage()


def _drop(window: MainWindow, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    window.dropEvent(
        QDropEvent(
            QPointF(10, 10),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        )
    )


def test_drop_image_file(qtbot, reader: MainWindow, tmp_path: Path) -> None:
    png = _drawn_png(qtbot, tmp_path / "1_drop.png", [[(140, 40), (140, 240)]])
    _drop(reader, png)
    assert reader.recognise.images.image_view.boxes()[0].label == "1"


def _mnist_pngs(folder: Path, data: Path, n: int) -> list[Path]:
    from digitnet.data.mnist import load_mnist

    images, labels = load_mnist(data, "test")
    folder.mkdir()
    out = []
    for i in range(n):
        # Dark ink on white paper at 4x size, as a scanned digit would be.
        big = np.kron(255 - images[i], np.ones((4, 4), np.uint8))
        p = folder / f"{labels[i]}_{i:03d}.png"
        _write_gray_png(p, big)
        out.append(p)
    (folder / "notes.txt").write_text("not an image; ignored")
    return out


def _write_gray_png(path: Path, a: np.ndarray) -> None:
    h, w = a.shape
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + tag
            + body
            + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
        )

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_folder_results_table_with_accuracy(
    qtbot, reader: MainWindow, tmp_path: Path, mnist_dir: Path
) -> None:
    images = reader.recognise.images
    files = _mnist_pngs(tmp_path / "digits", mnist_dir, 20)
    (tmp_path / "digits" / "5_broken.png").write_bytes(b"\x89PNG broken")
    images.open_paths([tmp_path / "digits"])
    assert images.is_reading()  # reading runs in a worker thread; open_paths returned
    qtbot.waitUntil(lambda: not images.is_reading(), timeout=60000)
    assert images.table.rowCount() == len(files) + 1  # 20 digits + the broken file, no .txt
    s = images.folder_summary
    # As ``digitnet predict --labels-from-names`` counts: over the files that could be read.
    assert s is not None and (s.files, s.read, s.with_target) == (21, 20, 20)
    assert s.right >= 17  # MNIST test digits: the model reads nearly all of them
    assert f"{s.right}/20" in images.accuracy_label.text()
    broken = [
        r
        for r in range(images.table.rowCount())
        if images.table.item(r, 0).text() == "5_broken.png"
    ]
    assert images.table.item(broken[0], 1).text() == "error"


def test_folder_reading_cancels(qtbot, reader: MainWindow, tmp_path: Path, mnist_dir: Path) -> None:
    images = reader.recognise.images
    _mnist_pngs(tmp_path / "digits", mnist_dir, 60)
    images.open_paths([tmp_path / "digits"])
    images.cancel_folder()
    qtbot.waitUntil(lambda: not images.is_reading(), timeout=60000)
    assert images.folder_summary is not None and images.folder_summary.cancelled
    assert images.table.rowCount() < 60


def test_folder_reads_as_predict_reads_it(qtbot, model_path: Path, tmp_path: Path, capsys) -> None:
    """The window's folder reading and ``digitnet predict`` list, read and label alike."""
    import json

    from digitnet.cli import main

    folder = tmp_path / "mixed"
    (folder / "7").mkdir(parents=True)
    _drawn_png(qtbot, folder / "1_a.png", [[(140, 40), (140, 240)]])
    _drawn_png(qtbot, folder / "7" / "anna.png", [[(60, 60), (220, 60), (120, 240)]])
    _drawn_png(qtbot, folder / "10.jpg.png", [[(80, 50), (80, 230)], circle(195, 140, 45, 90)])
    (folder / "broken.png").write_bytes(b"\x89PNG no")
    (folder / "notes.txt").write_text("not an image")
    rows: list[backend.FileResult] = []
    model = None if model_path == BUNDLED else str(model_path)
    summary = backend.read_files(
        [folder], model, stop=threading.Event(), on_result=lambda r, _d, _n: rows.append(r)
    )
    args = ["predict", str(folder), "--json"] + ([] if model is None else ["--model", model])
    assert main(args) != 0  # one file could not be read
    cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r.path, r.text, r.error) for r in rows] == [
        (c["path"], c["text"], c["error"]) for c in cli
    ]
    assert summary.files == 4 and summary.read == 3
    targets = {Path(r.path).name: r.target for r in rows}
    assert targets == {"1_a.png": "1", "anna.png": "7", "10.jpg.png": "10", "broken.png": None}


def test_model_picker_and_remembered_settings(
    qtbot, settings: QSettings, model_path: Path, tmp_path: Path
) -> None:
    w = MainWindow(settings, interactive_errors=False, data_dir=tmp_path / "data")
    qtbot.addWidget(w)
    models = w.recognise.models
    models.set_model(model_path)
    assert models.model_info is not None and models.model_info.test_accuracy is not None
    assert "test accuracy" in models.label.text()
    w.recognise.pen_slider.setValue(31)
    w.recognise.images.set_last_folder(tmp_path)
    w.close()
    w2 = MainWindow(settings, interactive_errors=False, data_dir=tmp_path / "data")
    qtbot.addWidget(w2)
    m2 = w2.recognise.models
    assert w2.recognise.canvas.pen_width() == 31
    assert w2.recognise.images.last_folder() == str(tmp_path)
    w2.load_initial_model()
    assert m2.model_path == str(model_path.resolve())
    i = m2.combo.findData(str(model_path.resolve()))
    assert i >= 0
    m2.combo.activated.emit(0)  # picking "Bundled model" in the list
    if BUNDLED.exists():
        assert m2.model_path is None and "bundled" in m2.label.text()
    m2.combo.activated.emit(i)  # and back to the checkpoint
    assert m2.model_path == str(model_path.resolve())
    w2.close()


def test_bad_checkpoint_keeps_previous_model(reader: MainWindow, tmp_path: Path) -> None:
    models = reader.recognise.models
    before = models.predictor
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"\x00" * 4)
    with pytest.raises(backend.CheckpointError):
        models.set_model(bad)
    assert models.predictor is before
    _drop(reader, bad)  # dropped on the window, the same file gives one line instead
    assert reader.last_error is not None and "junk.safetensors" in reader.last_error
    assert models.predictor is before


# ----------------------------------------------------------------------------------- corrections


def test_correction_store_names_files_as_predict_reads_them(tmp_path: Path) -> None:
    store = CorrectionStore(tmp_path / "corrections")
    assert store.items() == []  # no folder yet: nothing, and nothing created
    png = (REPO / "docs" / "screenshots" / "gui-recognise.png").read_bytes()
    a = store.add_png("7", png)
    b = store.add_png("7", png)  # the same millisecond must not overwrite the first
    c = store.add_png(" 42 ", png)
    assert a.path != b.path and a.path.name.startswith("7_") and a.path.suffix == ".png"
    assert [x.label for x in store.items()] == ["7", "7", "42"]
    assert store.counts()["7"] == 2 and c.label == "42"
    from digitnet.commands.predict import label_from_name

    assert [label_from_name(str(x.path)) for x in store.items()] == ["7", "7", "42"]
    store.remove(b.path)
    assert [x.path for x in store.items()] == [a.path, c.path]
    with pytest.raises(backend.UsageError, match="digits"):
        store.add_png("seven", png)
    (tmp_path / "other.png").write_bytes(png)
    with pytest.raises(backend.UsageError):
        store.remove(tmp_path / "other.png")  # only the store's own files
    assert (tmp_path / "other.png").exists()


def test_correct_a_reading_list_and_remove(qtbot, reader: MainWindow, tmp_path: Path) -> None:
    rec = reader.recognise
    panel = rec.corrections
    assert not rec.correct_button.isEnabled()  # nothing read yet: nothing to correct
    rec.canvas.add_stroke([(140, 40), (140, 240)])
    rec.predict_drawing()
    rec.correct_edit.setText("7")
    rec.correct_button.click()
    files = list((tmp_path / "user-data" / "corrections").iterdir())
    assert len(files) == 1 and files[0].name.startswith("7_")
    assert panel.list.count() == 1 and panel.list.item(0).text() == "7"
    assert "1 correction" in panel.summary.text()
    # An image file shown in the window is kept as a copy of that file.
    img = _drawn_png(qtbot, tmp_path / "scan.png", [[(140, 40), (140, 240)]])
    rec.images.open_paths([img])
    rec.correct_edit.setText("1x")  # not digits: one line, nothing kept
    rec.correct_button.click()
    assert reader.last_error is not None and "1x" in reader.last_error
    rec.correct_edit.setText("1")
    rec.correct_edit.returnPressed.emit()
    assert panel.list.count() == 2
    assert panel.corrections()[1].path.read_bytes() == img.read_bytes()
    panel.list.item(0).setSelected(True)
    panel.remove_button.click()
    assert [c.label for c in panel.corrections()] == ["1"] and panel.list.count() == 1


def _fake_adapt(calls: list, *, block: bool = False):
    def adapt(examples, base, out, *, stop, on_progress, seconds):
        calls.append((list(examples), base, Path(out), seconds))
        on_progress(backend.AdaptProgress(500, 1000, 10, 0.5, 0.9))
        if block:
            assert stop.wait(30), "never cancelled"
            return backend.AdaptOutcome(None, len(examples), 0.6, True, 0.5, 0.5, ())
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BUNDLED, out)
        return backend.AdaptOutcome(str(out), len(examples), 0.6, False, 0.5, 1.0, ())

    return adapt


def test_adapt_button_runs_in_a_worker_and_uses_the_result(
    qtbot, reader: MainWindow, monkeypatch
) -> None:
    if not BUNDLED.exists():
        pytest.skip("bundled model not installed")
    panel = reader.recognise.corrections
    reader.recognise.canvas.add_stroke([(140, 40), (140, 240)])
    panel.add_png("1", reader.recognise.canvas.png_bytes())
    calls: list = []
    monkeypatch.setattr(backend, "adapt", _fake_adapt(calls))
    monkeypatch.setattr(backend, "adapt_available", lambda: True)
    panel._update_buttons()
    assert panel.adapt_button.isEnabled()
    with qtbot.waitSignal(panel.adaptFinished, timeout=30000) as sig:
        panel.adapt_button.click()
        assert panel.is_adapting() and panel.progress.isVisible()
    r = sig.args[0]
    examples, base, out, seconds = calls[0]
    assert examples == [c.path for c in panel.corrections()] and base is None
    assert seconds == panel.adapt_seconds
    assert reader.recognise.models.model_path == str(out.resolve()) == r.checkpoint
    assert "Adapted" in panel.status.text() and not panel.progress.isVisible()
    # Adapting again starts from the model the adapted one came from, with every correction.
    panel.add_png("7", reader.recognise.canvas.png_bytes())
    with qtbot.waitSignal(panel.adaptFinished, timeout=30000):
        panel.start_adapt()
    examples, base, out2, _ = calls[1]
    assert base is None and len(examples) == 2 and out2 != out


def test_adapt_can_be_cancelled(qtbot, reader: MainWindow, monkeypatch) -> None:
    panel = reader.recognise.corrections
    reader.recognise.canvas.add_stroke([(140, 40), (140, 240)])
    panel.add_png("1", reader.recognise.canvas.png_bytes())
    before = reader.recognise.models.model_path
    monkeypatch.setattr(backend, "adapt", _fake_adapt([], block=True))
    monkeypatch.setattr(backend, "adapt_available", lambda: True)
    panel._update_buttons()
    panel.start_adapt()
    qtbot.waitUntil(lambda: panel.progress.maximum() == 1000, timeout=10000)
    assert panel.progress.value() == 500
    with qtbot.waitSignal(panel.adaptFinished, timeout=30000) as sig:
        panel.cancel_button.click()
    assert sig.args[0].cancelled and reader.recognise.models.model_path == before
    assert "Cancelled" in panel.status.text()


@pytest.mark.slow
def test_real_adaptation_from_corrections(
    qtbot, reader: MainWindow, mnist_dir: Path, tmp_path: Path
) -> None:
    """The button against the real library: a short budget, ten drawn examples."""
    if not backend.adapt_available():
        pytest.skip("digitnet.adapt not in this installation")
    panel = reader.recognise.corrections
    panel.adapt_seconds = 4.0
    c = reader.recognise.canvas
    for _ in range(5):
        c.clear()
        c.add_stroke([(140, 40), (140, 240)])
        panel.add_png("1", c.png_bytes())
        c.clear()
        c.add_stroke(circle(140, 140, 60, 95))
        panel.add_png("0", c.png_bytes())
    with qtbot.waitSignal(panel.adaptFinished, timeout=120000) as sig:
        panel.start_adapt()
    r = sig.args[0]
    assert r.checkpoint is not None and Path(r.checkpoint).exists(), reader.last_error
    assert r.examples == 10
    assert reader.recognise.models.model_path == str(Path(r.checkpoint).resolve())


# ----------------------------------------------------------------------------------- training form


def test_form_is_built_from_train_config(window: MainWindow) -> None:
    from digitnet.engine import RECIPES, resolve_config

    form = window.train.form
    assert [form.recipe_combo.itemText(i) for i in range(form.recipe_combo.count())] == list(
        RECIPES
    )
    assert list(form.fields) == [name for name, _ in backend.FORM_FIELDS]
    for recipe in RECIPES:
        form.recipe_combo.setCurrentText(recipe)
        cfg = resolve_config(recipe=recipe)
        v = form.values()
        assert v["model"] == cfg.model and v["epochs"] == cfg.epochs
        assert v["batch_size"] == cfg.batch_size and v["optimizer"] == cfg.optimizer
        assert v["lr"] == pytest.approx(cfg.lr) and v["schedule"] == cfg.schedule
        assert v["augment"] == cfg.augment.enabled
    # What the form hands to training is the engine's own config for those values.
    form.recipe_combo.setCurrentText("paper")
    form.set_values({"epochs": 3, "lr": 0.002})
    got = form.config(out="somewhere")
    want = resolve_config(
        recipe="paper",
        epochs=3,
        lr=0.002,
        out="somewhere",
        device=got.device,
        threads=got.threads,
        augment=False,
    )
    assert got == want


def test_form_settings_are_validated_by_the_engine(window: MainWindow) -> None:
    device = window.train.form.fields["device"]
    device.addItem("tpu")  # a value the engine does not accept
    device.setCurrentText("tpu")
    window.train.start_training()
    assert not window.train.is_training()
    assert window.last_error is not None and "unknown device 'tpu'" in window.last_error


def test_learning_rate_box_shows_and_parses_small_rates(window: MainWindow) -> None:
    form = window.train.form
    form.recipe_combo.setCurrentText("course")  # SGD lr 1e-4 (the course report)
    lr = form.fields["lr"]
    assert lr.value() == pytest.approx(1e-4) and lr.text() == "0.0001"
    lr.lineEdit().setText("3e-05")
    lr.interpretText()
    assert form.values()["lr"] == pytest.approx(3e-5)


# ----------------------------------------------------------------------------------- training


class CountingEvent(threading.Event):
    """A stop flag that counts how often the training thread checked it (once per batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0
        self.checks_at_set: int | None = None

    def is_set(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            self.checks += 1
        return super().is_set()

    def set(self) -> None:
        self.checks_at_set = self.checks
        super().set()


def test_short_training_reports_and_finishes(
    qtbot, window: MainWindow, tmp_path: Path, tiny_mnist: Path
) -> None:
    page = window.train
    train_setup(window, tiny_mnist, tmp_path / "runs", limit=256, batch=64)
    progress: list[backend.TrainProgress] = []
    epochs: list[backend.EpochReport] = []
    page.start_training()
    assert page.is_training() and not page.start_button.isEnabled()
    assert not window.act_train.isEnabled() and window.act_cancel.isEnabled()
    page.handle.worker.progress.connect(progress.append)
    page.handle.worker.epochEnded.connect(epochs.append)
    with qtbot.waitSignal(page.trainingFinished, timeout=300000) as sig:
        pass
    r = sig.args[0]
    assert isinstance(r, backend.TrainOutcome)
    assert not r.interrupted and r.checkpoint and Path(r.checkpoint).exists()
    assert progress and progress[-1].global_step == progress[-1].total_steps == 4
    assert len(epochs) == 1 and "test_accuracy" in epochs[0].metrics
    assert len(page.loss_chart.series()["train"]) == 1
    assert len(page.acc_chart.series()["test"]) == 1
    assert page.result_cells["test_accuracy"].text().endswith("%")
    assert page.result_cells["train_loss"].text() != "-"
    assert page.train_progress.value() == page.train_progress.maximum()
    assert page.start_button.isEnabled() and page.use_model_button.isEnabled()
    page.use_model_button.click()  # one click: the new model reads the canvas
    models = window.recognise.models
    assert models.model_path == str(Path(r.checkpoint).resolve())
    assert window.tabs.currentWidget() is window.recognise
    assert models.model_info is not None and models.model_info.name == "fast"


def test_cancel_stops_within_one_batch_and_resume_says_what_it_uses(
    qtbot, window: MainWindow, tmp_path: Path, tiny_mnist: Path
) -> None:
    page = window.train
    train_setup(window, tiny_mnist, tmp_path / "runs", limit=1024, batch=32)
    page.stop_event_type = CountingEvent
    page.start_training()
    stop = page.handle.stop
    page.handle.worker.progress.connect(lambda _p: page.cancel_training())
    with qtbot.waitSignal(page.trainingFinished, timeout=300000) as sig:
        pass
    r = sig.args[0]
    assert r.interrupted and r.checkpoint is None and r.last_checkpoint
    assert isinstance(stop, CountingEvent) and stop.checks_at_set is not None
    # fit checks the flag once per batch: at most the batch running at the click went on.
    assert stop.checks - stop.checks_at_set <= 1
    assert "Cancelled" in page.train_status.text()
    assert page.start_button.isEnabled() and not page.cancel_button.isEnabled()
    from digitnet.checkpoint import read_metadata

    assert read_metadata(r.last_checkpoint)["resumable"]
    # The form now asks for other settings; resuming uses the checkpoint's and says so.
    page.form.set_values({"epochs": 5, "lr": 0.3})
    page.resume_training(r.last_checkpoint)
    plan = page.resume_plan
    assert plan is not None and page.resume_label.isVisible()
    changed = {label: (ck, form) for label, ck, form in plan.differs}
    assert changed["Epochs"] == (1, 5) and changed["Learning rate"][1] == 0.3
    note = page.resume_label.text()
    assert "from the checkpoint" in note and "Epochs 1 (form: 5)" in note
    assert page.form.values()["epochs"] == 1  # the form shows what the run really uses
    with qtbot.waitSignal(page.trainingFinished, timeout=300000) as second:
        pass
    r2 = second.args[0]
    assert not r2.interrupted and Path(r2.checkpoint).parent == Path(r.last_checkpoint).parent
    assert page.use_model_button.isEnabled()


def test_resume_refuses_a_final_model(window: MainWindow, model_path: Path) -> None:
    window.train.resume_training(model_path)
    assert window.last_error is not None and "not a resumable checkpoint" in window.last_error
    assert not window.train.is_training()


def test_closing_mid_training_is_clean_and_resumable(
    qtbot, settings: QSettings, tmp_path: Path, tiny_mnist: Path
) -> None:
    w = MainWindow(settings, interactive_errors=False, data_dir=tmp_path / "data")
    qtbot.addWidget(w)
    w.show()
    train_setup(w, tiny_mnist, tmp_path / "runs", limit=1200, batch=16, epochs=3)
    w.train.start_training()
    handle = w.train.handle
    qtbot.waitUntil(lambda: w.train.train_progress.value() > 0, timeout=300000)
    w.close()
    assert not handle.thread.isRunning()  # closed only after the worker thread ended
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    from digitnet.checkpoint import read_metadata

    assert read_metadata(runs[0] / "last.safetensors")["resumable"] is True
    assert not (runs[0] / "model.safetensors").exists()  # stopped early: no final model


def test_missing_data_is_one_line(qtbot, window: MainWindow, tmp_path: Path) -> None:
    train_setup(window, tmp_path / "no-such-folder", tmp_path / "runs", limit=64)
    window.train.start_training()
    qtbot.waitUntil(lambda: not window.train.is_training(), timeout=120000)
    assert "Failed" in window.train.train_status.text()
    assert window.last_error is not None and "\n" not in window.last_error
    assert window.train.start_button.isEnabled()


# ----------------------------------------------------------------------------------- command


def test_screenshot_writes_png(tmp_path: Path) -> None:
    from digitnet.cli import main

    out = tmp_path / "shot.png"
    assert main(["gui", "--screenshot", str(out), "--tab", "train"]) == 0
    w, h = png_size(out)
    assert w >= 800 and h >= 500 and out.stat().st_size > 10_000


def test_screenshot_with_corrupt_model_fails(tmp_path: Path, capsys) -> None:
    from digitnet.cli import main

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 16)
    assert main(["gui", "--screenshot", str(tmp_path / "x.png"), "--model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.safetensors" in err and err.count("\n") == 1


def test_screenshot_bad_model_is_usage_error(tmp_path: Path, capsys) -> None:
    from digitnet.cli import main

    assert (
        main(
            [
                "gui",
                "--screenshot",
                str(tmp_path / "x.png"),
                "--model",
                str(tmp_path / "missing.safetensors"),
            ]
        )
        == 2
    )
    assert "missing.safetensors" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def _finder(missing: set[str]):
    return lambda name: None if name in missing else f"lib{name}.so"


def test_missing_xcb_libraries_are_named_in_one_line() -> None:
    from digitnet.commands.gui import MissingSystemLibraries, check_system_libraries

    x11 = {"DISPLAY": ":0"}
    with pytest.raises(MissingSystemLibraries) as exc:
        check_system_libraries(x11, _finder({"xcb-cursor", "xcb-icccm", "xcb-keysyms"}))
    msg = str(exc.value)
    assert "\n" not in msg and exc.value.exit_code == 2
    assert msg.endswith("apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1")
    check_system_libraries(x11, _finder(set()))  # all there: nothing to say
    gone = _finder({"xcb-cursor"})
    # Qt will not load xcb here, so a missing xcb library does not matter:
    check_system_libraries({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, gone)
    check_system_libraries({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, gone)
    check_system_libraries({}, gone)
    check_system_libraries(x11, gone, offscreen=True)
    with pytest.raises(MissingSystemLibraries):
        check_system_libraries({"QT_QPA_PLATFORM": "xcb"}, gone)  # asked for by name


def test_gui_command_stops_before_qt_when_xcb_libraries_are_missing(monkeypatch, capsys) -> None:
    import ctypes.util

    from digitnet.cli import main

    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes.util, "find_library", _finder({"xcb-cursor"}))
    monkeypatch.setitem(sys.modules, "digitnet.gui.app", None)  # Qt must not be reached
    assert main(["gui"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "libxcb-cursor0" in err and "apt-get install" in err
