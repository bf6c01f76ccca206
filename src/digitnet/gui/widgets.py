"""Small display widgets, each painting plain data handed to it from the main thread.

They are drawn with ``QPainter`` rather than QtCharts so the app needs nothing beyond
PySide6-Essentials. None of them computes anything about digits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFontMetricsF,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = [
    "Box",
    "ImageView",
    "LineChart",
    "NetworkInputView",
    "ProbabilityBars",
    "gray_to_qimage",
]

ACCENT = QColor(38, 110, 200)
GOOD = QColor(30, 140, 60)
BAD = QColor(200, 40, 40)


def gray_to_qimage(a: np.ndarray) -> QImage:
    """``(H, W)`` float in [0, 1] or uint8 -> an owned ``Format_Grayscale8`` QImage."""
    arr = np.asarray(a)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape
    # .copy(): QImage would otherwise point into the numpy buffer, which Python may free.
    return QImage(arr.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def _text_color(widget: QWidget) -> QColor:
    return widget.palette().color(QPalette.ColorRole.WindowText)


class ProbabilityBars(QWidget):
    """Ten horizontal bars, one per digit; the most probable one is highlighted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._p: np.ndarray | None = None
        self.setMinimumSize(180, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(240, 230)

    def probabilities(self) -> np.ndarray | None:
        return None if self._p is None else self._p.copy()

    def set_probabilities(self, p: Sequence[float] | np.ndarray | None) -> None:
        """Show ``p`` (10 probabilities), or empty bars for ``None`` (nothing to read)."""
        if p is None:
            self._p = None
        else:
            arr = np.asarray(p, dtype=np.float64).reshape(-1)
            if arr.shape != (10,):
                raise ValueError(f"expected 10 probabilities, got {arr.shape[0]}")
            self._p = arr
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = QFontMetricsF(self.font())
        fg = _text_color(self)
        label_w = fm.horizontalAdvance("8") + 10
        pct_w = fm.horizontalAdvance("100.0 %") + 8
        row_h = self.height() / 10.0
        bar_h = max(4.0, min(row_h * 0.62, 22.0))
        track = QColor(fg)
        track.setAlpha(28)
        best = None if self._p is None else int(np.argmax(self._p))
        for d in range(10):
            y = d * row_h
            cy = y + row_h / 2
            p.setPen(fg)
            p.drawText(
                QRectF(0, y, label_w - 6, row_h),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                str(d),
            )
            x0 = label_w
            full = max(10.0, self.width() - label_w - pct_w)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(track)
            p.drawRoundedRect(QRectF(x0, cy - bar_h / 2, full, bar_h), 3, 3)
            if self._p is None:
                continue
            v = float(self._p[d])
            color = ACCENT if d == best else QColor(130, 150, 175)
            p.setBrush(color)
            if v > 0:
                p.drawRoundedRect(QRectF(x0, cy - bar_h / 2, max(2.0, v * full), bar_h), 3, 3)
            p.setPen(fg)
            f = p.font()
            f.setBold(d == best)
            p.setFont(f)
            p.drawText(
                QRectF(x0 + full + 4, y, pct_w - 4, row_h),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{100 * v:.1f} %",
            )
            f.setBold(False)
            p.setFont(f)
        p.end()


class NetworkInputView(QWidget):
    """The 28x28 image(s) the network actually saw, scaled up without smoothing.

    A multi-digit drawing gives one image per digit; clicking one selects it (``selected``), so
    its probabilities can be shown in the bars.
    """

    selected = Signal(int)

    def __init__(self, parent: QWidget | None = None, cell: int = 84) -> None:
        super().__init__(parent)
        self._images: list[QImage] = []
        self._labels: list[str] = []
        self._current = 0
        self._cell = cell
        self.setMinimumSize(cell + 8, cell + 26)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("What the network saw: each digit as a 28x28 MNIST-style image")

    def sizeHint(self) -> QSize:
        return QSize(max(1, len(self._images)) * (self._cell + 8), self._cell + 26)

    def count(self) -> int:
        return len(self._images)

    def current(self) -> int:
        return self._current

    def set_images(self, images: Sequence[np.ndarray], labels: Sequence[str] = ()) -> None:
        self._images = [gray_to_qimage(a) for a in images]
        self._labels = list(labels) + [""] * (len(self._images) - len(labels))
        self._current = 0
        self.updateGeometry()
        self.update()

    def _cell_size(self) -> float:
        n = max(1, len(self._images))
        return max(28.0, min(float(self._cell), (self.width() - 8.0 * n) / n))

    def mousePressEvent(self, ev: QMouseEvent) -> None:
        c = self._cell_size() + 8
        i = int(ev.position().x() // c)
        if 0 <= i < len(self._images):
            self._current = i
            self.update()
            self.selected.emit(i)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        fg = _text_color(self)
        if not self._images:
            p.setPen(fg)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "nothing to read yet")
            p.end()
            return
        c = self._cell_size()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        for i, img in enumerate(self._images):
            x = 4 + i * (c + 8)
            target = QRectF(x, 4, c, c)
            p.drawImage(target, img)
            if len(self._images) > 1 and i == self._current:
                p.setPen(QPen(ACCENT, 2))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(target.adjusted(-2, -2, 2, 2))
            p.setPen(fg)
            p.drawText(QRectF(x, 6 + c, c, 18), Qt.AlignmentFlag.AlignCenter, self._labels[i])
        p.end()


@dataclass
class Box:
    """A rectangle in image pixels with its label; ``ok`` colours it (None: neutral)."""

    x0: float
    y0: float
    x1: float
    y1: float
    label: str = ""
    ok: bool | None = None


class ImageView(QWidget):
    """A loaded image, scaled to fit, with a box (and its digit) around each digit found."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._boxes: list[Box] = []
        self._placeholder = "Open an image (Ctrl+O) or drop image files or a folder here"
        self.setMinimumSize(280, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None, boxes: Sequence[Box] = ()) -> None:
        self._pixmap = None if image is None or image.isNull() else QPixmap.fromImage(image)
        self._boxes = list(boxes)
        self.update()

    def boxes(self) -> list[Box]:
        return list(self._boxes)

    def has_image(self) -> bool:
        return self._pixmap is not None

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        bg = QColor(self.palette().color(QPalette.ColorRole.Base))
        p.fillRect(self.rect(), bg)
        if self._pixmap is None:
            p.setPen(_text_color(self))
            p.drawText(
                self.rect().adjusted(12, 12, -12, -12),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._placeholder,
            )
            p.end()
            return
        # Work in the image's own pixels so boxes from the segmentation line up exactly.
        pw = self._pixmap.width() / self._pixmap.devicePixelRatio()
        ph = self._pixmap.height() / self._pixmap.devicePixelRatio()
        s = min((self.width() - 8) / pw, (self.height() - 8) / ph)
        ox, oy = (self.width() - pw * s) / 2, (self.height() - ph * s) / 2
        p.drawPixmap(QRectF(ox, oy, pw * s, ph * s), self._pixmap, QRectF(self._pixmap.rect()))
        fm = QFontMetricsF(self.font())
        for b in self._boxes:
            color = ACCENT if b.ok is None else (GOOD if b.ok else BAD)
            r = QRectF(ox + b.x0 * s, oy + b.y0 * s, (b.x1 - b.x0) * s, (b.y1 - b.y0) * s)
            p.setPen(QPen(color, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(r)
            if b.label:
                tw = fm.horizontalAdvance(b.label) + 8
                th = fm.height() + 2
                tag = QRectF(r.left(), max(0.0, r.top() - th), tw, th)
                p.fillRect(tag, color)
                p.setPen(QColor("white"))
                p.drawText(tag, Qt.AlignmentFlag.AlignCenter, b.label)
        p.end()


class LineChart(QWidget):
    """A small line chart: x = epoch, one line per series, legend, auto-scaled y axis."""

    COLORS = (ACCENT, QColor(230, 120, 20), GOOD, QColor(140, 60, 170))

    def __init__(
        self, title: str, y_label: str = "", percent: bool = False, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._title = title
        self._y_label = y_label
        self._percent = percent
        self._series: dict[str, list[tuple[float, float]]] = {}
        self.setMinimumSize(260, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(380, 240)

    def clear(self) -> None:
        self._series = {}
        self.update()

    def add_point(self, series: str, x: float, y: float) -> None:
        if y is None or not math.isfinite(float(y)):
            return  # a diverged run logs NaN: leave a gap rather than wreck the y range
        self._series.setdefault(series, []).append((float(x), float(y)))
        self.update()

    def series(self) -> dict[str, list[tuple[float, float]]]:
        return {k: list(v) for k, v in self._series.items()}

    def _y_range(self) -> tuple[float, float]:
        ys = [y for pts in self._series.values() for _, y in pts]
        if not ys:
            return (0.0, 1.0)
        lo, hi = min(ys), max(ys)
        if self._percent:
            lo, hi = max(0.0, lo), min(1.0, hi)
        if hi - lo < 1e-9:
            pad = 0.05 if self._percent else max(abs(hi) * 0.1, 0.05)
            lo, hi = lo - pad, hi + pad
        pad = (hi - lo) * 0.08
        lo, hi = lo - pad, hi + pad
        if self._percent:
            lo, hi = max(0.0, lo), min(1.0, hi)
        elif min(ys) >= 0:
            lo = max(0.0, lo)
        return lo, hi

    @staticmethod
    def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
        span = hi - lo
        if span <= 0:
            return [lo]
        raw = span / n
        mag = 10 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
        start = math.ceil(lo / step) * step
        ticks = []
        t = start
        while t <= hi + 1e-12:
            ticks.append(round(t, 10))
            t += step
        return ticks

    def _fmt(self, v: float) -> str:
        if self._percent:
            return f"{100 * v:.3g}%"
        return f"{v:.3g}"

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = QFontMetricsF(self.font())
        fg = _text_color(self)
        grid = QColor(fg)
        grid.setAlpha(40)
        p.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        lo, hi = self._y_range()
        yticks = self._nice_ticks(lo, hi)
        left = max(fm.horizontalAdvance(self._fmt(t)) for t in yticks) + 12
        top = fm.height() + 10
        bottom = fm.height() + 12
        right = fm.horizontalAdvance("00") + 8  # room for the last point and its x label
        plot = QRectF(
            left,
            top,
            max(10.0, self.width() - left - right),
            max(10.0, self.height() - top - bottom),
        )
        p.setPen(fg)
        f = p.font()
        f.setBold(True)
        p.setFont(f)
        p.drawText(
            QRectF(left, 2, plot.width(), fm.height() + 4),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            self._title,
        )
        f.setBold(False)
        p.setFont(f)
        xs = [x for pts in self._series.values() for x, _ in pts]
        x_lo = min(xs) if xs else 1.0
        x_hi = max(xs) if xs else 2.0
        if x_hi - x_lo < 1e-9:
            x_lo, x_hi = x_lo - 0.5, x_hi + 0.5

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(
                plot.left() + (x - x_lo) / (x_hi - x_lo) * plot.width(),
                plot.bottom() - (y - lo) / (hi - lo) * plot.height(),
            )

        for t in yticks:
            y = to_px(x_lo, t).y()
            p.setPen(QPen(grid, 1))
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(fg)
            p.drawText(
                QRectF(0, y - fm.height() / 2, left - 6, fm.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                self._fmt(t),
            )
        # Integer epochs on the x axis, thinned so labels never overlap.
        first, last = math.ceil(x_lo), math.floor(x_hi)
        if last >= first:
            label_w = fm.horizontalAdvance(str(last)) + 10
            every = max(1, math.ceil((last - first + 1) * label_w / max(plot.width(), 1.0)))
            for e in range(first, last + 1, every):
                x = to_px(e, lo).x()
                p.drawText(
                    QRectF(x - 20, plot.bottom() + 2, 40, fm.height() + 4),
                    Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                    str(e),
                )
        p.setPen(QPen(fg, 1))
        p.drawLine(plot.bottomLeft(), plot.bottomRight())
        p.drawLine(plot.bottomLeft(), plot.topLeft())
        if not self._series:
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "no epochs yet")
        legend_x = plot.right()
        for i, name in enumerate(reversed(list(self._series))):
            color = self.COLORS[(len(self._series) - 1 - i) % len(self.COLORS)]
            tw = fm.horizontalAdvance(name)
            legend_x -= tw + 26
            p.setPen(QPen(color, 3))
            ly = top / 2 + 1
            p.drawLine(QPointF(legend_x, ly), QPointF(legend_x + 14, ly))
            p.setPen(fg)
            p.drawText(
                QRectF(legend_x + 18, 2, tw + 4, fm.height() + 4),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                name,
            )
        for i, pts in enumerate(self._series.values()):
            color = self.COLORS[i % len(self.COLORS)]
            p.setPen(QPen(color, 2))
            p.setBrush(color)
            prev = None
            for x, y in pts:
                q = to_px(x, y)
                if prev is not None:
                    p.drawLine(prev, q)
                p.drawEllipse(q, 3, 3)
                prev = q
        p.end()
