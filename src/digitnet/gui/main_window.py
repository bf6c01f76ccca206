"""The main window: a Recognise page and a Train page in tabs, the menus and the settings.

The window only composes: each page (``recognise_page.py``, ``train_page.py``) builds its own
widgets, runs its own workers and reaches the library through ``backend``. Pages report
problems through their ``errorRaised`` signal; the window shows each as one line in the status
bar (and a dialog when interactive), never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox, QTabWidget, QWidget

from .common import guarded, user_data_dir
from .model_bar import CHECKPOINT_SUFFIXES
from .recognise_page import RecognisePage
from .train_page import TrainPage

__all__ = ["TABS", "MainWindow"]

TABS = ("recognise", "train")


class MainWindow(QMainWindow):
    """The digitnet desktop app. ``settings`` is injectable so tests never touch the user's;
    so are the per-user folders for corrections and training runs (``data_dir``)."""

    modelChanged = Signal(str)  # the active model's label

    def __init__(
        self,
        settings: QSettings | None = None,
        *,
        interactive_errors: bool = True,
        data_dir: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        # Tests and --screenshot set this False: errors then go to the status bar only, with no
        # modal dialog waiting for a click that never comes.
        self.interactive_errors = interactive_errors
        self.last_error: str | None = None
        root = data_dir if data_dir is not None else user_data_dir()
        self.setWindowTitle("digitnet")
        self.setAcceptDrops(True)
        self.tabs = QTabWidget()
        self.recognise = RecognisePage(self.settings, root / "corrections")
        self.train = TrainPage(root / "runs", self.settings)
        for page in (self.recognise, self.train):
            page.errorRaised.connect(self.show_error)
            page.statusMessage.connect(self.show_status)
            page.activated.connect(lambda p=page: self.tabs.setCurrentWidget(p))
        self.recognise.modelChanged.connect(self.modelChanged)
        self.train.useModel.connect(self.use_model)
        self.train.runningChanged.connect(self._on_training_running)
        self.tabs.addTab(self.recognise, "&Recognise")
        self.tabs.addTab(self.train, "&Train")
        self.setCentralWidget(self.tabs)
        self._build_actions()
        self.statusBar().showMessage("Ready")
        self._restore_settings()

    def _build_actions(self) -> None:
        rec, tr = self.recognise, self.train

        def act(
            text: str,
            keys: Sequence[QKeySequence | QKeySequence.StandardKey | str],
            slot: Callable[[], Any],
            tip: str = "",
        ) -> QAction:
            a = QAction(text, self)
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            if tip:
                a.setStatusTip(tip)
            a.triggered.connect(slot)
            return a

        self.act_open = act(
            "&Open image(s)…",
            [QKeySequence.StandardKey.Open],
            rec.images.open_images_dialog,
            "Read the digits in image files",
        )
        self.act_open_folder = act(
            "Open &folder…",
            ["Ctrl+Shift+O"],
            rec.images.open_folder_dialog,
            "Read every image in a folder",
        )
        self.act_open_model = act(
            "Open &checkpoint…", ["Ctrl+M"], rec.models.open_dialog, "Use a trained model"
        )
        self.act_save = act(
            "&Save drawing…",
            [QKeySequence.StandardKey.Save],
            rec.save_drawing_dialog,
            "Save the drawing as PNG",
        )
        self.act_quit = act("&Quit", [QKeySequence.StandardKey.Quit], self.close)
        self.act_undo = act("&Undo stroke", [QKeySequence.StandardKey.Undo], rec.canvas.undo)
        self.act_clear = act("&Clear drawing", ["Delete", "Ctrl+L"], rec.canvas.clear)
        self.act_train = act("&Start training", ["Ctrl+T"], tr.start_training)
        self.act_cancel = act("&Cancel training", [], tr.cancel_training)
        self.act_cancel.setEnabled(False)
        mb = self.menuBar()
        menus = {
            "&File": (
                self.act_open,
                self.act_open_folder,
                self.act_open_model,
                self.act_save,
                None,
                self.act_quit,
            ),
            "&Edit": (self.act_undo, self.act_clear),
            "&Training": (self.act_train, self.act_cancel),
        }
        for title, actions in menus.items():
            m = mb.addMenu(title)
            for a in actions:
                if a is None:
                    m.addSeparator()
                else:
                    m.addAction(a)
        for a in (
            self.act_open,
            self.act_open_folder,
            self.act_open_model,
            self.act_save,
            self.act_quit,
            self.act_undo,
            self.act_clear,
            self.act_train,
        ):
            self.addAction(a)  # shortcuts work while the menu bar is hidden (some desktops)

    # --------------------------------------------------------------------------- settings

    def _restore_settings(self) -> None:
        geo = self.settings.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1180, 760)

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("canvas/pen_width", self.recognise.canvas.pen_width())
        s.setValue("window/geometry", self.saveGeometry())
        self.train.save_settings()
        s.setValue("model/last", self.recognise.models.model_path or "")
        s.sync()

    # --------------------------------------------------------------------------- messages

    @Slot(str)
    def show_error(self, message: str) -> None:
        self.last_error = message
        self.statusBar().showMessage(f"Error: {message}", 15000)
        if self.interactive_errors:
            QMessageBox.warning(self, "digitnet", message)

    @Slot(str)
    def show_status(self, message: str, ms: int = 6000) -> None:
        self.statusBar().showMessage(message, ms)

    # --------------------------------------------------------------------------- models

    @guarded
    def load_initial_model(self, path: str | None = None) -> None:
        """Load ``path``, else the last model used, else the bundled one (called at start-up)."""
        self.recognise.models.load_initial(path)

    @Slot(str)
    @guarded
    def use_model(self, checkpoint: str) -> None:
        """Read with ``checkpoint`` from now on, and show the Recognise page."""
        self.recognise.models.set_model(checkpoint)
        self.tabs.setCurrentWidget(self.recognise)

    @Slot(bool)
    def _on_training_running(self, running: bool) -> None:
        self.act_train.setEnabled(not running)
        self.act_cancel.setEnabled(running)

    # --------------------------------------------------------------------------- drops

    def dragEnterEvent(self, ev: QDragEnterEvent) -> None:
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()
        else:
            ev.ignore()

    @guarded
    def dropEvent(self, ev: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        ev.acceptProposedAction()
        if len(paths) == 1 and paths[0].lower().endswith(CHECKPOINT_SUFFIXES):
            self.recognise.models.set_model(paths[0])  # a checkpoint dropped: use it
        else:
            self.tabs.setCurrentWidget(self.recognise)
            self.recognise.images.open_paths(paths)

    # --------------------------------------------------------------------------- closing

    def shutdown(self) -> None:
        """Stop the workers and wait for their threads (fit saves a resumable checkpoint)."""
        if self.train.is_training():
            self.show_status("Stopping: saving a resumable checkpoint…", 0)
        self.train.shutdown()
        self.recognise.shutdown()

    def closeEvent(self, ev: QCloseEvent) -> None:
        self.shutdown()
        self._save_settings()
        super().closeEvent(ev)
