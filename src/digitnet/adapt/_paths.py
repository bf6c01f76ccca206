"""Where the adapted model is written, and the files it may not overwrite."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError


def output_path(out: str | os.PathLike[str]) -> Path:
    """Where the checkpoint will be written: ``out``, with ``.safetensors`` added if it has no
    suffix; any other suffix is refused (the file is a safetensors checkpoint)."""
    p = Path(out)
    if p.suffix == "":
        return p.with_suffix(".safetensors")
    if p.suffix.lower() != ".safetensors":
        raise UsageError(
            f"--out {out}: the adapted model is a .safetensors checkpoint; name it "
            f"{p.with_suffix('.safetensors').name}"
        )
    return p


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def check_out(
    out: str | os.PathLike[str],
    base: str | os.PathLike[str],
    examples: Sequence[str | os.PathLike[str]],
) -> None:
    """Refuse an ``out`` that is the base model, one of the ``examples`` or a folder."""
    from ..checkpoint import sidecar_path

    if Path(out).is_dir():
        raise UsageError(f"--out {out}: is a folder; give a file name (me.safetensors)")
    out, base = output_path(out), Path(base)
    if _same_file(out, base) or _same_file(sidecar_path(out), sidecar_path(base)):
        raise UsageError(
            f"--out {out}: is the base model itself; write the adapted model to another file"
        )
    for s in examples:
        if _same_file(out, Path(s)) or _same_file(sidecar_path(out), Path(s)):
            raise UsageError(f"--out {out}: is one of the example files")
