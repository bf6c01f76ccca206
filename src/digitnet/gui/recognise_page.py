"""The Recognise page: the model picker, the drawing canvas, the reading, images and folders.

Drawings and single images are read on the main thread (one small network on a handful of
28x28 images takes milliseconds); folders are read by a ``FolderWorker``. The page reaches the
library only through ``backend``; problems go out as one line through ``errorRaised``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from . import backend
from .backend import UsageError
from .canvas import DrawingCanvas
from .common import guarded, setting_int
from .corrections_panel import CorrectionsPanel
from .images_panel import ImagesPanel
from .model_bar import ModelBar
from .widgets import NetworkInputView, ProbabilityBars

__all__ = ["DEBOUNCE_MS", "RecognisePage"]

# The live prediction waits this long after the last pen movement: long enough that a stroke in
# progress is not read dozens of times, short enough to feel immediate (~150 ms).
DEBOUNCE_MS = 150
NO_READING = "\u2013"  # an en dash in the big result label: nothing read


class RecognisePage(QWidget):
    """Draw or load digits and read them with the active model."""

    errorRaised = Signal(str)  # one line for the user
    statusMessage = Signal(str)
    modelChanged = Signal(str)  # the active model's label
    readingShown = Signal(str)  # the text just shown in the prediction panel ("" for none)
    activated = Signal()  # the page wants to be the visible one

    def __init__(
        self, settings: QSettings, corrections_dir: Path, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.last_reading: backend.Reading | None = None
        self.source: Path | None = None  # the image file shown; None: the drawing
        self._live = QTimer(self)
        self._live.setSingleShot(True)
        self._live.setInterval(DEBOUNCE_MS)
        self._live.timeout.connect(self.predict_drawing)

        outer = QVBoxLayout(self)
        self.models = ModelBar(settings)
        self.models.errorRaised.connect(self.errorRaised)
        self.models.statusMessage.connect(self.statusMessage)
        self.models.modelChanged.connect(self._on_model_changed)
        outer.addWidget(self.models)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        outer.addWidget(split, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self._build_draw(), 0)
        self.corrections = CorrectionsPanel(corrections_dir, self._model_for_adapting)
        self.corrections.errorRaised.connect(self.errorRaised)
        self.corrections.statusMessage.connect(self.statusMessage)
        self.corrections.modelReady.connect(self._use_adapted)
        ll.addWidget(self.corrections, 0)
        ll.addStretch(1)
        split.addWidget(left)
        split.addWidget(self._build_prediction())
        self.images = ImagesPanel(self.models, settings)
        self.images.errorRaised.connect(self.errorRaised)
        self.images.statusMessage.connect(self.statusMessage)
        self.images.imageRead.connect(self._on_image_read)
        split.addWidget(self.images)
        for i, f in enumerate((0, 0, 1)):
            split.setStretchFactor(i, f)
        self.pen_slider.setValue(setting_int(settings, "canvas/pen_width", self.canvas.pen_width()))

    # --------------------------------------------------------------------------- building

    def _build_draw(self) -> QGroupBox:
        box = QGroupBox("Draw")
        dl = QVBoxLayout(box)
        self.canvas = DrawingCanvas()
        self.canvas.changed.connect(self._on_canvas_changed)
        dl.addWidget(self.canvas, 0, Qt.AlignmentFlag.AlignHCenter)
        pen_row = QHBoxLayout()
        pen_row.addWidget(QLabel("Pen width"))
        self.pen_slider = QSlider(Qt.Orientation.Horizontal)
        self.pen_slider.setRange(4, 60)
        self.pen_slider.setValue(self.canvas.pen_width())
        self.pen_slider.valueChanged.connect(self._on_pen_width)
        pen_row.addWidget(self.pen_slider, 1)
        self.pen_value = QLabel(f"{self.canvas.pen_width()} px")
        self.pen_value.setMinimumWidth(self.pen_value.fontMetrics().horizontalAdvance("60 px"))
        pen_row.addWidget(self.pen_value)
        dl.addLayout(pen_row)
        tools = QHBoxLayout()
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Undo the last stroke (Ctrl+Z)")
        self.undo_button.clicked.connect(self.canvas.undo)
        self.undo_button.setEnabled(self.canvas.can_undo())
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Clear the drawing (Delete or Ctrl+L)")
        self.clear_button.clicked.connect(self.canvas.clear)
        self.save_drawing_button = QPushButton("Save…")
        self.save_drawing_button.setToolTip("Save the drawing as PNG (Ctrl+S)")
        self.save_drawing_button.clicked.connect(self.save_drawing_dialog)
        for b in (self.undo_button, self.clear_button, self.save_drawing_button):
            tools.addWidget(b)
        dl.addLayout(tools)
        return box

    def _build_prediction(self) -> QGroupBox:
        box = QGroupBox("Prediction")
        pl = QVBoxLayout(box)
        self.source_label = QLabel("Drawing")
        self.source_label.setStyleSheet("color: palette(mid);")
        pl.addWidget(self.source_label)
        self.result_label = QLabel(NO_READING)
        big = QFont(self.result_label.font())
        big.setPointSizeF(big.pointSizeF() * 3.2)
        big.setBold(True)
        self.result_label.setFont(big)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        pl.addWidget(self.result_label)
        self.confidence_label = QLabel("Draw a digit or a number")
        pl.addWidget(self.confidence_label)
        pl.addWidget(QLabel("What the network saw (28x28):"))
        self.input_view = NetworkInputView()
        self.input_view.selected.connect(self._on_digit_selected)
        pl.addWidget(self.input_view)
        self.bars = ProbabilityBars()
        pl.addWidget(self.bars, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Wrong? It's"))
        self.correct_edit = QLineEdit()
        self.correct_edit.setPlaceholderText("digits")
        self.correct_edit.setMaximumWidth(90)
        self.correct_edit.setToolTip(
            "Type what the drawing or image really shows and press "
            "Enter: it is kept for adapting the model to you"
        )
        self.correct_edit.returnPressed.connect(self.save_correction)
        row.addWidget(self.correct_edit)
        self.correct_button = QPushButton("Keep correction")
        self.correct_button.clicked.connect(self.save_correction)
        row.addWidget(self.correct_button)
        row.addStretch(1)
        pl.addLayout(row)
        self._set_correctable(False)
        return box

    def show_error(self, message: str) -> None:
        self.errorRaised.emit(message)

    @property
    def predictor(self) -> object:
        return self.models.predictor

    # --------------------------------------------------------------------------- model

    @Slot(str)
    def _on_model_changed(self, label: str) -> None:
        self.modelChanged.emit(label)
        if not self.canvas.is_blank():
            self.predict_drawing()

    @guarded
    def _use_adapted(self, checkpoint: str) -> None:
        self.models.set_model(checkpoint)

    def _model_for_adapting(self) -> str | None:
        """The checkpoint adaptation starts from (None: the bundled model)."""
        return self.models.model_path

    # --------------------------------------------------------------------------- drawing

    @Slot(int)
    def _on_pen_width(self, width: int) -> None:
        self.canvas.set_pen_width(width)
        self.pen_value.setText(f"{width} px")
        self.settings.setValue("canvas/pen_width", width)

    @Slot()
    def _on_canvas_changed(self) -> None:
        self.undo_button.setEnabled(self.canvas.can_undo())
        if self.canvas.is_blank():
            self._live.stop()
            self.show_reading(None, "Drawing")  # nothing drawn: no prediction, not a guess
        else:
            self._live.start()  # (re)start: reads once the pen pauses for DEBOUNCE_MS

    @Slot()
    @guarded
    def predict_drawing(self) -> None:
        """Read the canvas now (the debounce timer calls this)."""
        self._live.stop()
        self.source = None
        if self.canvas.is_blank():
            self.show_reading(None, "Drawing")
            return
        if self.models.predictor is None:
            self.statusMessage.emit("No model loaded: open a checkpoint (Ctrl+M)")
            return
        reading = backend.read_ink(self.models.predictor, self.canvas.ink_array())
        self.show_reading(reading, "Drawing")

    @Slot()
    @guarded
    def save_drawing_dialog(self) -> None:
        if self.canvas.is_blank():
            self.statusMessage.emit("Nothing to save: the canvas is empty")
            return
        start = str(Path(self.images.last_folder()) / "drawing.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save drawing", start, "PNG image (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.canvas.save_png(path)
            self.images.set_last_folder(path)
            self.statusMessage.emit(f"Saved {path}")

    # --------------------------------------------------------------------------- readings

    @Slot(object, object)
    def _on_image_read(self, reading: backend.Reading, path: Path) -> None:
        self.activated.emit()
        self.show_reading(reading, path.name)
        self.source = path

    def show_reading(self, reading: backend.Reading | None, source: str) -> None:
        """Fill the prediction panel (None or an empty reading: no prediction at all)."""
        self.last_reading = reading
        self.source_label.setText(source)
        self._set_correctable(reading is not None)
        if reading is None or reading.empty:
            self.result_label.setText(NO_READING)
            self.confidence_label.setText(
                "Draw a digit or a number"
                if reading is None
                else (reading.message or "no digit found").capitalize()
            )
            self.input_view.set_images([])
            self.bars.set_probabilities(None)
            self.readingShown.emit("")
            return
        self.result_label.setText(reading.text)
        n = len(reading.text)
        what = "1 digit" if n == 1 else f"{n} digits"
        self.confidence_label.setText(f"{what} · confidence {100 * reading.confidence:.1f} %")
        self.input_view.set_images(list(reading.inputs), list(reading.text))
        self.bars.set_probabilities(reading.probs[0])
        self.readingShown.emit(reading.text)

    @Slot(int)
    def _on_digit_selected(self, i: int) -> None:
        r = self.last_reading
        if r is not None and 0 <= i < len(r.probs):
            self.bars.set_probabilities(r.probs[i])

    # --------------------------------------------------------------------------- corrections

    def _set_correctable(self, on: bool) -> None:
        self.correct_edit.setEnabled(on)
        self.correct_button.setEnabled(on)

    @Slot()
    @guarded
    def save_correction(self) -> None:
        """Keep the drawing (or the image shown) labelled with what the user typed."""
        text = self.correct_edit.text()
        if self.last_reading is None:
            raise UsageError("nothing to correct: draw or open an image first")
        if self.source is None:
            if self.canvas.is_blank():
                raise UsageError("nothing to correct: the canvas is empty")
            self.corrections.add_png(text, self.canvas.png_bytes())
        else:
            self.corrections.add_file(text, self.source)
        self.correct_edit.clear()

    def shutdown(self) -> None:
        self._live.stop()
        self.images.shutdown()
        self.corrections.shutdown()
