"""The ``digitnet`` command line.

Each sub-command lives in ``digitnet/commands/<name>.py`` and exposes ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import heavy libraries (torch,
Qt, matplotlib) inside ``run`` only, so building the parser stays cheap and ``digitnet predict``
starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .errors import DigitnetError, one_line

__all__ = ["entrypoint", "main", "main_parser"]

# The order sub-commands appear in ``--help``; modules not listed here come after, sorted.
_ORDER = [
    "train",
    "evaluate",
    "predict",
    "adapt",
    "models",
    "data",
    "gui",
    "experiment",
    "bench",
    "export",
]


def _command_modules() -> list:
    from . import commands

    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))
    return [importlib.import_module(f"{commands.__name__}.{n}") for n in names]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def main_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="digitnet",
        description="Handwritten digit recognition: train, evaluate, read digits from images.",
    )
    parser.add_argument("--version", action="version", version=f"digitnet {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        p.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show full tracebacks instead of one-line errors",
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv``; return the exit code (0 ok, 1 failure, 2 bad usage/input)."""
    parser = main_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args._run(args) or 0)
    except DigitnetError as exc:
        if debug:
            raise
        print(f"digitnet {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"digitnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except MemoryError:
        if debug:
            raise
        print(f"digitnet {args.command}: error: out of memory", file=sys.stderr)
        return 1


def entrypoint() -> None:
    sys.exit(main())
