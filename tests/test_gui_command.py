"""``digitnet gui`` without PySide6: one line saying how to install it, exit code 1."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.gui


def test_missing_pyside6_says_how_to_install(monkeypatch, capsys) -> None:
    from digitnet.cli import main

    # None in sys.modules makes "import PySide6" raise ImportError, as on a machine without it.
    monkeypatch.setitem(sys.modules, "PySide6", None)
    assert main(["gui", "--screenshot", "never-written.png"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "pip install 'digitnet[gui]'" in err


def test_parser_knows_gui_options() -> None:
    from digitnet.cli import main_parser

    args = main_parser().parse_args(
        ["gui", "--model", "m.safetensors", "--tab", "train", "--screenshot", "s.png"]
    )
    assert (args.model, args.tab, args.screenshot) == ("m.safetensors", "train", "s.png")
