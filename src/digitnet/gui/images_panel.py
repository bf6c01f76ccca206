"""The Images panel of the Recognise page: one image with its boxes, or a folder's table.

One image is read on the main thread (milliseconds); several images or a folder go to a
``FolderWorker`` and fill the table row by row, with the accuracy over the files whose name
gives the target (``7_anna.png``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import backend
from .backend import ImageError, UsageError
from .common import guarded, setting_str
from .model_bar import ModelBar
from .widgets import Box, ImageView, gray_to_qimage
from .workers import FolderWorker, WorkerHandle, start_worker

__all__ = ["IMAGE_FILTER", "ImagesPanel"]

IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in backend.IMAGE_SUFFIXES) + ");;All files (*)"


class ImagesPanel(QGroupBox):
    errorRaised = Signal(str)
    statusMessage = Signal(str)
    # (Reading, the image file): an image was read; the page shows it in the prediction panel.
    imageRead = Signal(object, object)

    def __init__(
        self, models: ModelBar, settings: QSettings, parent: QWidget | None = None
    ) -> None:
        super().__init__("Images", parent)
        self.models = models
        self.settings = settings
        self.folder_summary: backend.FolderSummary | None = None
        self._folder: WorkerHandle | None = None
        il = QVBoxLayout(self)
        row = QHBoxLayout()
        self.open_image_button = QPushButton("Open image(s)…")
        self.open_image_button.setToolTip("Open image files (Ctrl+O), or drop them on the window")
        self.open_image_button.clicked.connect(self.open_images_dialog)
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.setToolTip("Read every image in a folder (Ctrl+Shift+O)")
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
        vsplit.addWidget(self._build_table())
        vsplit.setStretchFactor(0, 3)
        vsplit.setStretchFactor(1, 2)
        il.addWidget(vsplit, 1)

    def _build_table(self) -> QWidget:
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["File", "Read", "Confidence", "Target", "Result"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, 5):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
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
        return bottom

    def show_error(self, message: str) -> None:
        self.errorRaised.emit(message)

    def last_folder(self) -> str:
        return setting_str(self.settings, "recognise/last_folder", str(Path.home()))

    def set_last_folder(self, path: str | Path) -> None:
        p = Path(path)
        self.settings.setValue("recognise/last_folder", str(p if p.is_dir() else p.parent))

    def is_reading(self) -> bool:
        return self._folder is not None

    # --------------------------------------------------------------------------- opening

    @Slot()
    @guarded
    def open_images_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open image(s)", self.last_folder(), IMAGE_FILTER
        )
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
        self.set_last_folder(ps[0])
        if len(ps) == 1 and ps[0].is_file():
            self.load_image(ps[0])
            return
        for p in ps:
            if not p.exists():
                raise ImageError(f"{p}: {backend.missing_reason(p)}")
        n = len(backend.list_images(ps))  # ImageError when they hold no image at all
        # The worker reads the paths themselves, as ``digitnet predict PATHS`` does.
        self.read_files(ps, n)

    def load_image(self, path: str | Path) -> None:
        """Read one image file and show it with its boxes, text, confidence and target."""
        if self.models.predictor is None:
            raise UsageError("no model loaded: open a checkpoint first (Ctrl+M)")
        p = Path(path)
        reading = backend.read_image_file(self.models.predictor, p)
        target = backend.target_from_name(p)
        qimg = None if reading.image is None else gray_to_qimage(reading.image)
        boxes = []
        for i, (x0, y0, x1, y1) in enumerate(reading.boxes):
            ok = None
            if target is not None and len(target) == len(reading.text):
                ok = target[i] == reading.text[i]
            boxes.append(Box(x0, y0, x1, y1, reading.text[i], ok))
        self.image_view.set_image(qimg, boxes)
        self.image_result.setText(result_html(p.name, reading, target))
        self.imageRead.emit(reading, p)
        self.statusMessage.emit(f"{p.name}: read {reading.text or 'nothing'}")

    # --------------------------------------------------------------------------- folders

    def read_files(self, paths: Sequence[Path], n: int) -> None:
        """Read the ``n`` images ``paths`` (files, folders) stand for in a worker."""
        if self._folder is not None:
            raise UsageError("still reading the previous images: wait or cancel first")
        self.table.setRowCount(0)
        self.accuracy_label.setText(f"Reading {n} images…")
        self.folder_progress.setRange(0, n)
        self.folder_progress.setValue(0)
        self.folder_progress.setVisible(True)
        self.folder_cancel.setVisible(True)
        self.folder_cancel.setEnabled(True)
        w = FolderWorker(paths, self.models.model_path)
        w.row.connect(self._on_row)
        w.progress.connect(self._on_progress)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.done.connect(self._on_done)
        self._folder = start_worker(w, self)

    @Slot()
    def cancel_folder(self) -> None:
        if self._folder is not None:
            self._folder.stop.set()
            self.folder_cancel.setEnabled(False)

    @Slot(object)
    def _on_row(self, rec: backend.FileResult) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        name = QTableWidgetItem(Path(rec.path).name)
        name.setToolTip(rec.path)
        name.setData(Qt.ItemDataRole.UserRole, rec.path)
        read = QTableWidgetItem(rec.text if rec.error is None else "error")
        if rec.error:
            read.setToolTip(rec.error)
        conf = QTableWidgetItem("" if rec.error else f"{100 * rec.confidence:.1f} %")
        conf.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        tgt = QTableWidgetItem(rec.target or "")
        res = QTableWidgetItem({True: "✔ right", False: "✘ wrong", None: ""}[rec.correct])
        if rec.correct is not None:
            res.setForeground(Qt.GlobalColor.darkGreen if rec.correct else Qt.GlobalColor.red)
        for c, item in enumerate((name, read, conf, tgt, res)):
            self.table.setItem(r, c, item)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.folder_progress.setMaximum(max(total, 1))
        self.folder_progress.setValue(done)

    @Slot(object)
    def _on_finished(self, s: backend.FolderSummary) -> None:
        self.folder_summary = s
        parts = [f"{s.read} of {s.files} images read"]
        if s.with_target:
            acc = s.right / s.with_target
            parts.insert(
                0,
                f"<b>Accuracy {100 * acc:.1f} %</b> ({s.right}/{s.with_target} "
                "files whose name gives the target)",
            )
        else:
            parts.append("no file name gives a target (name files like 7_anna.png)")
        if s.cancelled:
            parts.append("cancelled")
        self.accuracy_label.setText(" · ".join(parts))
        self.statusMessage.emit("Cancelled" if s.cancelled else "Finished reading images")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.accuracy_label.setText(f"Stopped: {message}")
        self.show_error(message)

    @Slot()
    def _on_done(self) -> None:
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

    def shutdown(self) -> None:
        if self._folder is not None and self._folder.running():
            self._folder.shutdown()


def result_html(name: str, reading: backend.Reading, target: str | None) -> str:
    name = html.escape(name)
    if reading.empty:
        text = f"<b>{name}</b>: {html.escape(reading.message or 'no digit found')}"
    else:
        text = (
            f"<b>{name}</b>: read <b>{reading.text}</b>, "
            f"confidence {100 * reading.confidence:.1f} %"
        )
    if target is not None:
        if reading.text == target:
            text += f" · target {target} <span style='color:#1e8c3c'><b>✔ right</b></span>"
        else:
            text += f" · target {target} <span style='color:#c82828'><b>✘ wrong</b></span>"
    return text
