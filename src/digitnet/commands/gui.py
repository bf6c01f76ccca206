"""``digitnet gui``: the desktop app (draw or load digits, train models)."""

from __future__ import annotations

import argparse
import sys

NAME = "gui"
HELP = "open the desktop app: draw or load digits and read them, train models"

INSTALL_HINT = "the desktop app needs PySide6: pip install 'digitnet[gui]'"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="CHECKPOINT",
                   help="read with this checkpoint instead of the bundled model")
    p.add_argument("--screenshot", metavar="FILE",
                   help="render the window to a PNG file and exit (works without a display)")
    p.add_argument("--tab", choices=("recognise", "train"), default=None,
                   help="the tab to open on (default: recognise)")


def run(args: argparse.Namespace) -> int:
    # PySide6 is an optional extra: import it only here, and say how to get it when missing.
    try:
        import PySide6  # noqa: F401  (only the import is needed)
    except ImportError:
        print(f"digitnet gui: error: {INSTALL_HINT}", file=sys.stderr)
        return 1
    from ..gui.app import run as run_app

    return run_app(model=args.model, screenshot=args.screenshot, tab=args.tab)
