"""Starting the desktop app: the QApplication, the main window, and ``--screenshot``.

Kept apart from ``main_window.py`` so tests can build windows inside pytest-qt's application
while ``run`` owns the real one.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSettings, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from . import backend
from .backend import CheckpointError, UsageError
from .main_window import TABS, MainWindow

__all__ = ["APPLICATION", "ORGANIZATION", "create_application", "run", "save_screenshot"]

ORGANIZATION = "digitnet"
APPLICATION = "digitnet"


def _headless() -> bool:
    if sys.platform in ("win32", "darwin"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def create_application(offscreen: bool = False) -> QApplication:
    """The process's QApplication (created once; reused when one exists, as under pytest-qt)."""
    app = QApplication.instance()
    if app is not None:
        return app  # type: ignore[return-value]
    if offscreen:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Fractional scale factors (125 %, 150 %) as they are, not rounded to 1x or 2x: the canvas
    # allocates its pixmap in device pixels, so strokes stay sharp at any factor.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("digitnet")
    return app


def save_screenshot(window: MainWindow, path: str | Path) -> Path:
    """Render ``window`` (no screen needed) to a PNG at ``path``, written atomically."""
    pixmap = window.grab()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not pixmap.save(buf, "PNG"):
        raise UsageError(f"{path}: could not render the window to PNG")
    buf.close()
    return backend.write_file(path, bytes(data.data()))


def _settle(app: QApplication, rounds: int = 5) -> None:
    # Layouts and deferred paints happen in posted events; a few passes let them all land.
    for _ in range(rounds):
        app.processEvents()


def run(model: str | None = None, screenshot: str | None = None, tab: str | None = None) -> int:
    """Open the app (or, with ``screenshot``, render it to a PNG and return). Exit code."""
    if tab is not None and tab not in TABS:
        raise UsageError(f"--tab {tab!r}: choose from {', '.join(TABS)}")
    if model is not None and not Path(model).exists():
        raise UsageError(f"--model {model}: no such file")
    app = create_application(offscreen=screenshot is not None and _headless())
    if screenshot is not None:
        # A throwaway settings file: pictures for the docs must not depend on (or change) what
        # this user's app remembers.
        tmp = tempfile.TemporaryDirectory(prefix="digitnet-gui-")
        settings = QSettings(str(Path(tmp.name) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings, interactive_errors=False, data_dir=Path(tmp.name) / "data")
    else:
        window = MainWindow(QSettings(), interactive_errors=True)
    if tab is not None:
        window.tabs.setCurrentIndex(TABS.index(tab))
    window.show()
    if screenshot is not None:
        try:
            window.load_initial_model(model)
            if window.last_error is not None:
                # A check that renders a window without its model would pass silently.
                raise CheckpointError(window.last_error)
            _settle(app)
            save_screenshot(window, screenshot)
        finally:
            window.close()
            tmp.cleanup()
        return 0
    # The model loads once the window is on screen, so the window appears at once.
    QTimer.singleShot(0, lambda: window.load_initial_model(model))
    # The first torch optimizer built in a process imports torch._dynamo (1.7 s on 2 idle cores,
    # ~5 s loaded), holding the GIL in stretches that froze the window for up to 0.5 s when it
    # happened at the start of the first training. Do it once now, while the app starts up.
    QTimer.singleShot(
        500,
        lambda: threading.Thread(
            target=backend.warm_up_training, name="warm-optim", daemon=True
        ).start(),
    )
    # Ctrl+C in the terminal closes the window the normal way (stopping training cleanly). Qt's
    # event loop does not run Python signal handlers by itself: a timer gives Python a turn.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(200)
    code = app.exec()
    tick.stop()
    return int(code)
