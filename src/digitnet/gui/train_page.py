"""The Train page: a form built from ``TrainConfig``, progress, charts and the result.

The form's fields, their widget kinds, defaults and choices come from the engine's
``TrainConfig`` and recipes through ``backend`` (``FORM_FIELDS``); a recipe fills the form and
the user may change any field after. The settings are validated by the engine's own
``resolve_config`` before a run starts, so a bad value is one line in the window, not a failure
in the worker. Resuming takes the run's settings from its checkpoint (fit's rule) and says so.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from . import backend
from .backend import CheckpointError
from .common import fmt_duration, guarded, num, pct, setting_str, short_path
from .train_form import TrainForm
from .widgets import LineChart
from .workers import TrainWorker, WorkerHandle, start_worker

__all__ = ["TrainPage"]


class TrainPage(QWidget):
    errorRaised = Signal(str)
    statusMessage = Signal(str)
    activated = Signal()  # the page wants to be the visible one
    runningChanged = Signal(bool)
    useModel = Signal(str)  # "Use this model": the checkpoint just trained
    trainingFinished = Signal(object)  # TrainOutcome, after the page has shown it

    # The stop flag's type; tests swap in one that counts the training thread's checks.
    stop_event_type: type[threading.Event] = threading.Event

    def __init__(self, runs_dir: Path, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs_dir = runs_dir
        self.settings = settings
        self.outcome: backend.TrainOutcome | None = None
        self.resume_plan: backend.ResumePlan | None = None
        self.last_resumable: str | None = None  # the last cancelled run's last.safetensors
        self._train: WorkerHandle | None = None
        outer = QHBoxLayout(self)
        left = QVBoxLayout()
        # The form needs the engine's recipes and models, i.e. torch (seconds to import): it
        # is built the first time the page is shown or used, so the window opens at once.
        self._form: TrainForm | None = None
        self._placeholder = QGroupBox("Settings")
        QVBoxLayout(self._placeholder).addWidget(QLabel("Loading the training settings…"))
        left.addWidget(self._placeholder)
        self._left = left
        left.addLayout(self._build_buttons())
        self.train_progress = QProgressBar()
        self.train_progress.setFormat("%p %")
        left.addWidget(self.train_progress)
        self.train_status = QLabel("Not started")
        self.train_status.setWordWrap(True)
        left.addWidget(self.train_status)
        self.resume_label = QLabel("")
        self.resume_label.setWordWrap(True)
        self.resume_label.setVisible(False)
        left.addWidget(self.resume_label)
        left.addWidget(self._build_result())
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

    def show_error(self, message: str) -> None:
        self.errorRaised.emit(message)

    @property
    def form(self) -> TrainForm:
        """The settings form (built on first use)."""
        if self._form is None:
            self._form = TrainForm(self.runs_dir)
            data = setting_str(self.settings, "train/data_dir")
            if data:
                self._form.set_values({"data_dir": data})
            self._form.out_edit.setText(setting_str(self.settings, "train/out_dir"))
            self._left.replaceWidget(self._placeholder, self._form)
            self._placeholder.deleteLater()
        return self._form

    def form_built(self) -> bool:
        return self._form is not None

    def showEvent(self, event: QShowEvent) -> None:
        self.form  # noqa: B018  (built now, as the page appears)
        super().showEvent(event)

    def save_settings(self) -> None:
        if self._form is not None:
            self.settings.setValue("train/data_dir", self._form.values()["data_dir"] or "")
            self.settings.setValue("train/out_dir", self._form.out_edit.text().strip())

    # --------------------------------------------------------------------------- building

    def _build_buttons(self) -> QHBoxLayout:
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setToolTip("Start training (Ctrl+T)")
        self.start_button.clicked.connect(self.start_training)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_training)
        self.resume_button = QPushButton("Resume…")
        self.resume_button.setToolTip(
            "Continue a cancelled or interrupted run from its "
            "resumable checkpoint (last.safetensors), with the "
            "settings stored in it"
        )
        self.resume_button.clicked.connect(self.resume_training_dialog)
        for b in (self.start_button, self.cancel_button, self.resume_button):
            buttons.addWidget(b)
        return buttons

    def _build_result(self) -> QGroupBox:
        box = QGroupBox("Result")
        rl = QGridLayout(box)
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
        return box

    # --------------------------------------------------------------------------- running

    @Slot()
    @guarded
    def start_training(self) -> None:
        """Train with the form's settings in a worker thread (Ctrl+T)."""
        if self._train is not None:
            self.statusMessage.emit("Training is already running")
            return
        cfg = self.form.config()
        self.resume_plan = None
        self.resume_label.setVisible(False)
        self._launch(cfg, None)

    @Slot()
    @guarded
    def resume_training_dialog(self) -> None:
        start = self.last_resumable or str(self.form.run_folder())
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Resume training from",
            start,
            "Resumable checkpoints (last.safetensors);;Checkpoints (*.safetensors)",
        )
        if path:
            self.resume_training(path)

    @guarded
    def resume_training(self, checkpoint: str | Path) -> None:
        """Continue the run whose resumable checkpoint (``last.safetensors``) is given.

        The run's own settings, stored in the checkpoint, are used (fit's rule: a resumed run
        gives the result the uninterrupted run would have); the form shows them, a note says
        which of the form's settings they replaced, and the run writes into its own folder.
        """
        if self._train is not None:
            self.statusMessage.emit("Training is already running")
            return
        p = Path(checkpoint)
        if not p.is_file():
            raise CheckpointError(f"{p}: no such checkpoint")
        plan = backend.resume_plan(p, self.form.values())
        self.form.set_recipe_quietly(plan.config.recipe)
        device = self.form.values()["device"]
        self.form.set_values({**backend.form_values(plan.config), "device": device})
        cfg = self.form.config(out=str(p.parent))
        self.resume_plan = plan
        self.resume_label.setText(plan.message())
        self.resume_label.setVisible(True)
        self.statusMessage.emit(plan.message())
        self._launch(cfg, p)

    def _launch(self, cfg: Any, resume: Path | None) -> None:
        self.activated.emit()
        self.outcome = None
        self.loss_chart.clear()
        self.acc_chart.clear()
        for lab in self.result_cells.values():
            lab.setText("-")
        self.checkpoint_label.setText("")
        self.use_model_button.setEnabled(False)
        self.show_run_button.setEnabled(False)
        self.train_progress.setRange(0, 0)  # busy until fit reports its number of steps
        self.train_status.setText(
            "Loading data…" if resume is None else f"Resuming {resume.parent.name}…"
        )
        self._set_running(True)
        w = TrainWorker(cfg, self.stop_event_type(), resume=None if resume is None else str(resume))
        w.fitStarted.connect(self._on_started)
        w.progress.connect(self._on_progress)
        w.epochEnded.connect(self._on_epoch)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.done.connect(self._on_done)
        self._train = start_worker(w, self)

    def is_training(self) -> bool:
        return self._train is not None

    @property
    def handle(self) -> WorkerHandle | None:
        return self._train

    @Slot()
    def cancel_training(self) -> None:
        """Ask fit to stop after the current batch (it then saves a resumable checkpoint)."""
        if self._train is not None:
            self._train.stop.set()
            self.cancel_button.setEnabled(False)
            self.train_status.setText("Cancelling after this batch…")

    def _set_running(self, running: bool) -> None:
        self.form.set_editable(not running)
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.runningChanged.emit(running)

    @Slot(object)
    def _on_started(self, s: backend.TrainStart) -> None:
        self.train_progress.setRange(0, max(s.total_steps, 1))
        self.train_progress.setValue(s.start_step)
        self.train_status.setText(f"Training on {s.n_train:,} images on {s.device}…")

    @Slot(object)
    def _on_progress(self, p: backend.TrainProgress) -> None:
        if p.total_steps:
            self.train_progress.setMaximum(p.total_steps)
        self.train_progress.setValue(p.global_step)
        if self._train is not None and self._train.stop.is_set():
            return  # keep "Cancelling…" on screen
        text = (
            f"Epoch {p.epoch + 1}/{p.epochs or '?'} · batch {p.step}/{p.steps_per_epoch} · "
            f"{fmt_duration(p.elapsed)} elapsed · {fmt_duration(p.eta_s)} left"
        )
        if p.loss is not None:
            text += f" · loss {p.loss:.4f}"
        self.train_status.setText(text)

    @Slot(object)
    def _on_epoch(self, e: backend.EpochReport) -> None:
        for split in ("train", "val", "test"):
            if f"{split}_loss" in e.metrics:
                self.loss_chart.add_point(split, e.epoch, e.metrics[f"{split}_loss"])
            if f"{split}_accuracy" in e.metrics:
                self.acc_chart.add_point(split, e.epoch, e.metrics[f"{split}_accuracy"])
        self._show_metrics(e.metrics)

    def _show_metrics(self, m: dict[str, float]) -> None:
        for key, lab in self.result_cells.items():
            if key in m:
                lab.setText(pct(m[key]) if key.endswith("accuracy") else num(m[key]))

    @Slot(object)
    def _on_finished(self, r: backend.TrainOutcome) -> None:
        self.outcome = r
        self._show_metrics(r.metrics)
        if r.interrupted and r.last_checkpoint:
            self.last_resumable = r.last_checkpoint
        ckpt = r.checkpoint or r.last_checkpoint
        if ckpt:
            what = "Resumable checkpoint" if r.checkpoint is None else "Checkpoint"
            self.checkpoint_label.setText(f"{what}: {short_path(ckpt)}")
            self.checkpoint_label.setToolTip(ckpt)
            self.use_model_button.setEnabled(Path(ckpt).exists())
            self.show_run_button.setEnabled(True)
        done = (
            "Cancelled after the current batch; Resume… continues the run"
            if r.interrupted
            else "Finished"
        )
        done += f" in {fmt_duration(r.train_seconds)}"
        self.train_status.setText(done + ".")
        if not r.interrupted:
            self.train_progress.setValue(self.train_progress.maximum())
        self.statusMessage.emit(done)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.train_status.setText(f"Failed: {message}")
        self.show_error(message)

    @Slot()
    def _on_done(self) -> None:
        h, self._train = self._train, None
        if h is not None:
            h.thread.wait()  # the worker returned; this only joins the finished thread
            h.thread.deleteLater()
        if self.train_progress.maximum() == 0:
            self.train_progress.setRange(0, 1)  # leave the busy animation on failures
        self._set_running(False)
        if self.outcome is not None:
            self.trainingFinished.emit(self.outcome)

    def trained_checkpoint(self) -> str | None:
        return None if self.outcome is None else self.outcome.usable_checkpoint

    @Slot()
    def use_trained_model(self) -> None:
        ckpt = self.trained_checkpoint()
        if ckpt:
            self.useModel.emit(ckpt)

    @Slot()
    def _show_run_folder(self) -> None:
        ckpt = self.trained_checkpoint()
        if ckpt:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(ckpt).parent)))

    def shutdown(self) -> None:
        """Stop training and wait for its thread (fit saves a resumable checkpoint)."""
        if self._train is not None and self._train.running():
            self._train.shutdown()
