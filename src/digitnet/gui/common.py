"""Small pieces the pages share: the error guard, number formats, the learning-rate box and
the per-user data folder."""

from __future__ import annotations

import functools
import math
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QWidget

from .backend import DigitnetError

__all__ = [
    "LearningRateSpin",
    "fmt_duration",
    "guarded",
    "num",
    "pct",
    "setting_int",
    "setting_str",
    "short_path",
    "user_data_dir",
]


class _ShowsErrors(Protocol):
    def show_error(self, message: str) -> None: ...


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a UI handler so that no exception escapes into Qt's event loop.

    A ``DigitnetError`` (the user's input) becomes its one line through ``self.show_error``;
    anything else is a bug: its traceback goes to stderr and the user gets one line, the window
    stays up.
    """

    @functools.wraps(fn)
    def wrapper(self: _ShowsErrors, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except DigitnetError as exc:
            self.show_error(str(exc))
        except Exception as exc:
            traceback.print_exc()
            self.show_error(f"unexpected error: {type(exc).__name__}: {exc}")
        return None

    return wrapper


def fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f} %"


def num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def short_path(path: str | Path) -> str:
    """``path`` with the home folder written ``~``: shorter, and the part people recognise."""
    p = Path(path)
    try:
        return str(Path("~") / p.relative_to(Path.home()))
    except ValueError:
        return str(p)


def setting_str(settings: QSettings, key: str, default: str = "") -> str:
    """A remembered text setting (``default`` when unset)."""
    v = settings.value(key, default, type=str)
    return v if isinstance(v, str) else default


def setting_int(settings: QSettings, key: str, default: int) -> int:
    """A remembered whole-number setting (``default`` when unset or not a number)."""
    v = settings.value(key, default, type=int)
    return v if isinstance(v, int) else default


def user_data_dir(*parts: str) -> Path:
    """``<the platform's per-user data folder>/digitnet/<parts>``: ``$XDG_DATA_HOME`` (else
    ``~/.local/share``) on Linux, ``~/Library/Application Support`` on macOS, ``%LOCALAPPDATA%``
    on Windows. The app may be started from any folder, so nothing lands in the current one."""
    loc = QStandardPaths.StandardLocation.GenericDataLocation
    base = QStandardPaths.writableLocation(loc)
    root = Path(base) if base else Path.home() / ".local" / "share"
    return root.joinpath("digitnet", *parts)


class LearningRateSpin(QDoubleSpinBox):
    """A learning-rate box that shows 0.2 and 1e-05 as such, not 0.200000 and 0.000010."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(8)  # the model's precision; the text shows only significant digits
        self.setRange(1e-7, 10.0)
        self.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        t = text.strip()
        try:
            v = float(t)
        except ValueError:
            # Partial input such as "1e-" or "0." while typing.
            ok = t == "" or all(c in "0123456789.eE+-" for c in t)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid, text, pos)
        state = (
            QValidator.State.Acceptable
            if self.minimum() <= v <= self.maximum()
            else QValidator.State.Intermediate
        )
        return (state, text, pos)
