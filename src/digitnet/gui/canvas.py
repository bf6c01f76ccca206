"""The drawing canvas of the Recognise tab.

Strokes are painted once into a backing ``QPixmap`` as they arrive; ``paintEvent`` only blits that
pixmap (the Qt ``painter.py`` example), so repaints cost the same however much has been drawn.
The pixmap is allocated in *device* pixels (logical size x ``devicePixelRatio``) so a stroke on a
high-DPI screen is as smooth as the screen allows, while every coordinate we store and every
public method uses logical pixels. Strokes are also kept as point lists, which makes undo, a
change of screen (new pixel ratio) and programmatic drawing in tests exact replays.

The canvas knows nothing about digits: it hands out the ink as a plain ``numpy`` array and
``preprocess.py`` turns that into network input, the same code the command line uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QPointF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QTabletEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from . import backend

__all__ = ["INK", "PAPER", "DrawingCanvas", "Stroke"]

PAPER = QColor(255, 255, 255)
INK = QColor(0, 0, 0)  # pure black so the ink map spans the full 0..255

# Pen widths in logical pixels. 22 px on the 280 px canvas is ~2.2 px once a digit drawn at full
# height is fitted into MNIST's 20 px box: the stroke width of the MNIST training digits.
DEFAULT_PEN_WIDTH = 22
MIN_PEN_WIDTH = 4
MAX_PEN_WIDTH = 60


@dataclass
class Stroke:
    """One pen-down .. pen-up trace: logical points and the pressure (0..1] at each."""

    width: float
    points: list[QPointF] = field(default_factory=list)
    pressures: list[float] = field(default_factory=list)

    def pen_width(self, i: int) -> float:
        # A tablet reports pressure; a mouse reports none (1.0). Light pressure still leaves a
        # visible line (40 % of the width) so a hesitant pen stroke is not lost.
        return self.width * (0.4 + 0.6 * self.pressures[i])


class DrawingCanvas(QWidget):
    """A square paper the user draws a digit (or a number) on.

    Signals: ``changed`` after every change of the drawing or of what undo can do (each stroke
    segment, the pen lifted, undo, clear); ``strokeFinished`` when the pen is lifted.
    """

    changed = Signal()
    strokeFinished = Signal()

    def __init__(
        self, parent: QWidget | None = None, side: int = 280, pen_width: int = DEFAULT_PEN_WIDTH
    ) -> None:
        super().__init__(parent)
        self._side = side
        self._pen_width = int(pen_width)
        self._strokes: list[Stroke] = []
        # Undo history: ("stroke", None) for a stroke added, ("clear", strokes) for a clear.
        self._history: list[tuple[str, list[Stroke] | None]] = []
        self._current: Stroke | None = None
        self._pixmap = QPixmap()
        self.setFixedSize(side, side)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw a digit or a number; the prediction updates as you draw")
        self._render_all()

    # --- public API -------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        return QSize(self._side, self._side)

    def pen_width(self) -> int:
        return self._pen_width

    def set_pen_width(self, width: int) -> None:
        """Width for the next strokes (existing strokes keep theirs, as on paper)."""
        self._pen_width = max(MIN_PEN_WIDTH, min(MAX_PEN_WIDTH, int(width)))

    def is_blank(self) -> bool:
        return not self._strokes and self._current is None

    def can_undo(self) -> bool:
        return bool(self._history)

    def strokes(self) -> list[Stroke]:
        return list(self._strokes)

    def clear(self) -> None:
        """Wipe the paper; undo brings the drawing back."""
        if not self._strokes:
            return
        self._history.append(("clear", self._strokes))
        self._strokes = []
        self._render_all()
        self.changed.emit()

    def undo(self) -> None:
        """Remove the last stroke, or bring back what the last clear wiped."""
        if not self._history:
            return
        kind, saved = self._history.pop()
        if kind == "stroke":
            self._strokes.pop()
        else:
            assert saved is not None  # "clear" entries always carry the wiped strokes
            self._strokes = saved
        self._render_all()
        self.changed.emit()

    def add_stroke(
        self,
        points: Iterable[tuple[float, float]],
        width: float | None = None,
        pressures: Sequence[float] | None = None,
    ) -> None:
        """Draw a stroke through logical ``points`` as if the pen had traced it.

        Used by tests and scripts (and equivalent to mouse input): one ``changed`` signal.
        """
        pts = [QPointF(float(x), float(y)) for x, y in points]
        if not pts:
            return
        pr = [1.0] * len(pts) if pressures is None else [float(p) for p in pressures]
        if len(pr) != len(pts):
            raise ValueError("add_stroke: pressures must match points")
        stroke = Stroke(float(width or self._pen_width), pts, pr)
        self._commit(stroke)
        self._paint_stroke(stroke)
        self.update()
        self.changed.emit()
        self.strokeFinished.emit()

    def to_image(self) -> QImage:
        """The drawing as shown (dark ink on white), in device pixels."""
        return self._pixmap.toImage()

    def ink_array(self) -> np.ndarray:
        """The drawing as ``uint8 (H, W)`` *ink* intensity: 255 full ink, 0 bare paper.

        That is MNIST's polarity (white digit on black), so preprocessing needs no guess about
        which of ink and paper is which. H and W are device pixels.
        """
        img = self._pixmap.toImage().convertToFormat(QImage.Format.Format_Grayscale8)
        h, w, stride = img.height(), img.width(), img.bytesPerLine()
        buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=h * stride)
        gray = buf.reshape(h, stride)[:, :w]
        return (255 - gray).astype(np.uint8)  # copy: the QImage buffer dies with ``img``

    def png_bytes(self) -> bytes:
        """The drawing (as shown) encoded as PNG."""
        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        self._pixmap.save(buf, "PNG")
        buf.close()
        return bytes(data.data())

    def save_png(self, path: str | Path) -> Path:
        """Write the drawing (as shown) to ``path`` as PNG, atomically."""
        return backend.write_file(path, self.png_bytes())

    # --- rendering --------------------------------------------------------------------------

    def _new_pixmap(self) -> QPixmap:
        dpr = self.devicePixelRatioF()
        pm = QPixmap(round(self._side * dpr), round(self._side * dpr))
        pm.setDevicePixelRatio(dpr)  # painting on it now uses logical coordinates
        pm.fill(PAPER)
        return pm

    def _render_all(self) -> None:
        self._pixmap = self._new_pixmap()
        for s in self._strokes:
            self._paint_stroke(s)
        if self._current is not None:
            self._paint_stroke(self._current)
        self.update()

    def _pen(self, width: float) -> QPen:
        return QPen(
            INK, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin
        )

    def _paint_segment(self, stroke: Stroke, i: int) -> None:
        """Paint the part of ``stroke`` that point ``i`` added (a dot for the first point)."""
        p = QPainter(self._pixmap)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(self._pen(stroke.pen_width(i)))
        if i == 0:
            p.drawPoint(stroke.points[0])
        else:
            p.drawLine(stroke.points[i - 1], stroke.points[i])
        p.end()

    def _paint_stroke(self, stroke: Stroke) -> None:
        for i in range(len(stroke.points)):
            self._paint_segment(stroke, i)

    def _commit(self, stroke: Stroke) -> None:
        self._strokes.append(stroke)
        self._history.append(("stroke", None))

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.drawPixmap(0, 0, self._pixmap)
        # The paper's edge, so a white canvas stands out on a light window (not part of the
        # drawing: ink_array and save_png read the pixmap, not the screen).
        p.setPen(QPen(self.palette().color(self.palette().ColorRole.Mid), 1))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        p.end()

    def event(self, ev: QEvent) -> bool:
        # Moved to a screen with another pixel ratio: replay the strokes at the new resolution
        # instead of stretching the old pixmap (which would blur on the sharper screen).
        if ev.type() == QEvent.Type.DevicePixelRatioChange:
            self._render_all()
        return super().event(ev)

    # --- pen input --------------------------------------------------------------------------

    def _pen_down(self, pos: QPointF, pressure: float) -> None:
        self._current = Stroke(float(self._pen_width), [pos], [pressure])
        self._paint_segment(self._current, 0)
        self.update()
        self.changed.emit()

    def _pen_move(self, pos: QPointF, pressure: float) -> None:
        s = self._current
        if s is None:
            return
        s.points.append(pos)
        s.pressures.append(pressure)
        self._paint_segment(s, len(s.points) - 1)
        self.update()
        self.changed.emit()

    def _pen_up(self) -> None:
        if self._current is None:
            return
        self._commit(self._current)
        self._current = None
        # The stroke is in the undo history only now: say so, or a window that enables its
        # Undo button on ``changed`` would leave it disabled after the first stroke.
        self.changed.emit()
        self.strokeFinished.emit()

    def mousePressEvent(self, ev: QMouseEvent) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            self._pen_down(ev.position(), 1.0)
            ev.accept()
        else:
            super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:
        if self._current is not None and ev.buttons() & Qt.MouseButton.LeftButton:
            self._pen_move(ev.position(), 1.0)
            ev.accept()
        else:
            super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            self._pen_up()
            ev.accept()
        else:
            super().mouseReleaseEvent(ev)

    def tabletEvent(self, ev: QTabletEvent) -> None:
        # Accepting the tablet event stops Qt from synthesising the duplicate mouse event.
        # Pens without a pressure sensor report 0: draw those at full width.
        pressure = max(0.0, min(1.0, ev.pressure())) or 1.0
        t = ev.type()
        if t == QEvent.Type.TabletPress and ev.button() == Qt.MouseButton.LeftButton:
            self._pen_down(ev.position(), pressure)
        elif t == QEvent.Type.TabletMove and self._current is not None:
            self._pen_move(ev.position(), pressure)
        elif t == QEvent.Type.TabletRelease:
            self._pen_up()
        else:
            ev.ignore()
            return
        ev.accept()
