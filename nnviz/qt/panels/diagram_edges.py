"""Many straight lines of one colour and thickness as one item, cheap to paint.

Qt strokes a pen wider than one pixel through a path: offscreen that cost about 20 us
a line (11 ms a paint for the 606 edges of the "mlp" preset), against about 1 us for a
1-pixel line. A thick edge here is instead a few 1-pixel lines side by side, offset in
device pixels across the line, so a width-3 edge costs about 3 us.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt.internals import PrimitiveArray
from PySide6.QtCore import QLineF, QRectF
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QGraphicsItem

from nnviz.qt import colours

EDGE_WIDTHS, EDGE_ALPHAS = (1, 2, 3), (80, 150, 230)  # pixels and alpha per strength bucket
_SWATCH = '<span style="color:{}">\u25ac\u25ac</span>'


def legend() -> str:
    """The diagram's legend (rich text), in the app's signed colours."""
    scheme = colours.current()
    return (
        f"{_SWATCH.format(scheme.positive)} {scheme.positive_word}: positive weight &nbsp; "
        f"{_SWATCH.format(scheme.negative)} {scheme.negative_word}: negative &nbsp; "
        "thicker = larger |w| &nbsp; fill = activation (output: probability) &nbsp; "
        "right-click a neuron to switch it off"
    )


def edge_colour(positive: bool, bucket: int, thin: float) -> QColor:
    """The pen colour of a strength bucket, the weights' sign in the app's signed colours
    (the ends of the heatmaps' map); ``thin`` fades edges when there are many."""
    colour = colours.current().colour(positive)
    colour.setAlpha(int(EDGE_ALPHAS[bucket] * thin))
    return colour


class EdgeLines(pg.GraphicsObject):
    """Line segments (start, end, start, end, ...) ``width`` device pixels thick."""

    def __init__(self, colour: QColor, width: int = 1) -> None:
        super().__init__()
        self._xy = np.zeros((0, 2))
        self._rect = QRectF()
        # QLineF memory numpy can write into (what PlotCurveItem uses for drawLines).
        self._buffer = PrimitiveArray(QLineF, 4)
        # Repainted whenever anything else in the diagram changes (neurons, labels):
        # drawn once into a cached picture, those repaints are a copy, not 800 lines.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.set_style(colour, width)

    def set_style(self, colour: QColor, width: int) -> None:
        self.pen = pg.mkPen(colour, width=1)  # cosmetic: one device pixel
        self.width = max(1, int(width))
        self.update()

    def set_lines(self, xy: np.ndarray) -> None:
        """Segment ends as a (2 * lines, 2) array: each start followed by its end."""
        self.prepareGeometryChange()
        self._xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if len(self._xy):
            (x0, y0), (x1, y1) = self._xy.min(axis=0), self._xy.max(axis=0)
            self._rect = QRectF(x0, y0, x1 - x0, y1 - y0)
        else:
            self._rect = QRectF()
        self.update()

    def lines(self) -> np.ndarray:
        """The segment ends as set (a copy)."""
        return self._xy.copy()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        # A few pixels of margin for the thickness, in item units.
        px, py = self.pixelWidth() or 0.0, self.pixelHeight() or 0.0
        return self._rect.adjusted(-3 * px, -3 * py, 3 * px, 3 * py)

    def paint(self, painter: QPainter, *_: Any) -> None:
        if not len(self._xy):
            return
        t = painter.transform()
        device = self._xy @ np.array([[t.m11(), t.m12()], [t.m21(), t.m22()]]) + (t.dx(), t.dy())
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(self.pen)
        # Side by side across each line: along y for flat lines, along x for steep ones.
        d = device[1::2] - device[0::2]
        across = np.where(np.abs(d[:, :1]) >= np.abs(d[:, 1:]), (0.0, 1.0), (1.0, 0.0))
        across = np.repeat(across, 2, axis=0)
        self._buffer.resize(len(d))
        lines = self._buffer.ndarray()  # (lines, 4): x1, y1, x2, y2
        for offset in np.arange(self.width) - (self.width - 1) / 2:
            lines[:] = (device + offset * across).reshape(-1, 4)
            painter.drawLines(*self._buffer.drawargs())
        painter.restore()
