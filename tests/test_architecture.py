"""The allowed import directions of docs/architecture.md, checked on the source tree.

Imports are read with ``ast`` (every ``import`` statement, also those inside functions), so a
lazy import breaks a rule as much as a top-level one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "digitnet"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *([node.module] if node.module else [])])
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def _files(sub: str) -> list[Path]:
    return sorted((SRC / sub).rglob("*.py"))


def _offenders(files: list[Path], bad) -> list[str]:
    return [
        f"{f.relative_to(SRC)} imports {m}" for f in files for m in sorted(imports_of(f)) if bad(m)
    ]


def test_import_reader_resolves_relative_imports(tmp_path: Path) -> None:
    # The checker itself must see what a module imports, or every rule below passes vacuously.
    names = imports_of(SRC / "gui" / "backend.py")
    assert any(n.startswith("digitnet.") and not n.startswith("digitnet.gui") for n in names)


def test_preprocess_never_imports_torch() -> None:
    assert _offenders(_files("preprocess"), lambda m: m == "torch" or m.startswith("torch.")) == []


def test_engine_never_imports_gui_or_progress_bars() -> None:
    bad = ("digitnet.gui", "PySide6", "tqdm", "digitnet.commands")
    assert _offenders(_files("engine"), lambda m: m.startswith(bad)) == []


def test_library_never_imports_the_gui() -> None:
    lib = [f for f in SRC.rglob("*.py") if f.relative_to(SRC).parts[0] not in ("gui", "commands")]
    assert _offenders(lib, lambda m: m.startswith(("digitnet.gui", "PySide6"))) == []


def test_gui_reaches_the_library_only_through_its_doorway() -> None:
    pages = [f for f in _files("gui") if f.name != "backend.py"]

    def bad(m: str) -> bool:
        if m == "torch" or m.startswith("torch."):
            return True
        return m.startswith("digitnet.") and not m.startswith("digitnet.gui")

    assert _offenders(pages, bad) == []


@pytest.mark.parametrize("module", ["digitnet.preprocess", "digitnet.inference"])
def test_reading_path_does_not_load_torch(module: str) -> None:
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
