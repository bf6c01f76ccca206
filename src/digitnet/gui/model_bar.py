"""The model picker: the bundled model, recently used checkpoints, or any file.

``ModelBar`` owns the active predictor (loaded through ``backend``); the pages read with
``bar.predictor`` and follow ``modelChanged``. Recent checkpoints live in the app's settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from . import backend
from .backend import CheckpointError
from .common import guarded, setting_str

__all__ = ["MAX_RECENT_MODELS", "ModelBar"]

MAX_RECENT_MODELS = 8
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".onnx")


class ModelBar(QWidget):
    errorRaised = Signal(str)
    statusMessage = Signal(str)
    modelChanged = Signal(str)  # the active model's label

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.predictor: Any = None
        self.model_path: str | None = None  # None: the bundled model
        self.model_info: backend.ModelInfo | None = None
        bar = QHBoxLayout(self)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel("Model:"))
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setMinimumContentsLength(28)
        self.combo.setToolTip("The model that reads drawings and images")
        self.combo.activated.connect(self._on_picked)
        bar.addWidget(self.combo)
        self.open_button = QPushButton("Open checkpoint…")
        self.open_button.setToolTip("Use a trained model (Ctrl+M)")
        self.open_button.clicked.connect(self.open_dialog)
        bar.addWidget(self.open_button)
        self.label = QLabel("no model loaded")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar.addWidget(self.label, 1)
        self._refresh()

    def show_error(self, message: str) -> None:
        self.errorRaised.emit(message)

    def load_initial(self, path: str | None = None) -> None:
        """Load ``path``, else the last model used, else the bundled one (called at start-up).

        Raises ``DigitnetError`` for a bad ``path``.
        """
        if path is None:
            last = setting_str(self.settings, "model/last")
            if last and Path(last).exists():
                path = last
        if path is None and not backend.bundled_model_path().exists():
            self.label.setText("no bundled model: open a checkpoint")
            self.statusMessage.emit("No bundled model installed: open a checkpoint (Ctrl+M)")
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
        self._remember(p)
        self._refresh()
        self.label.setText(self.model_info.label())
        self.label.setToolTip(p or str(backend.bundled_model_path()))
        self.statusMessage.emit(f"Model: {self.model_info.label()}")
        self.modelChanged.emit(self.model_info.label())

    def recent(self) -> list[str]:
        v = self.settings.value("model/recent", [], type=list)
        return [str(x) for x in v if x] if isinstance(v, list) else []

    def _remember(self, path: str | None) -> None:
        if path is not None:
            recent = [path] + [p for p in self.recent() if p != path]
            self.settings.setValue("model/recent", recent[:MAX_RECENT_MODELS])
        self.settings.setValue("model/last", path or "")

    def _refresh(self) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem("Bundled model", "")
        for p in self.recent():
            self.combo.addItem(Path(p).name, p)
            self.combo.setItemData(self.combo.count() - 1, p, Qt.ItemDataRole.ToolTipRole)
        i = self.combo.findData(self.model_path or "")
        self.combo.setCurrentIndex(max(0, i))
        self.combo.blockSignals(False)

    @Slot(int)
    @guarded
    def _on_picked(self, index: int) -> None:
        path = self.combo.itemData(index) or None
        if path is not None and not Path(path).exists():
            self.settings.setValue("model/recent", [p for p in self.recent() if p != path])
            self._refresh()
            raise CheckpointError(f"{path}: checkpoint no longer exists")
        try:
            self.set_model(path)
        finally:
            self._refresh()

    @Slot()
    @guarded
    def open_dialog(self) -> None:
        start = setting_str(self.settings, "model/dir", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open checkpoint",
            start,
            "Checkpoints (" + " ".join(f"*{s}" for s in CHECKPOINT_SUFFIXES) + ");;All files (*)",
        )
        if path:
            self.settings.setValue("model/dir", str(Path(path).parent))
            self.set_model(path)
