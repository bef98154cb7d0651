"""Percentile bands over training: the buffer that keeps them and the items that draw them.

``BandHistory`` keeps every layer's bands (weights, gradients, |gradients|) at the steps
statistics were taken, in preallocated arrays; when full it keeps every other point and
goes on, so a run of any length holds at most ``MAX_POINTS`` points per series and its
whole span. ``PercentileBands`` draws one series as nested filled outlines, one
``QGraphicsPathItem`` per band given a new path on each redraw (FillBetweenItem needs two
hidden curves per band and rebuilds its path on each curve's change), and a median line.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem

from nnviz.core.layer_stats import BAND_PERCENTS
from nnviz.core.snapshot import LayerStats

# Band opacity from the outer band (min-max) inwards: the middle of the distribution is
# the strongest, as in TensorBoard. A dark background needs more to show at all.
BAND_ALPHAS = {False: (40, 70, 105, 150), True: (70, 110, 160, 220)}
MAX_POINTS = 1000  # per series; a full buffer keeps every other point and goes on
MEDIAN = len(BAND_PERCENTS) // 2


class BandHistory:
    """Every layer's bands over training steps, thinned to at most ``capacity`` points."""

    def __init__(self, capacity: int = MAX_POINTS) -> None:
        self.capacity = capacity
        self.clear()

    def clear(self) -> None:
        self.names: list[str] = []
        self.n = 0
        self.latest: LayerStats | None = None
        self._steps = np.zeros(0)
        self._bands = np.zeros((0, 0, 3, len(BAND_PERCENTS)))

    def add(self, stats: LayerStats) -> None:
        names = [r.name for r in stats.layers]
        # Another model, or a run that starts over at an earlier step: a new history.
        if names != self.names or (self.n and stats.step < self._steps[self.n - 1]):
            self.clear()
            self.names = names
            self._steps = np.zeros(self.capacity)
            self._bands = np.zeros((self.capacity, len(names), 3, len(BAND_PERCENTS)))
        if self.n == self.capacity:
            half = self.capacity // 2
            self._steps[:half] = self._steps[1 : self.capacity : 2]
            self._bands[:half] = self._bands[1 : self.capacity : 2]
            self.n = half
        self._steps[self.n] = stats.step
        for i, r in enumerate(stats.layers):
            self._bands[self.n, i] = (r.weight_bands, r.gradient_bands, r.gradient_size_bands)
        self.n += 1
        self.latest = stats

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self.n]

    def weights(self, layer: int) -> np.ndarray:
        """(points, percentiles) of a layer's weights."""
        return self._bands[: self.n, layer, 0]

    def gradients(self, layer: int, sizes: bool) -> np.ndarray:
        """(points, percentiles) of a layer's gradients, or of their sizes |gradient|."""
        return self._bands[: self.n, layer, 2 if sizes else 1]


class PercentileBands:
    """Nested percentile bands and a median line of one series in one plot."""

    def __init__(self, plot: pg.PlotItem, colour: QColor) -> None:
        self.colour = colour
        self.fills: list[QGraphicsPathItem] = []
        for _ in BAND_ALPHAS[False]:
            fill = QGraphicsPathItem()
            fill.setPen(QPen(Qt.PenStyle.NoPen))
            plot.addItem(fill)
            self.fills.append(fill)
        self.median = pg.PlotCurveItem()
        plot.addItem(self.median)
        self.set_theme(dark=False)

    def set_data(self, x: np.ndarray, bands: np.ndarray) -> None:
        last = bands.shape[1] - 1
        for k, fill in enumerate(self.fills):
            fill.setPath(band_path(x, bands[:, k], bands[:, last - k]))
        self.median.setData(x, bands[:, MEDIAN])

    def set_theme(self, dark: bool) -> None:
        c = self.colour
        for fill, alpha in zip(self.fills, BAND_ALPHAS[dark], strict=True):
            fill.setBrush(QBrush(QColor(c.red(), c.green(), c.blue(), alpha)))
        self.median.setPen(pg.mkPen(c.lighter(160) if dark else c.darker(140), width=1))


def band_path(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> QPainterPath:
    """A closed outline from ``upper`` along x and back along ``lower``."""
    if len(x) == 0:
        return QPainterPath()
    if len(x) == 1:  # one point: a sliver, so a single collection still shows
        x = np.array([x[0] - 0.5, x[0] + 0.5])
        lower, upper = np.repeat(lower, 2), np.repeat(upper, 2)
    path = pg.arrayToQPath(np.concatenate([x, x[::-1]]), np.concatenate([upper, lower[::-1]]))
    path.closeSubpath()
    return path


def histogram_path(counts: np.ndarray, value_range: tuple[float, float]) -> QPainterPath:
    """Horizontal bars: counts along x, the values' bins up the y axis (beside the bands)."""
    lo, hi = value_range
    if not len(counts) or not (math.isfinite(lo) and math.isfinite(hi)):
        return QPainterPath()
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-12, len(counts) + 1)
    ys = np.concatenate([[edges[0]], np.repeat(edges[1:-1], 2), [edges[-1]]])
    xs = np.repeat(np.asarray(counts, float), 2)
    path = pg.arrayToQPath(np.concatenate([[0.0], xs, [0.0]]), np.concatenate([[lo], ys, [hi]]))
    path.closeSubpath()
    return path
