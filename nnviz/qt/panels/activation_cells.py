"""The activations panel's strips of cells, painted by one widget.

Every strip is a small RGBA picture (one block of pixels per unit, see
``activations._draw_strip``) that this widget scales to the cell size with
nearest-neighbour sampling, under its layer's caption. The strips change at every mouse
move of a stroke on the canvas; as a pyqtgraph scene (an ImageItem and a TextItem per
layer in a ViewBox) their repaint cost about a millisecond, several times this widget's.
The background and captions change only with the size, the model or the theme, so they
are drawn once into a pixmap and copied at each paint.

Coordinates: "cell" coordinates have one unit per cell, x from the left edge of a full
row of ``COLUMNS`` cells, y from the top; ``to_widget`` and ``to_cells`` convert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pyqtgraph.graphicsItems.ScatterPlotItem import Symbols
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import QWidget

from nnviz.core.inspect import LayerInfo
from nnviz.qt.panels.intervention_menu import MARKER_COLOUR

COLUMNS = 16  # cells per row: 128 units -> 8 rows of 16
CELL_PX = 8  # image pixels per cell, the last row and column of each a transparent gap
CAPTION_PX = 20  # a caption's line above its strip, in screen pixels at any size
LAYER_GAP = 0.6  # between one strip and the next caption, in cells


@dataclass
class Strip:
    """One layer's cells: what they show and where they sit (in cell coordinates)."""

    layer: LayerInfo
    caption: str
    rows: int
    cols: int
    colours: np.ndarray  # (rows * CELL_PX, cols * CELL_PX, 4) RGBA, the gaps transparent
    image: QImage  # wraps ``colours`` (no copy): rewriting them and repainting shows them
    rect: QRectF = field(default_factory=QRectF)
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    levels: tuple[float, float] = (0.0, 1.0)
    lut: np.ndarray | None = None  # the colour map the cells were coloured with

    @property
    def per_channel(self) -> bool:
        return len(self.layer.output_shape) > 2


def new_strip(layer: LayerInfo, caption: str, units: int) -> Strip:
    """A strip of ``units`` cells, ``COLUMNS`` to a row, all transparent."""
    cols = max(1, min(units, COLUMNS))
    rows = max(1, -(-units // cols))
    colours = np.zeros((rows * CELL_PX, cols * CELL_PX, 4), np.uint8)
    h, w = colours.shape[:2]
    image = QImage(colours.data, w, h, w * 4, QImage.Format.Format_RGBA8888)
    return Strip(layer, caption, rows, cols, colours, image)


class ActivationCells(QWidget):
    """The strips, their captions, a message when there are none, and markers on the
    cells that are switched off or clamped."""

    hovered = Signal(QPointF)  # the mouse, in cell coordinates
    left = Signal()  # the mouse left the widget
    pressed = Signal(QPointF, Qt.MouseButton, QPoint)  # cell point, button, global position

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.strips: list[Strip] = []
        self.message = ""  # shown when there are no strips
        self.marked: dict[object, float] = {}  # (layer, unit) -> value, as UnitMarkers has
        self._spots: list[tuple[float, float, float, float]] = []  # x, y, size, value
        self.scale = 2.0  # pixels per cell
        self._x0 = 0.0  # where cell x 0 is, in pixels
        self._background, self._text = QColor(255, 255, 255), QColor(0, 0, 0)
        self._outline = QColor(255, 255, 255)
        self._backdrop: QPixmap | None = None  # background and captions, for this size
        self.setMouseTracking(True)
        # Every pixel is painted (the backdrop fills the widget): nothing beneath repaints.
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(400, 300)

    # ----- content -----------------------------------------------------------------------
    def set_strips(self, strips: Sequence[Strip], message: str = "") -> None:
        """New strips (a new model); ``message`` is shown when there are none."""
        self.strips = list(strips)
        self.message = message
        self.lay_out()

    def set_colours(self, background: QColor, text: QColor) -> None:
        """The theme: background and caption colours; markers are outlined in the background."""
        self._background, self._text, self._outline = background, text, background
        self._backdrop = None
        self.update()

    def background(self) -> QColor:
        return self._background

    def show_units(self, spots: Iterable[tuple[object, float, float, float, float]]) -> None:
        """Mark (key, x, y, size, value) spots, as ``UnitMarkers.show_units`` does: x, y
        the cell's centre and size the marker's width, in cell coordinates."""
        spots = list(spots)
        self.marked = {key: value for key, _, _, _, value in spots}
        self._spots = [(x, y, size, value) for _, x, y, size, value in spots]
        self.update()

    # ----- geometry ----------------------------------------------------------------------
    def lay_out(self) -> None:
        """Square cells, as large as fit, from the top: the strips read top-down to the
        output below. Captions keep their height in pixels, so a small panel shrinks
        the cells, not the text."""
        width, height = max(self.width(), 1), max(self.height(), 1)
        rows = sum(strip.rows for strip in self.strips)
        gaps = LAYER_GAP * max(len(self.strips) - 1, 0) + 0.2
        wide = COLUMNS + 0.4
        scale = width / wide
        if rows:
            scale = min(scale, (height - CAPTION_PX * len(self.strips)) / (rows + gaps))
        self.scale = max(scale, 2.0)
        self._x0 = (width - wide * self.scale) / 2 + 0.2 * self.scale
        caption = CAPTION_PX / self.scale
        y = 0.0
        for strip in self.strips:
            strip.rect = QRectF((COLUMNS - strip.cols) / 2, y + caption, strip.cols, strip.rows)
            y += caption + strip.rows + LAYER_GAP
        self._backdrop = None
        self.update()

    def height_for(self, scale: float) -> float:
        """The height that draws the strips with cells ``scale`` pixels wide (and their
        captions); more than that at this width only leaves room below them."""
        if not self.strips:
            return 2 * CAPTION_PX  # the message
        rows = sum(strip.rows for strip in self.strips)
        gaps = LAYER_GAP * (len(self.strips) - 1) + 0.2
        return CAPTION_PX * len(self.strips) + (rows + gaps) * scale

    def widest_scale(self, width: float) -> float:
        """The largest cells that a row of ``COLUMNS`` fits into ``width`` pixels."""
        return width / (COLUMNS + 0.4)

    def to_widget(self, point: QPointF) -> QPointF:
        """A point in cell coordinates, in this widget's pixels."""
        return QPointF(self._x0 + point.x() * self.scale, point.y() * self.scale)

    def to_cells(self, pos: QPointF) -> QPointF:
        """A point in this widget's pixels, in cell coordinates."""
        return QPointF((pos.x() - self._x0) / self.scale, pos.y() / self.scale)

    def _on_screen(self, rect: QRectF) -> QRectF:
        return QRectF(self.to_widget(rect.topLeft()), self.to_widget(rect.bottomRight()))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self.lay_out()

    # ----- painting ----------------------------------------------------------------------
    def _draw_backdrop(self) -> QPixmap:
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap(self.size() * ratio)
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(self._background)
        with QPainter(pixmap) as painter:
            painter.setPen(self._text)
            painter.setFont(self.font())
            metrics = painter.fontMetrics()
            for strip in self.strips:
                top = self.to_widget(strip.rect.topLeft()).y() - CAPTION_PX
                text = metrics.elidedText(strip.caption, Qt.TextElideMode.ElideRight, self.width())
                painter.drawText(
                    QRectF(0, top, self.width(), CAPTION_PX - 2),
                    Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                    text,
                )
            if not self.strips and self.message:
                painter.drawText(
                    QRectF(0, 0, self.width(), 2 * CAPTION_PX),
                    Qt.AlignmentFlag.AlignCenter,
                    self.message,
                )
        return pixmap

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt)
        if self._backdrop is None or self._backdrop.deviceIndependentSize() != self.size():
            self._backdrop = self._draw_backdrop()
        with QPainter(self) as painter:
            painter.drawPixmap(0, 0, self._backdrop)
            for strip in self.strips:  # nearest-neighbour: crisp cells at any scale
                painter.drawImage(self._on_screen(strip.rect), strip.image)
            if self._spots:
                self._draw_markers(painter)

    def _draw_markers(self, painter: QPainter) -> None:
        """An X where a unit is switched off, a square ring where it is clamped: the
        symbols ``UnitMarkers`` draws in the other panels."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for x, y, size, value in self._spots:
            centre, side = self.to_widget(QPointF(x, y)), size * self.scale
            if value == 0.0:
                painter.save()
                painter.translate(centre)
                painter.scale(side, side)
                painter.setPen(QPen(self._outline, 0))  # cosmetic: 1 px at any scale
                painter.setBrush(MARKER_COLOUR)
                painter.drawPath(Symbols["x"])
                painter.restore()
            else:
                painter.setPen(QPen(MARKER_COLOUR, 3))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(QRectF(centre.x() - side / 2, centre.y() - side / 2, side, side))

    # ----- mouse -------------------------------------------------------------------------
    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        self.hovered.emit(self.to_cells(event.position()))
        super().mouseMoveEvent(event)

    def leaveEvent(self, event: object) -> None:  # noqa: N802 (Qt)
        self.left.emit()
        super().leaveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        self.pressed.emit(
            self.to_cells(event.position()), event.button(), event.globalPosition().toPoint()
        )
        event.accept()
