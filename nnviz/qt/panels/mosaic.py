"""Drawing pieces shared by the image panels (feature maps, filters).

``Mosaic`` lays many small maps out as ONE picture with transparent gaps: one
ImageItem per layer costs about a millisecond where an item per map costs ten. The
helpers give every image panel the same plot, symmetric levels for signed values,
colour bars, read-outs, message page and theme.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
import torch
from numpy.lib.stride_tricks import as_strided
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QLabel,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.core.inspect import LayerInfo, summarize
from nnviz.qt.colours import SIGNED
from nnviz.state import Session

# The signed colour map's name: whoever is given it draws in ``nnviz.qt.colours``' map.
DIVERGING = SIGNED
SEQUENTIAL = "viridis"  # for values that are never negative (after a ReLU)


# ----- pictures of layers, shared with the filters panel ---------------------------------
class Mosaic:
    """A rows x cols grid of equal tiles in one float32 image; gaps are NaN (transparent)."""

    def __init__(self, rows: int, cols: int, tile_h: int, tile_w: int, gap: int = 1) -> None:
        self.rows, self.cols, self.tile_h, self.tile_w, self.gap = rows, cols, tile_h, tile_w, gap
        height, width = rows * (tile_h + gap) - gap, cols * (tile_w + gap) - gap
        self.image = np.full((height, width), np.nan, np.float32)
        item = self.image.itemsize
        # tiles[r, y, c, x] is a writable view into the image: filling it fills the
        # picture, with no allocation per frame.
        self.tiles = as_strided(
            self.image,
            shape=(rows, tile_h, cols, tile_w),
            strides=((tile_h + gap) * width * item, width * item, (tile_w + gap) * item, item),
        )

    @property
    def layout(self) -> tuple[int, int, int, int, int]:
        return self.rows, self.cols, self.tile_h, self.tile_w, self.gap

    def tile(self, row: int, col: int) -> np.ndarray:
        """The (tile_h, tile_w) tile at ``row``, ``col`` (a view)."""
        return self.tiles[row, :, col, :]

    def fill_grid(self, grid: np.ndarray) -> None:
        """Fill every tile from a (rows, cols, tile_h, tile_w) array."""
        self.tiles[...] = grid.transpose(0, 2, 1, 3)

    def fill_reading_order(self, stack: np.ndarray) -> None:
        """Tiles in reading order from an (n, tile_h, tile_w) stack; the rest stay empty."""
        full, rest = divmod(len(stack), self.cols)
        if full:
            grid = stack[: full * self.cols].reshape(full, self.cols, self.tile_h, self.tile_w)
            self.tiles[:full] = grid.transpose(0, 2, 1, 3)
        if rest:
            self.tiles[full, :, :rest] = stack[full * self.cols :].transpose(1, 0, 2)

    def origin(self, row: int, col: int) -> tuple[int, int]:
        """Image (x, y) of the tile's top-left pixel."""
        return col * (self.tile_w + self.gap), row * (self.tile_h + self.gap)

    def locate(self, x: float, y: float) -> tuple[int, int, int, int] | None:
        """(row, col, y, x within the tile) under image point (x, y); None on a gap or outside."""
        if not (x >= 0 and y >= 0):  # also refuses NaN
            return None
        row, ty = divmod(int(y), self.tile_h + self.gap)
        col, tx = divmod(int(x), self.tile_w + self.gap)
        if row >= self.rows or col >= self.cols or ty >= self.tile_h or tx >= self.tile_w:
            return None
        return row, col, ty, tx


def tile_scale(
    rows: int, cols: int, tile_h: int, tile_w: int, width: float, height: float
) -> float:
    """Screen pixels per value of a grid of rows x cols tiles (1-value gaps) drawn as large
    as it fits in width x height pixels."""
    return min(width / (cols * (tile_w + 1)), height / (rows * (tile_h + 1)))


def best_wrap(count: int, tile_h: int, tile_w: int, width: float, height: float) -> tuple[int, int]:
    """(rows, cols) of the grid that draws ``count`` tiles largest in width x height."""
    grids = [(math.ceil(count / cols), cols) for cols in range(1, count + 1)]
    return max(grids, key=lambda grid: tile_scale(*grid, tile_h, tile_w, width, height))


def numpy_copy(tensor: torch.Tensor) -> np.ndarray:
    """A float32 numpy copy that training cannot change under the picture."""
    return tensor.detach().cpu().float().numpy().copy()


def tile_ticks(
    count: int, step: int, size: int, label: Callable[[int], str] = str
) -> list[list[tuple[float, str]]]:
    """One labelled tick at the centre of every k-th tile, at most about 16 labels."""
    every = max(1, math.ceil(count / 16))
    return [[(i * step + size / 2, label(i)) for i in range(0, count, every)]]


def image_plot() -> tuple[pg.PlotItem, pg.ImageItem]:
    """A still plot for pictures: square pixels, row 0 on top, no pan, zoom or menu."""
    plot = pg.PlotItem()
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(False, False)
    plot.hideButtons()
    plot.getViewBox().setAspectLocked(True)
    plot.getViewBox().invertY(True)
    plot.hideAxis("bottom")
    plot.hideAxis("left")
    image = pg.ImageItem(axisOrder="row-major")
    plot.addItem(image)
    return plot, image


def fit(plot: pg.PlotItem, shape: tuple[int, ...]) -> None:
    """Show exactly a picture of ``shape`` (rows, cols), with room for an outline."""
    plot.getViewBox().setRange(xRange=(-0.6, shape[1] + 0.6), yRange=(-0.6, shape[0] + 0.6))


def symmetric_limit(values: np.ndarray) -> float:
    """The largest finite |value| rounded up to two significant digits (1 if none).

    Rounded, the levels stay put from one training frame to the next, and so does the
    colour bar: redrawing its axis costs more than the whole mosaic (1.4 ms a frame).
    """
    finite = np.abs(values[np.isfinite(values)])
    m = float(finite.max()) if finite.size else 0.0
    if not m > 0:
        return 1.0
    step = 10.0 ** (math.floor(math.log10(m)) - 1)
    return math.ceil(m / step * (1 - 1e-9)) * step  # 0.7534 -> 0.76; 0.76 stays 0.76


def set_bar_levels(bar: pg.ColorBarItem, levels: tuple[float, float]) -> None:
    """Move the colour bar only when its levels change (its axis redraw is the cost)."""
    if tuple(bar.levels()) != levels:
        bar.setLevels(levels, update_items=False)


def model_layers(session: Session) -> list[LayerInfo]:
    """The loaded model's layers in execution order, or [] when it cannot be run."""
    loaded, module = session.loaded, session.view_model
    if loaded is None or module is None:
        return []
    try:
        return list(summarize(loaded.program or module, loaded.input_shape).layers)
    except NnvizError:
        return []


def readout_label() -> QLabel:
    """A line for hover values; ignored size hints, so text that comes and goes never
    resizes the dock."""
    label = QLabel()
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    return label


def message_pages(panel: QWidget, content: QWidget) -> tuple[QStackedWidget, QLabel]:
    """Fill ``panel`` with ``content`` or, on the second page, a plain centred message."""
    message = QLabel()
    message.setAlignment(Qt.AlignmentFlag.AlignCenter)
    message.setWordWrap(True)
    message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
    pages = QStackedWidget()
    pages.addWidget(content)
    pages.addWidget(message)
    layout = QVBoxLayout(panel)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(pages)
    return pages, message


def apply_palette(
    widget: QWidget,
    views: list[pg.GraphicsLayoutWidget],
    plots: list[pg.PlotItem],
    bars: list[pg.ColorBarItem],
    message: QLabel,
) -> QColor:
    """Colours from the widget palette, so light and dark themes both read; returns the
    text colour."""
    pal = widget.palette()
    bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
    for view in views:
        view.setBackground(bg)
    axes = [plot.getAxis(side) for plot in plots for side in ("left", "top")]
    for axis in [*axes, *(bar.axis for bar in bars)]:
        axis.setPen(fg)
        axis.setTextPen(fg)
        # No SI scaling ("weight (x0.001)", or ticks of 250 for 0.25): the real values.
        # (pyqtgraph 0.14 still scales with auto SI off, unless no range enables it.)
        axis.setSIPrefixEnableRanges(())
        axis.enableAutoSIPrefix(False)
    hint = [0.45 * f + 0.55 * b for f, b in zip(fg.getRgbF(), bg.getRgbF(), strict=True)]
    message.setStyleSheet(f"color: {QColor.fromRgbF(*hint).name()}; font-size: 13pt;")
    return fg


# ----- the panel -------------------------------------------------------------------------
