"""The "My handwriting" panel: the user's corrections, and adapting the model to them.

Corrections are kept by a ``CorrectionStore`` in the user's data folder; "Adapt to my
handwriting" runs the library's adaptation (through ``backend``) in an ``AdaptWorker`` with a
progress bar and Cancel, then hands the new checkpoint on through ``modelReady``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from . import backend
from .backend import UsageError
from .common import fmt_duration, guarded, short_path
from .corrections import Correction, CorrectionStore
from .workers import AdaptWorker, WorkerHandle, start_worker

__all__ = ["CorrectionsPanel"]


class CorrectionsPanel(QGroupBox):
    errorRaised = Signal(str)
    statusMessage = Signal(str)
    modelReady = Signal(str)  # the adapted checkpoint, ready to be used
    adaptFinished = Signal(object)  # backend.AdaptOutcome, after the panel has shown it

    # The time budget of one adaptation, seconds: ``digitnet adapt``'s default (issue 12:
    # <= 60 s on 2 CPU cores); it stops sooner once the examples are learnt.
    adapt_seconds = 60.0

    def __init__(
        self,
        folder: Path,
        base_model: Callable[[], str | None],
        adapted_dir: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("My handwriting", parent)
        self.store = CorrectionStore(folder)
        self.adapted_dir = adapted_dir or Path(folder).parent / "adapted"
        self._base_model = base_model
        # Adapted checkpoint -> the model it was adapted from (None: bundled). Adapting again
        # starts from that model with all corrections, not from the adapted one, so rounds of
        # adapting do not compound.
        self._bases: dict[str, str | None] = {}
        self._base: str | None = None
        self._adapt: WorkerHandle | None = None
        self.last_outcome: backend.AdaptOutcome | None = None
        lay = QVBoxLayout(self)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(40, 40))
        # Two rows of thumbnails: the canvas above keeps its full height on a 768 px screen.
        self.list.setMinimumHeight(70)
        self.list.setMaximumHeight(130)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setToolTip("Your corrections: each image with the digits it really shows")
        self.list.itemSelectionChanged.connect(self._update_buttons)
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Forget the selected corrections (Delete their files)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.folder_button = QPushButton("Folder")
        self.folder_button.setToolTip(f"Show the folder: {short_path(self.store.folder)}")
        self.folder_button.clicked.connect(self._show_folder)
        self.adapt_button = QPushButton("Adapt to my handwriting")
        self.adapt_button.clicked.connect(self.start_adapt)
        for b in (self.adapt_button, self.remove_button, self.folder_button):
            row.addWidget(b)
        lay.addLayout(row)
        prow = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        prow.addWidget(self.progress, 1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_adapt)
        prow.addWidget(self.cancel_button)
        lay.addLayout(prow)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.refresh()

    def show_error(self, message: str) -> None:
        self.errorRaised.emit(message)

    # --------------------------------------------------------------------------- the list

    def add_png(self, label: str, png: bytes) -> Correction:
        c = self.store.add_png(label, png)
        self._added(c)
        return c

    def add_file(self, label: str, source: str | Path) -> Correction:
        c = self.store.add_file(label, source)
        self._added(c)
        return c

    def _added(self, c: Correction) -> None:
        self.refresh()
        self.statusMessage.emit(f"Kept as {c.label}: {c.path.name}")

    def refresh(self) -> None:
        self.list.clear()
        items = self.store.items()
        for c in items:
            pm = QPixmap(str(c.path))
            icon = QIcon(
                pm.scaled(
                    40,
                    40,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
                if not pm.isNull()
                else QPixmap()
            )
            it = QListWidgetItem(icon, c.label)
            it.setData(Qt.ItemDataRole.UserRole, str(c.path))
            it.setToolTip(f"{c.label}: {c.path.name}")
            self.list.addItem(it)
        counts = self.store.counts()
        have = ", ".join(f"{d}: {n}" for d, n in counts.items() if n)
        many = f"{len(items)} correction{'s' if len(items) != 1 else ''}"
        self.summary.setText(
            (f"{many} ({have})" if have else many)
            if items
            else "No corrections yet. When a reading is wrong, type what it shows under the "
            "prediction and keep it."
        )
        self._update_buttons()

    def corrections(self) -> list[Correction]:
        return self.store.items()

    @Slot()
    @guarded
    def remove_selected(self) -> None:
        paths = [it.data(Qt.ItemDataRole.UserRole) for it in self.list.selectedItems()]
        for p in paths:
            self.store.remove(p)
        self.refresh()
        if paths:
            self.statusMessage.emit(f"Removed {len(paths)} correction(s)")

    @Slot()
    def _show_folder(self) -> None:
        self.store.folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.store.folder)))

    def _update_buttons(self) -> None:
        running = self._adapt is not None
        self.remove_button.setEnabled(bool(self.list.selectedItems()) and not running)
        available = backend.adapt_available()
        self.adapt_button.setEnabled(available and self.list.count() > 0 and not running)
        self.adapt_button.setToolTip(
            "Fine-tune the model on your corrections (a few seconds on a CPU) and use it"
            if available
            else "This installation has no adaptation (digitnet.adapt)"
        )

    # --------------------------------------------------------------------------- adapting

    @Slot()
    @guarded
    def start_adapt(self) -> None:
        if self._adapt is not None:
            return
        self.last_outcome = None
        files = [c.path for c in self.store.items()]
        if not files:
            raise UsageError("no corrections yet: correct a few readings first")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = self.adapted_dir / f"adapted-{stamp}.safetensors"
        n = 1
        while out.exists():  # never overwrite an earlier adapted model
            out = self.adapted_dir / f"adapted-{stamp}-{n}.safetensors"
            n += 1
        self._base = self.base_for(self._base_model())
        w = AdaptWorker(files, self._base, out, self.adapt_seconds)
        w.progress.connect(self._on_progress)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.done.connect(self._on_done)
        self.progress.setRange(0, 0)  # busy until the first report
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"Adapting to {len(files)} examples…")
        self._adapt = start_worker(w, self)
        self._update_buttons()

    def base_for(self, current: str | None) -> str | None:
        """The model to adapt when ``current`` is in use (None: the bundled model)."""
        if current is None:
            return None
        return self._bases.get(str(Path(current).resolve()), current)

    def is_adapting(self) -> bool:
        return self._adapt is not None

    @Slot()
    def cancel_adapt(self) -> None:
        if self._adapt is not None:
            self._adapt.stop.set()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling…")

    @Slot(object)
    def _on_progress(self, p: backend.AdaptProgress) -> None:
        self.progress.setRange(0, max(p.total, 1))
        self.progress.setValue(p.done)
        if self._adapt is not None and not self._adapt.stop.is_set():
            self.status.setText(
                f"Adapting: step {p.done}/{p.total} · {fmt_duration(p.elapsed)} elapsed"
            )

    @Slot(object)
    def _on_finished(self, r: backend.AdaptOutcome) -> None:
        self.last_outcome = r
        if r.cancelled or r.checkpoint is None:
            self.status.setText("Cancelled: the model in use is unchanged.")
            return
        skipped = f" ({len(r.skipped)} not usable: {r.skipped[0]})" if r.skipped else ""
        self.status.setText(
            f"Adapted in {fmt_duration(r.seconds)} to {r.examples} examples{skipped}; "
            f"now reading with {Path(r.checkpoint).name}."
        )
        self.status.setToolTip("\n".join([r.checkpoint, *r.skipped]))
        self._bases[str(Path(r.checkpoint).resolve())] = self._base
        self.modelReady.emit(r.checkpoint)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Failed: {message}")
        self.show_error(message)

    @Slot()
    def _on_done(self) -> None:
        h, self._adapt = self._adapt, None
        if h is not None:
            h.thread.wait()
            h.thread.deleteLater()
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self._update_buttons()
        if self.last_outcome is not None:
            self.adaptFinished.emit(self.last_outcome)

    def shutdown(self) -> None:
        if self._adapt is not None and self._adapt.running():
            self._adapt.shutdown()
