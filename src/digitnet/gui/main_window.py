"""The main window: a Recognise tab (draw or load digits) and a Train tab.

Threading rule: only this module's main-thread code touches widgets. Training and folder reading
run in workers (``workers.py``) whose signals carry plain data back here; drawing and single
images are read on the main thread because one small network on a handful of 28x28 images takes
milliseconds. Every user-caused problem (a ``DigitnetError``) ends up as one line in the status
bar or a dialog, never as a crash.
"""

from __future__ import annotations

import functools
import html
import math
import os
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QKeySequence,
    QValidator,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..errors import CheckpointError, DigitnetError, ImageError, UsageError
from . import backend
from .canvas import DrawingCanvas
from .widgets import Box, ImageView, LineChart, NetworkInputView, ProbabilityBars, gray_to_qimage
from .workers import FolderWorker, TrainWorker, WorkerHandle, start_worker

__all__ = ["TABS", "MainWindow"]

TABS = ("recognise", "train")
# The live prediction waits this long after the last pen movement: long enough that a stroke in
# progress is not read dozens of times, short enough to feel immediate (~150 ms, the issue).
DEBOUNCE_MS = 150
MAX_RECENT_MODELS = 8
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in backend.IMAGE_SUFFIXES) + ");;All files (*)"


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f} %"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a UI handler so that no exception escapes into Qt's event loop.

    A ``DigitnetError`` (the user's input) becomes its one line in the status bar and a dialog;
    anything else is a bug: its traceback goes to stderr and the user gets one line, the window
    stays up.
    """

    @functools.wraps(fn)
    def wrapper(self: MainWindow, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except DigitnetError as exc:
            self.show_error(str(exc))
        except Exception as exc:  # noqa: BLE001  (see docstring)
            traceback.print_exc()
            self.show_error(f"unexpected error: {type(exc).__name__}: {exc}")
        return None

    return wrapper


class MainWindow(QMainWindow):
    """The digitnet desktop app. ``settings`` is injectable so tests never touch the user's."""

    # The stop flag's type; tests swap in one that counts the training thread's checks.
    stop_event_type: type[threading.Event] = threading.Event

    modelChanged = Signal(str)  # the active model's label
    trainingFinished = Signal(dict)  # the result, after the window has shown it
    readingShown = Signal(str)  # the text just shown in the prediction panel ("" for none)

    def __init__(self, settings: QSettings | None = None, *, interactive_errors: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        # Tests and --screenshot set this False: errors then go to the status bar only, with no
        # modal dialog waiting for a click that never comes.
        self.interactive_errors = interactive_errors
        self.predictor: Any = None
        self.model_path: str | None = None
        self.model_info: backend.ModelInfo | None = None
        self.last_reading: backend.Reading | None = None
        self.last_error: str | None = None
        self._train: WorkerHandle | None = None
        self._folder: WorkerHandle | None = None
        self._train_result: dict[str, Any] | None = None
        self._last_resumable: str | None = None  # the last cancelled run's last.safetensors
        self._folder_rows: list[dict[str, Any]] = []
        self._live = QTimer(self)
        self._live.setSingleShot(True)
        self._live.setInterval(DEBOUNCE_MS)
        self._live.timeout.connect(self.predict_drawing)

        self.setWindowTitle("digitnet")
        self.setAcceptDrops(True)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_recognise(), "&Recognise")
        self.tabs.addTab(self._build_train(), "&Train")
        self.setCentralWidget(self.tabs)
        self._build_actions()
        self.statusBar().showMessage("Ready")
        self._restore_settings()

    # ==========================================================================================
    # Building the interface
    # ==========================================================================================

    def _build_recognise(self) -> QWidget:
        page = QWidget()
        outer = QVBoxLayout(page)

        # Model picker: the bundled model, recent checkpoints, or any file.
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Model:"))
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_combo.setMinimumContentsLength(28)
        self.model_combo.setToolTip("The model that reads drawings and images")
        self.model_combo.activated.connect(self._on_model_picked)
        bar.addWidget(self.model_combo)
        self.open_model_button = QPushButton("Open checkpoint…")
        self.open_model_button.clicked.connect(self.open_checkpoint_dialog)
        bar.addWidget(self.open_model_button)
        self.model_label = QLabel("no model loaded")
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar.addWidget(self.model_label, 1)
        outer.addLayout(bar)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        outer.addWidget(split, 1)

        # Left: the canvas and its tools.
        draw_box = QGroupBox("Draw")
        dl = QVBoxLayout(draw_box)
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
        self.undo_button.clicked.connect(self.canvas.undo)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.canvas.clear)
        self.save_drawing_button = QPushButton("Save…")
        self.save_drawing_button.clicked.connect(self.save_drawing_dialog)
        for b in (self.undo_button, self.clear_button, self.save_drawing_button):
            tools.addWidget(b)
        dl.addLayout(tools)
        dl.addStretch(1)
        split.addWidget(draw_box)

        # Middle: what the network read.
        pred_box = QGroupBox("Prediction")
        pl = QVBoxLayout(pred_box)
        self.source_label = QLabel("Drawing")
        self.source_label.setStyleSheet("color: palette(mid);")
        pl.addWidget(self.source_label)
        self.result_label = QLabel("–")
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
        split.addWidget(pred_box)

        # Right: loaded image(s) and folder results.
        img_box = QGroupBox("Images")
        il = QVBoxLayout(img_box)
        row = QHBoxLayout()
        self.open_image_button = QPushButton("Open image(s)…")
        self.open_image_button.clicked.connect(self.open_images_dialog)
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.clicked.connect(self.open_folder_dialog)
        row.addWidget(self.open_image_button)
        row.addWidget(self.open_folder_button)
        row.addStretch(1)
        il.addLayout(row)
        vsplit = QSplitter(Qt.Orientation.Vertical)
        vsplit.setChildrenCollapsible(False)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        self.image_view = ImageView()
        tl.addWidget(self.image_view, 1)
        self.image_result = QLabel("")
        self.image_result.setTextFormat(Qt.TextFormat.RichText)
        self.image_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        tl.addWidget(self.image_result)
        vsplit.addWidget(top)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["File", "Read", "Confidence", "Target", "Result"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, 5):
            self.table.horizontalHeader().setSectionResizeMode(
                c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.cellDoubleClicked.connect(self._on_table_double_click)
        self.table.setToolTip("Double-click a row to show that image")
        bl.addWidget(self.table, 1)
        frow = QHBoxLayout()
        self.folder_progress = QProgressBar()
        self.folder_progress.setVisible(False)
        frow.addWidget(self.folder_progress, 1)
        self.folder_cancel = QPushButton("Cancel")
        self.folder_cancel.setVisible(False)
        self.folder_cancel.clicked.connect(self.cancel_folder)
        frow.addWidget(self.folder_cancel)
        bl.addLayout(frow)
        self.accuracy_label = QLabel("")
        bl.addWidget(self.accuracy_label)
        vsplit.addWidget(bottom)
        vsplit.setStretchFactor(0, 3)
        vsplit.setStretchFactor(1, 2)
        il.addWidget(vsplit, 1)
        split.addWidget(img_box)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 0)
        split.setStretchFactor(2, 1)
        return page

    def _build_train(self) -> QWidget:
        page = QWidget()
        outer = QHBoxLayout(page)

        left = QVBoxLayout()
        form_box = QGroupBox("Settings")
        form = QFormLayout(form_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.recipe_combo = QComboBox()
        self.model_pick = QComboBox()
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 65536)
        self.optimizer_combo = QComboBox()
        self.optimizer_combo.addItems(["sgd", "adam", "adamw", "adadelta"])
        self.lr_spin = LearningRateSpin()
        self.augment_check = QCheckBox("random affine + elastic distortions")
        self.device_combo = QComboBox()
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(0, 60000)
        self.limit_spin.setSingleStep(1000)
        self.limit_spin.setSpecialValueText("all 60,000")
        self.limit_spin.setToolTip("Train on the first N training images (0: all of them)")
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("automatic")
        self.data_edit.setToolTip("The MNIST folder; empty: $DIGITNET_DATA, else the user cache "
                                  "(digitnet data download fills it)")
        data_row = self._with_browse(self.data_edit, "MNIST folder")
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText(_short_path(self._default_runs_dir()))
        self.out_edit.setToolTip("Each training run gets its own folder in here")
        out_row = self._with_browse(self.out_edit, "Folder for training runs")
        form.addRow("Recipe", self.recipe_combo)
        form.addRow("Model", self.model_pick)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Optimizer", self.optimizer_combo)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Augmentation", self.augment_check)
        form.addRow("Device", self.device_combo)
        form.addRow("Training images", self.limit_spin)
        form.addRow("Data folder", data_row)
        form.addRow("Save runs in", out_row)
        left.addWidget(form_box)
        self._settings_widgets = [self.recipe_combo, self.model_pick, self.epochs_spin,
                                  self.batch_spin, self.optimizer_combo, self.lr_spin,
                                  self.augment_check, self.device_combo, self.limit_spin,
                                  data_row, out_row]

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setToolTip("Start training (Ctrl+T)")
        self.start_button.clicked.connect(self.start_training)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_training)
        self.resume_button = QPushButton("Resume…")
        self.resume_button.setToolTip("Continue a cancelled or interrupted run from its "
                                      "resumable checkpoint (last.safetensors)")
        self.resume_button.clicked.connect(self.resume_training_dialog)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.resume_button)
        left.addLayout(buttons)
        self.train_progress = QProgressBar()
        self.train_progress.setFormat("%p %")
        left.addWidget(self.train_progress)
        self.train_status = QLabel("Not started")
        self.train_status.setWordWrap(True)
        left.addWidget(self.train_status)

        res_box = QGroupBox("Result")
        rl = QGridLayout(res_box)
        rl.addWidget(QLabel(""), 0, 0)
        for c, h in enumerate(("Loss", "Accuracy"), start=1):
            lab = QLabel(f"<b>{h}</b>")
            lab.setAlignment(Qt.AlignmentFlag.AlignRight)
            rl.addWidget(lab, 0, c)
        self.result_cells: dict[str, QLabel] = {}
        for r, split in enumerate(("train", "test"), start=1):
            rl.addWidget(QLabel(f"<b>{split.capitalize()}</b>"), r, 0)
            for c, what in enumerate(("loss", "accuracy"), start=1):
                lab = QLabel("-")
                lab.setAlignment(Qt.AlignmentFlag.AlignRight)
                lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                self.result_cells[f"{split}_{what}"] = lab
                rl.addWidget(lab, r, c)
        self.checkpoint_label = QLabel("")
        self.checkpoint_label.setWordWrap(True)
        self.checkpoint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rl.addWidget(self.checkpoint_label, 3, 0, 1, 3)
        brow = QHBoxLayout()
        self.use_model_button = QPushButton("Use this model")
        self.use_model_button.setToolTip("Read drawings and images with the model just trained")
        self.use_model_button.setEnabled(False)
        self.use_model_button.clicked.connect(self.use_trained_model)
        self.show_run_button = QPushButton("Show folder")
        self.show_run_button.setEnabled(False)
        self.show_run_button.clicked.connect(self._show_run_folder)
        brow.addWidget(self.use_model_button)
        brow.addWidget(self.show_run_button)
        brow.addStretch(1)
        rl.addLayout(brow, 4, 0, 1, 3)
        left.addWidget(res_box)
        left.addStretch(1)

        lw = QWidget()
        lw.setLayout(left)
        lw.setMaximumWidth(460)
        outer.addWidget(lw)

        charts = QVBoxLayout()
        self.loss_chart = LineChart("Loss per epoch")
        self.acc_chart = LineChart("Accuracy per epoch", percent=True)
        charts.addWidget(self.loss_chart, 1)
        charts.addWidget(self.acc_chart, 1)
        outer.addLayout(charts, 1)

        self._fill_train_choices()
        self.recipe_combo.currentTextChanged.connect(self._apply_recipe)
        return page

    def _with_browse(self, edit: QLineEdit, title: str) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(edit, 1)
        b = QPushButton("…")
        b.setFixedWidth(b.fontMetrics().horizontalAdvance("…") + 24)
        b.setToolTip(f"Choose the {title.lower()}")

        def browse() -> None:
            d = QFileDialog.getExistingDirectory(self, title, edit.text() or str(Path.home()))
            if d:
                edit.setText(d)

        b.clicked.connect(browse)
        h.addWidget(b)
        return w

    def _build_actions(self) -> None:
        def act(text: str, keys: Sequence[QKeySequence | str], slot: Callable[[], Any],
                tip: str = "") -> QAction:
            a = QAction(text, self)
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            if tip:
                a.setStatusTip(tip)
            a.triggered.connect(slot)
            return a

        self.act_open = act("&Open image(s)…", [QKeySequence.StandardKey.Open],
                            self.open_images_dialog, "Read the digits in image files")
        self.act_open_folder = act("Open &folder…", ["Ctrl+Shift+O"], self.open_folder_dialog,
                                   "Read every image in a folder")
        self.act_open_model = act("Open &checkpoint…", ["Ctrl+M"], self.open_checkpoint_dialog,
                                  "Use a trained model")
        self.act_save = act("&Save drawing…", [QKeySequence.StandardKey.Save],
                            self.save_drawing_dialog, "Save the drawing as PNG")
        self.act_quit = act("&Quit", [QKeySequence.StandardKey.Quit], self.close)
        self.act_undo = act("&Undo stroke", [QKeySequence.StandardKey.Undo], self.canvas.undo)
        self.act_clear = act("&Clear drawing", ["Delete", "Ctrl+L"], self.canvas.clear)
        self.act_train = act("&Start training", ["Ctrl+T"], self.start_training)
        self.act_cancel = act("&Cancel training", [], self.cancel_training)
        self.act_cancel.setEnabled(False)
        mb = self.menuBar()
        m = mb.addMenu("&File")
        for a in (self.act_open, self.act_open_folder, self.act_open_model, self.act_save):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&Edit")
        m.addAction(self.act_undo)
        m.addAction(self.act_clear)
        m = mb.addMenu("&Training")
        m.addAction(self.act_train)
        m.addAction(self.act_cancel)
        for a in (self.act_open, self.act_open_folder, self.act_open_model, self.act_save,
                  self.act_quit, self.act_undo, self.act_clear, self.act_train):
            self.addAction(a)  # shortcuts work while the menu bar is hidden (some desktops)
        self.undo_button.setToolTip("Undo the last stroke (Ctrl+Z)")
        self.clear_button.setToolTip("Clear the drawing (Delete or Ctrl+L)")
        self.save_drawing_button.setToolTip("Save the drawing as PNG (Ctrl+S)")
        self.open_image_button.setToolTip("Open image files (Ctrl+O), or drop them on the window")

    # ==========================================================================================
    # Settings
    # ==========================================================================================

    def _default_runs_dir(self) -> Path:
        # ~/.local/share/digitnet/runs on Linux (the platform's equivalent elsewhere): the GUI
        # may be started from any folder, so runs must not land in the current one.
        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
        return (Path(base) if base else Path.home() / ".local" / "share") / "digitnet" / "runs"

    def _restore_settings(self) -> None:
        s = self.settings
        width = s.value("canvas/pen_width", self.canvas.pen_width(), type=int)
        self.pen_slider.setValue(int(width))
        geo = s.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1180, 720)
        for key, widget in (("train/data_dir", self.data_edit), ("train/out_dir", self.out_edit)):
            v = s.value(key, "", type=str)
            if v:
                widget.setText(v)
        self._refresh_model_combo()

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("canvas/pen_width", self.canvas.pen_width())
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("train/data_dir", self.data_edit.text().strip())
        s.setValue("train/out_dir", self.out_edit.text().strip())
        s.setValue("model/last", self.model_path or "")
        s.sync()

    def _recent_models(self) -> list[str]:
        v = self.settings.value("model/recent", [], type=list) or []
        return [str(x) for x in v if x]

    def _remember_model(self, path: str | None) -> None:
        if path is not None:
            recent = [path] + [p for p in self._recent_models() if p != path]
            self.settings.setValue("model/recent", recent[:MAX_RECENT_MODELS])
        self.settings.setValue("model/last", path or "")

    def _refresh_model_combo(self) -> None:
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItem("Bundled model", "")
        for p in self._recent_models():
            self.model_combo.addItem(Path(p).name, p)
            self.model_combo.setItemData(self.model_combo.count() - 1, p,
                                         Qt.ItemDataRole.ToolTipRole)
        i = self.model_combo.findData(self.model_path or "")
        self.model_combo.setCurrentIndex(max(0, i))
        self.model_combo.blockSignals(False)

    def last_folder(self) -> str:
        return self.settings.value("recognise/last_folder", str(Path.home()), type=str)

    def _set_last_folder(self, path: str | Path) -> None:
        p = Path(path)
        self.settings.setValue("recognise/last_folder", str(p if p.is_dir() else p.parent))

    # ==========================================================================================
    # Errors and status
    # ==========================================================================================

    def show_error(self, message: str) -> None:
        self.last_error = message
        self.statusBar().showMessage(f"Error: {message}", 15000)
        if self.interactive_errors:
            QMessageBox.warning(self, "digitnet", message)

    def show_status(self, message: str, ms: int = 6000) -> None:
        self.statusBar().showMessage(message, ms)

    # ==========================================================================================
    # Model
    # ==========================================================================================

    @guarded
    def load_initial_model(self, path: str | None = None) -> None:
        """Load ``path``, else the last model used, else the bundled one (called at start-up)."""
        if path is None:
            last = self.settings.value("model/last", "", type=str)
            if last and Path(last).exists():
                path = last
        if path is None and not backend.bundled_model_path().exists():
            self.model_label.setText("no bundled model: open a checkpoint")
            self.show_status("No bundled model installed: open a checkpoint (Ctrl+M)", 0)
            return
        self.set_model(path)

    def set_model(self, path: str | Path | None) -> None:
        """Make the checkpoint at ``path`` (None: the bundled model) the active model.

        Raises ``DigitnetError`` (the caller shows it); the previous model stays active then.
        """
        p = None if path is None or str(path) == "" else str(Path(path).resolve())
        predictor = backend.load_predictor(p)
        self.predictor = predictor
        self.model_path = p
        self.model_info = backend.describe_model(predictor, p)
        self._remember_model(p)
        self._refresh_model_combo()
        self.model_label.setText(self.model_info.label())
        self.model_label.setToolTip(p or str(backend.bundled_model_path()))
        self.show_status(f"Model: {self.model_info.label()}")
        self.modelChanged.emit(self.model_info.label())
        if not self.canvas.is_blank():
            self.predict_drawing()

    @Slot(int)
    @guarded
    def _on_model_picked(self, index: int) -> None:
        path = self.model_combo.itemData(index) or None
        if path is not None and not Path(path).exists():
            self.settings.setValue("model/recent", [p for p in self._recent_models() if p != path])
            self._refresh_model_combo()
            raise CheckpointError(f"{path}: checkpoint no longer exists")
        try:
            self.set_model(path)
        finally:
            self._refresh_model_combo()

    @Slot()
    @guarded
    def open_checkpoint_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open checkpoint", self.settings.value("model/dir", str(Path.home()), type=str),
            "Checkpoints (*.safetensors *.pt *.pth);;All files (*)")
        if path:
            self.settings.setValue("model/dir", str(Path(path).parent))
            self.set_model(path)

    # ==========================================================================================
    # Drawing
    # ==========================================================================================

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
        if self.canvas.is_blank():
            self.show_reading(None, "Drawing")
            return
        if self.predictor is None:
            self.show_status("No model loaded: open a checkpoint (Ctrl+M)")
            return
        reading = backend.read_ink(self.predictor, self.canvas.ink_array())
        self.show_reading(reading, "Drawing")

    @Slot()
    @guarded
    def save_drawing_dialog(self) -> None:
        if self.canvas.is_blank():
            self.show_status("Nothing to save: the canvas is empty")
            return
        start = str(Path(self.last_folder()) / "drawing.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save drawing", start, "PNG image (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.canvas.save_png(path)
            self._set_last_folder(path)
            self.show_status(f"Saved {path}")

    # ==========================================================================================
    # Showing a reading
    # ==========================================================================================

    def show_reading(self, reading: backend.Reading | None, source: str) -> None:
        """Fill the prediction panel (None or an empty reading: no prediction at all)."""
        self.last_reading = reading
        self.source_label.setText(source)
        if reading is None or reading.empty:
            self.result_label.setText("–")
            self.confidence_label.setText(
                "Draw a digit or a number" if reading is None
                else (reading.message or "no digit found").capitalize())
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

    # ==========================================================================================
    # Images and folders
    # ==========================================================================================

    @Slot()
    @guarded
    def open_images_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open image(s)", self.last_folder(),
                                                IMAGE_FILTER)
        if paths:
            self.open_paths(paths)

    @Slot()
    @guarded
    def open_folder_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Open folder of images", self.last_folder())
        if d:
            self.open_paths([d])

    @guarded
    def open_paths(self, paths: Sequence[str | Path]) -> None:
        """One image: show it; several images or a folder: the results table (in a worker).

        Problems (a broken file, an empty folder) are reported in the window, not raised.
        """
        ps = [Path(p) for p in paths]
        if not ps:
            return
        self._set_last_folder(ps[0])
        if len(ps) == 1 and ps[0].is_file():
            self.load_image(ps[0])
            return
        files: list[Path] = []
        for p in ps:
            if p.is_dir():
                files.extend(backend.list_images(p))
            elif p.is_file():
                files.append(p)
            else:
                raise ImageError(f"{p}: no such file or folder")
        if not files:
            raise ImageError(f"{ps[0]}: no images found "
                             f"({', '.join(backend.IMAGE_SUFFIXES[:5])}, …)")
        self.read_files(files)

    def load_image(self, path: str | Path) -> None:
        """Read one image file and show it with its boxes, text, confidence and target."""
        if self.predictor is None:
            raise UsageError("no model loaded: open a checkpoint first (Ctrl+M)")
        p = Path(path)
        self.tabs.setCurrentIndex(0)
        reading = backend.read_image_file(self.predictor, p)
        target = backend.target_from_name(p)
        qimg = None if reading.image is None else gray_to_qimage(reading.image)
        boxes = []
        for i, (x0, y0, x1, y1) in enumerate(reading.boxes):
            ok = None
            if target is not None and len(target) == len(reading.text):
                ok = target[i] == reading.text[i]
            boxes.append(Box(x0, y0, x1, y1, reading.text[i], ok))
        self.image_view.set_image(qimg, boxes)
        self.show_reading(reading, p.name)
        self.image_result.setText(self._result_html(p.name, reading, target))
        self.show_status(f"{p.name}: read {reading.text or 'nothing'}")

    @staticmethod
    def _result_html(name: str, reading: backend.Reading, target: str | None) -> str:
        name = html.escape(name)
        if reading.empty:
            text = f"<b>{name}</b>: {html.escape(reading.message or 'no digit found')}"
        else:
            text = (f"<b>{name}</b>: read <b>{reading.text}</b>, "
                    f"confidence {100 * reading.confidence:.1f} %")
        if target is not None:
            if reading.text == target:
                text += f" · target {target} <span style='color:#1e8c3c'><b>✔ right</b></span>"
            else:
                text += f" · target {target} <span style='color:#c82828'><b>✘ wrong</b></span>"
        return text

    def read_files(self, files: Sequence[Path]) -> None:
        if self._folder is not None:
            raise UsageError("still reading the previous images: wait or cancel first")
        self.tabs.setCurrentIndex(0)
        self.table.setRowCount(0)
        self._folder_rows = []
        self.accuracy_label.setText(f"Reading {len(files)} images…")
        self.folder_progress.setRange(0, len(files))
        self.folder_progress.setValue(0)
        self.folder_progress.setVisible(True)
        self.folder_cancel.setVisible(True)
        self.folder_cancel.setEnabled(True)
        w = FolderWorker(files, self.model_path)
        w.row.connect(self._on_folder_row)
        w.progress.connect(self._on_folder_progress)
        w.finished.connect(self._on_folder_finished)
        w.failed.connect(self._on_folder_failed)
        w.done.connect(self._on_folder_done)
        self._folder = start_worker(w, self)

    @Slot()
    def cancel_folder(self) -> None:
        if self._folder is not None:
            self._folder.stop.set()
            self.folder_cancel.setEnabled(False)

    @Slot(dict)
    def _on_folder_row(self, rec: dict) -> None:
        self._folder_rows.append(rec)
        r = self.table.rowCount()
        self.table.insertRow(r)
        name = QTableWidgetItem(Path(rec["path"]).name)
        name.setToolTip(rec["path"])
        name.setData(Qt.ItemDataRole.UserRole, rec["path"])
        read = QTableWidgetItem(rec["text"] if rec["error"] is None else "error")
        if rec["error"]:
            read.setToolTip(rec["error"])
        conf = QTableWidgetItem("" if rec["error"] else f"{100 * rec['confidence']:.1f} %")
        conf.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        tgt = QTableWidgetItem(rec["target"] or "")
        mark = {True: "✔ right", False: "✘ wrong", None: ""}[rec["correct"]]
        res = QTableWidgetItem(mark)
        if rec["correct"] is not None:
            res.setForeground(Qt.GlobalColor.darkGreen if rec["correct"] else Qt.GlobalColor.red)
        for c, item in enumerate((name, read, conf, tgt, res)):
            self.table.setItem(r, c, item)

    @Slot(int, int)
    def _on_folder_progress(self, done: int, total: int) -> None:
        self.folder_progress.setMaximum(max(total, 1))
        self.folder_progress.setValue(done)

    @Slot(dict)
    def _on_folder_finished(self, s: dict) -> None:
        self.folder_summary = s
        parts = [f"{s['read']} of {s['files']} images read"]
        if s["with_target"]:
            acc = s["right"] / s["with_target"]
            parts.insert(0, f"<b>Accuracy {100 * acc:.1f} %</b> ({s['right']}/{s['with_target']} "
                            "files whose name gives the target)")
        else:
            parts.append("no file name gives a target (name files like 7_anna.png)")
        if s["cancelled"]:
            parts.append("cancelled")
        self.accuracy_label.setText(" · ".join(parts))
        self.show_status("Finished reading images" if not s["cancelled"] else "Cancelled")

    @Slot(str)
    def _on_folder_failed(self, message: str) -> None:
        self.accuracy_label.setText(f"Stopped: {message}")
        self.show_error(message)

    @Slot()
    def _on_folder_done(self) -> None:
        h, self._folder = self._folder, None
        if h is not None:
            h.thread.wait()
            h.thread.deleteLater()
        self.folder_progress.setVisible(False)
        self.folder_cancel.setVisible(False)

    @Slot(int, int)
    @guarded
    def _on_table_double_click(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.load_image(item.data(Qt.ItemDataRole.UserRole))

    def dragEnterEvent(self, ev: QDragEnterEvent) -> None:
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()
        else:
            ev.ignore()

    @guarded
    def dropEvent(self, ev: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        ev.acceptProposedAction()
        if len(paths) == 1 and paths[0].lower().endswith((".safetensors", ".pt", ".pth")):
            self.set_model(paths[0])  # a checkpoint dropped on the window: use it
        else:
            self.open_paths(paths)

    # ==========================================================================================
    # Training
    # ==========================================================================================

    def _fill_train_choices(self) -> None:
        from ..engine import list_recipes
        from ..models import list_models

        self.model_pick.addItems(list_models())
        for name in list_models():
            i = self.model_pick.findText(name)
            self.model_pick.setItemData(i, _model_summary(name), Qt.ItemDataRole.ToolTipRole)
        self.recipe_combo.addItems(list_recipes())
        self.device_combo.addItems(_devices())
        self._apply_recipe(self.recipe_combo.currentText())

    @Slot(str)
    def _apply_recipe(self, recipe: str) -> None:
        """Fill the form with the recipe's settings; the user can change any of them after."""
        from ..engine import resolve_config

        if not recipe:
            return
        cfg = resolve_config(recipe=recipe)
        self.model_pick.setCurrentText(cfg.model)
        self.epochs_spin.setValue(cfg.epochs)
        self.batch_spin.setValue(cfg.batch_size)
        self.optimizer_combo.setCurrentText(cfg.optimizer)
        self.lr_spin.setValue(cfg.lr)
        self.augment_check.setChecked(bool(cfg.augment.enabled))

    def train_overrides(self) -> dict[str, Any]:
        """The form as ``resolve_config`` overrides (the recipe supplies everything else)."""
        out_base = Path(self.out_edit.text().strip() or self._default_runs_dir())
        model = self.model_pick.currentText()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        ov: dict[str, Any] = {
            "model": model,
            "epochs": self.epochs_spin.value(),
            "batch_size": self.batch_spin.value(),
            "optimizer": self.optimizer_combo.currentText(),
            "lr": self.lr_spin.value(),
            "augment": self.augment_check.isChecked(),
            "device": self.device_combo.currentText(),
            "limit_train": self.limit_spin.value() or None,
            "data_dir": self.data_edit.text().strip() or None,
            # Each run its own folder: a new run never overwrites the checkpoint of another.
            "out": str(out_base / f"{model}-{self.recipe_combo.currentText()}-{stamp}"),
            # One core fewer than the machine has for torch's CPU threads: the spare one keeps
            # the window (painting, the canvas, progress) responsive while training.
            "threads": max(1, (os.cpu_count() or 2) - 1),
        }
        return ov

    @Slot()
    @guarded
    def start_training(self) -> None:
        """Train with the form's settings in a worker thread (Ctrl+T)."""
        self._launch_training(None)

    @Slot()
    @guarded
    def resume_training_dialog(self) -> None:
        start = self._last_resumable or str(Path(self.out_edit.text().strip()
                                                 or self._default_runs_dir()))
        path, _ = QFileDialog.getOpenFileName(self, "Resume training from", start,
                                              "Resumable checkpoints (last.safetensors);;"
                                              "Checkpoints (*.safetensors)")
        if path:
            self.resume_training(path)

    @guarded
    def resume_training(self, checkpoint: str | Path) -> None:
        """Continue the run whose resumable checkpoint (``last.safetensors``) is given.

        The run's own settings, stored in the checkpoint, are used (fit's rule: a resumed run
        gives the result the uninterrupted run would have); it writes into the same folder.
        """
        p = Path(checkpoint)
        if not p.is_file():
            raise CheckpointError(f"{p}: no such checkpoint")
        self._launch_training(p)

    def _launch_training(self, resume: Path | None) -> None:
        if self._train is not None:
            self.show_status("Training is already running")
            return
        self.tabs.setCurrentIndex(1)
        recipe = self.recipe_combo.currentText()
        overrides = self.train_overrides()
        if resume is not None:
            overrides["out"] = str(resume.parent)
        from ..engine import resolve_config

        resolve_config(recipe=recipe, **overrides)  # bad settings: one line now, not in a thread
        self._train_result = None
        self.loss_chart.clear()
        self.acc_chart.clear()
        for lab in self.result_cells.values():
            lab.setText("-")
        self.checkpoint_label.setText("")
        self.use_model_button.setEnabled(False)
        self.show_run_button.setEnabled(False)
        self.train_progress.setRange(0, 0)  # busy until fit reports its number of steps
        self.train_status.setText("Loading data…" if resume is None
                                  else f"Resuming {resume.parent.name}…")
        self._set_training_ui(True)
        w = TrainWorker(recipe, overrides, self.stop_event_type(),
                        resume=None if resume is None else str(resume))
        w.fitStarted.connect(self._on_fit_started)
        w.progress.connect(self._on_train_progress)
        w.epochEnded.connect(self._on_epoch_ended)
        w.finished.connect(self._on_train_finished)
        w.failed.connect(self._on_train_failed)
        w.done.connect(self._on_train_done)
        self._train = start_worker(w, self)
        self.settings.setValue("train/data_dir", self.data_edit.text().strip())
        self.settings.setValue("train/out_dir", self.out_edit.text().strip())

    def is_training(self) -> bool:
        return self._train is not None

    @Slot()
    def cancel_training(self) -> None:
        """Ask fit to stop after the current batch (it then saves a resumable checkpoint)."""
        if self._train is not None:
            self._train.stop.set()
            self.cancel_button.setEnabled(False)
            self.act_cancel.setEnabled(False)
            self.train_status.setText("Cancelling after this batch…")

    def _set_training_ui(self, running: bool) -> None:
        for w in self._settings_widgets:
            w.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.act_train.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.act_cancel.setEnabled(running)

    @Slot(dict)
    def _on_fit_started(self, info: dict) -> None:
        total = int(info.get("total_steps") or 0)
        start = int(info.get("start_step") or 0)
        self.train_progress.setRange(0, max(total, 1))
        self.train_progress.setValue(start)
        n = info.get("n_train")
        dev = info.get("device", "")
        self.train_status.setText(f"Training on {n:,} images on {dev}…" if isinstance(n, int)
                                  else "Training…")

    @Slot(dict)
    def _on_train_progress(self, s: dict) -> None:
        total = int(s.get("total_steps") or 0)
        done = int(s.get("global_step") or 0)
        if total:
            self.train_progress.setMaximum(total)
        self.train_progress.setValue(done)
        if self._train is not None and self._train.stop.is_set():
            return  # keep "Cancelling…" on screen
        epochs = math.ceil(total / s["steps_per_epoch"]) if s.get("steps_per_epoch") else "?"
        text = (f"Epoch {int(s.get('epoch', 0)) + 1}/{epochs} · batch {s.get('step')}/"
                f"{s.get('steps_per_epoch')} · {_fmt_duration(float(s.get('elapsed') or 0))} "
                f"elapsed · {_fmt_duration(float(s.get('eta_s', math.nan)))} left")
        if s.get("loss") is not None:
            text += f" · loss {float(s['loss']):.4f}"
        self.train_status.setText(text)

    @Slot(dict)
    def _on_epoch_ended(self, m: dict) -> None:
        e = float(m.get("epoch", 0))
        for split in ("train", "val", "test"):
            if m.get(f"{split}_loss") is not None:
                self.loss_chart.add_point(split, e, m[f"{split}_loss"])
            if m.get(f"{split}_accuracy") is not None:
                self.acc_chart.add_point(split, e, m[f"{split}_accuracy"])
        self._show_metrics(m)

    def _show_metrics(self, m: dict) -> None:
        for key, lab in self.result_cells.items():
            v = m.get(key)
            if v is not None:
                lab.setText(_pct(v) if key.endswith("accuracy") else _num(v))

    @Slot(dict)
    def _on_train_finished(self, r: dict) -> None:
        self._train_result = r
        metrics = _final_metrics(r)
        self._show_metrics(metrics)
        ckpt = _result_checkpoint(r)
        interrupted = bool(r.get("interrupted"))
        if interrupted and r.get("last_checkpoint"):
            self._last_resumable = str(r["last_checkpoint"])
        if ckpt:
            what = "Resumable checkpoint" if interrupted else "Checkpoint"
            self.checkpoint_label.setText(f"{what}: {_short_path(ckpt)}")
            self.checkpoint_label.setToolTip(ckpt)
            self.use_model_button.setEnabled(Path(ckpt).exists())
            self.show_run_button.setEnabled(True)
        done = ("Cancelled after the current batch; Resume… continues the run" if interrupted
                else "Finished")
        secs = r.get("train_seconds") or r.get("seconds")
        if isinstance(secs, (int, float)):
            done += f" in {_fmt_duration(secs)}"
        self.train_status.setText(done + ".")
        if not interrupted:
            self.train_progress.setValue(self.train_progress.maximum())
        self.show_status(done)

    @Slot(str)
    def _on_train_failed(self, message: str) -> None:
        self.train_status.setText(f"Failed: {message}")
        self.show_error(message)

    @Slot()
    def _on_train_done(self) -> None:
        h, self._train = self._train, None
        if h is not None:
            h.thread.wait()  # the worker returned; this only joins the finished thread
            h.thread.deleteLater()
        if self.train_progress.maximum() == 0:
            self.train_progress.setRange(0, 1)  # leave the busy animation on failures
        self._set_training_ui(False)
        if self._train_result is not None:
            self.trainingFinished.emit(self._train_result)

    def trained_checkpoint(self) -> str | None:
        return None if self._train_result is None else _result_checkpoint(self._train_result)

    @Slot()
    @guarded
    def use_trained_model(self) -> None:
        ckpt = self.trained_checkpoint()
        if ckpt:
            self.set_model(ckpt)
            self.tabs.setCurrentIndex(0)

    @Slot()
    def _show_run_folder(self) -> None:
        ckpt = self.trained_checkpoint()
        if ckpt:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(ckpt).parent)))

    # ==========================================================================================
    # Closing
    # ==========================================================================================

    def shutdown(self) -> None:
        """Stop the workers and wait for their threads (fit saves a resumable checkpoint)."""
        self._live.stop()
        for h in (self._train, self._folder):
            if h is not None and h.running():
                self.show_status("Stopping: saving a resumable checkpoint…", 0)
                h.shutdown()

    def closeEvent(self, ev: QCloseEvent) -> None:
        self.shutdown()
        self._save_settings()
        super().closeEvent(ev)


class LearningRateSpin(QDoubleSpinBox):
    """A learning-rate box that shows 0.2 and 1e-05 as such, not 0.200000 and 0.000010."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(8)  # the model's precision; the text shows only significant digits
        self.setRange(1e-7, 10.0)
        self.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        t = text.strip()
        try:
            v = float(t)
        except ValueError:
            # Partial input such as "1e-" or "0." while typing.
            ok = t == "" or all(c in "0123456789.eE+-" for c in t)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid, text, pos)
        state = (QValidator.State.Acceptable if self.minimum() <= v <= self.maximum()
                 else QValidator.State.Intermediate)
        return (state, text, pos)


def _short_path(path: str | Path) -> str:
    """``path`` with the home folder written ``~``: shorter, and the part people recognise."""
    p = Path(path)
    try:
        return str(Path("~") / p.relative_to(Path.home()))
    except ValueError:
        return str(p)


def _model_summary(name: str) -> str:
    from ..models import model_summary

    return model_summary(name)


def _devices() -> list[str]:
    import torch

    devs = ["auto", "cpu"]
    if torch.cuda.is_available():
        devs.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devs.append("mps")
    return devs


def _final_metrics(r: dict) -> dict:
    """The last epoch's train/test loss and accuracy from a FitResult dict."""
    out: dict = {}
    for holder in (r.get("history") or [])[-1:] + [r.get("final") or {}, r.get("metrics") or {}, r]:
        if isinstance(holder, dict):
            for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
                if holder.get(k) is not None:
                    out[k] = holder[k]
    return out


def _result_checkpoint(r: dict) -> str | None:
    for k in ("checkpoint", "checkpoint_path", "last_checkpoint", "best_checkpoint"):
        v = r.get(k)
        if v:
            return str(v)
    return None

