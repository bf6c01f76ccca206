"""The training form: its fields, kinds, defaults and choices come from ``TrainConfig``.

``backend.FORM_FIELDS`` names the TrainConfig fields shown; each widget's kind follows the
field's declared type (``backend.field_kind``); choosing a recipe fills the form from the
engine's recipe, and ``config()`` hands the values to the engine's ``resolve_config``, which
validates them (one line naming the setting when one is not accepted).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from . import backend
from .common import LearningRateSpin, short_path

__all__ = ["TrainForm"]

# Training images the "Training images" box offers (0 = all of them).
MAX_LIMIT = 60000
_TIPS = {
    "limit_train": "Train on the first N training images (0: all of them)",
    "data_dir": "The MNIST folder; empty: $DIGITNET_DATA, else the user cache "
    "(digitnet data download fills it)",
    "augment": "The recipe's random distortions of the training images (affine, elastic, "
    "stroke width)",
}


class TrainForm(QGroupBox):
    """The Settings box of the Train page."""

    def __init__(self, runs_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__("Settings", parent)
        self.runs_dir = runs_dir
        self._build()
        self.recipe_combo.addItems(backend.recipe_names())
        self.apply_recipe(self.recipe_combo.currentText())
        self.recipe_combo.currentTextChanged.connect(self.apply_recipe)

    def _build(self) -> None:
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.recipe_combo = QComboBox()
        self.recipe_combo.setToolTip(
            "A named set of settings (engine recipes); change any field after choosing one"
        )
        form.addRow("Recipe", self.recipe_combo)
        self.fields: dict[str, QWidget] = {}
        self._rows: list[QWidget] = [self.recipe_combo]
        for name, label in backend.FORM_FIELDS:
            widget, row = self._field_widget(name)
            if name in _TIPS:
                widget.setToolTip(_TIPS[name])
            self.fields[name] = widget
            self._rows.append(row)
            form.addRow(label, row)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText(short_path(self.runs_dir))
        self.out_edit.setToolTip("Each training run gets its own folder in here")
        out_row = self._with_browse(self.out_edit, "Folder for training runs")
        self._rows.append(out_row)
        form.addRow("Save runs in", out_row)

    def _field_widget(self, name: str) -> tuple[QWidget, QWidget]:
        """The input widget for a TrainConfig field, and the row to put in the form."""
        kind = backend.field_kind(name)
        w: QWidget
        if kind == "choice":
            combo = QComboBox()
            combo.addItems(backend.choices(name))
            if name == "model":
                for i in range(combo.count()):
                    combo.setItemData(
                        i, backend.model_summary(combo.itemText(i)), Qt.ItemDataRole.ToolTipRole
                    )
            w = combo
        elif kind == "bool":
            w = QCheckBox("on")
        elif kind == "float":
            w = LearningRateSpin()
        elif kind in ("int", "optional_int"):
            spin = QSpinBox()
            spin.setRange(
                0 if kind == "optional_int" else 1, MAX_LIMIT if kind == "optional_int" else 65536
            )
            if kind == "optional_int":
                spin.setSingleStep(1000)
                spin.setSpecialValueText("all")
            w = spin
        else:
            edit = QLineEdit()
            edit.setPlaceholderText("automatic")
            return edit, self._with_browse(edit, "MNIST folder")
        return w, w

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

    def values(self) -> dict[str, Any]:
        """The form's fields as TrainConfig values (``augment``: on or off)."""
        out: dict[str, Any] = {}
        for name, w in self.fields.items():
            kind = backend.field_kind(name)
            if isinstance(w, QComboBox):
                out[name] = w.currentText()
            elif isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, LearningRateSpin):
                out[name] = w.value()
            elif isinstance(w, QSpinBox):
                out[name] = (w.value() or None) if kind == "optional_int" else w.value()
            elif isinstance(w, QLineEdit):
                out[name] = w.text().strip() or None
        return out

    def set_values(self, values: dict[str, Any]) -> None:
        for name, v in values.items():
            w = self.fields.get(name)
            if isinstance(w, QComboBox):
                w.setCurrentText(str(v))
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(v))
            elif isinstance(w, (LearningRateSpin, QSpinBox)):
                w.setValue(0 if v is None else v)
            elif isinstance(w, QLineEdit):
                w.setText("" if v is None else str(v))

    @Slot(str)
    def apply_recipe(self, recipe: str) -> None:
        """Fill the form with the recipe's settings; the user can change any of them after.

        Where to train and where the data is are the user's, not the recipe's: kept.
        """
        if recipe:
            keep = {k: v for k, v in self.values().items() if k in ("device", "data_dir")}
            self.set_values({**backend.form_values(backend.recipe_config(recipe)), **keep})

    def run_folder(self) -> Path:
        return Path(self.out_edit.text().strip() or self.runs_dir)

    def config(self, out: str | None = None) -> Any:
        """The validated ``TrainConfig`` of the form (``UsageError`` naming a bad setting)."""
        recipe = self.recipe_combo.currentText()
        model = self.values()["model"]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return backend.make_config(
            recipe,
            {
                **self.values(),
                # Each run its own folder: a new run never overwrites the checkpoint of another.
                "out": out or str(self.run_folder() / f"{model}-{recipe}-{stamp}"),
                # One core fewer than the machine has for torch's CPU threads: the spare one keeps
                # the window (painting, the canvas, progress) responsive while training.
                "threads": max(1, (os.cpu_count() or 2) - 1),
            },
        )

    def set_editable(self, on: bool) -> None:
        for w in self._rows:
            w.setEnabled(on)

    def set_recipe_quietly(self, recipe: str) -> None:
        """Show ``recipe`` without filling the form from it (a resumed run's own settings)."""
        self.recipe_combo.blockSignals(True)
        self.recipe_combo.setCurrentText(recipe)
        self.recipe_combo.blockSignals(False)
