"""``digitnet gui``: the desktop app (draw or load digits, train models)."""

from __future__ import annotations

import argparse
import ctypes.util
import os
import sys
from collections.abc import Callable, Mapping

from ..errors import DigitnetError

NAME = "gui"
HELP = "open the desktop app: draw or load digits and read them, train models"

INSTALL_HINT = "the desktop app needs PySide6: pip install 'digitnet[gui]'"

# The system libraries Qt's X11 platform plugin (libqxcb.so, PySide6 6.5 and later) loads
# beyond the X client library itself, as ``ctypes.util.find_library`` names them, with the
# Debian/Ubuntu package that installs each (``ldd .../platforms/libqxcb.so`` lists them).
# Without any one of them Qt aborts with a multi-line "could not load the Qt platform plugin".
XCB_LIBRARIES: dict[str, str] = {
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-image": "libxcb-image0",
    "xcb-render-util": "libxcb-render-util0",
    "xcb-randr": "libxcb-randr0",
    "xcb-shape": "libxcb-shape0",
    "xcb-xkb": "libxcb-xkb1",
    "xcb-xfixes": "libxcb-xfixes0",
    "xcb-sync": "libxcb-sync1",
    "xcb-shm": "libxcb-shm0",
    "xcb-util": "libxcb-util1",
    "xkbcommon-x11": "libxkbcommon-x11-0",
    "X11-xcb": "libx11-xcb1",
}


class MissingSystemLibraries(DigitnetError):
    """Qt's X11 platform plugin cannot load: system libraries are not installed."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        metavar="CHECKPOINT",
        help="read with this checkpoint instead of the bundled model",
    )
    p.add_argument(
        "--screenshot",
        metavar="FILE",
        help="render the window to a PNG file and exit (works without a display)",
    )
    p.add_argument(
        "--tab",
        choices=("recognise", "train"),
        default=None,
        help="the tab to open on (default: recognise)",
    )


def uses_xcb(env: Mapping[str, str], platform: str = sys.platform, offscreen: bool = False) -> bool:
    """Whether Qt will start its X11 (xcb) platform plugin in this environment."""
    if not platform.startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    if offscreen:
        return False  # --screenshot without a display renders off-screen
    # Unset: Qt prefers Wayland in a Wayland session and takes xcb under an X display.
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def missing_xcb_packages(find: Callable[[str], str | None] | None = None) -> list[str]:
    """The Debian packages of the xcb libraries ``find`` (default ``ctypes.util.find_library``)
    cannot find, in ``XCB_LIBRARIES`` order."""
    finder = find or ctypes.util.find_library
    return [pkg for lib, pkg in XCB_LIBRARIES.items() if not finder(lib)]


def check_system_libraries(
    env: Mapping[str, str] | None = None,
    find: Callable[[str], str | None] | None = None,
    offscreen: bool = False,
) -> None:
    """Raise ``MissingSystemLibraries`` (one line naming the packages) before Qt would abort."""
    if not uses_xcb(os.environ if env is None else env, offscreen=offscreen):
        return
    missing = missing_xcb_packages(find)
    if missing:
        raise MissingSystemLibraries(
            "Qt's X11 platform needs system libraries that are not installed; on Debian or "
            f"Ubuntu: sudo apt-get install {' '.join(missing)}"
        )


def run(args: argparse.Namespace) -> int:
    # PySide6 is an optional extra: import it only here, and say how to get it when missing.
    try:
        import PySide6  # noqa: F401  (only the import is needed)
    except ImportError:
        print(f"digitnet gui: error: {INSTALL_HINT}", file=sys.stderr)
        return 1
    # Before any QApplication exists: Qt's own message is many lines and then an abort.
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    check_system_libraries(offscreen=args.screenshot is not None and headless)
    from ..gui.app import run as run_app

    return run_app(model=args.model, screenshot=args.screenshot, tab=args.tab)
