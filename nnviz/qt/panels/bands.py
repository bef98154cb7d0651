"""Percentile bands over training: the buffer that keeps them and the items that draw them.

``BandHistory`` keeps every layer's bands (weights, gradients, |gradients|) at the steps
statistics were taken, in preallocated arrays; when full it keeps every other point and
goes on, so a run of any length holds at most ``MAX_POINTS`` points per series and its
whole span. ``PercentileBands`` draws one series as nested filled outlines, one
``QGraphicsPathItem`` per band given a new path on each redraw (FillBetweenItem needs two
hidden curves per band and rebuilds its path on each curve's change), and a median line;
``histogram_path`` draws the histogram beside them. ``StepAxis`` labels the training
steps under them, few enough never to run together.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFontMetricsF, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem

from nnviz.core.layer_stats import BAND_PERCENTS
from nnviz.core.snapshot import LayerStats

# Band opacity from the outer band (min-max) inwards: the middle of the distribution is
# the strongest, as in TensorBoard. A dark background needs more to show at all.
BAND_ALPHAS = {False: (40, 70, 105, 150), True: (70, 110, 160, 220)}
MAX_POINTS = 1000  # per series; a full buffer keeps every other point and goes on
MEDIAN = len(BAND_PERCENTS) // 2
# How tall (in decades) the bar of zero gradients is drawn on the log scale's floor when
# no gradient is above zero to size a bin by.
FLOOR_BAR = 0.1


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


def equal_bins(value_range: tuple[float, float], bins: int) -> np.ndarray:
    """The edges of ``bins`` equal bins over a range (one value: a sliver of a bin)."""
    lo, hi = value_range
    return np.linspace(lo, hi if hi > lo else lo + 1e-12, bins + 1)


def floored_histogram(
    counts: np.ndarray, log_range: tuple[float, float], zeros: float, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """A histogram of log10 sizes drawn as the bands are on a log scale with a ``floor``
    (a log10): (counts, bin edges) from the floor up, every count kept.

    The bands draw sizes under the floor, zeros among them, on it; here they go into the
    lowest bin, cut to start at the floor, or into a bar of their own standing on the
    floor (at most a bin tall) when every bin lies above it.
    """
    edges = equal_bins(log_range, len(counts))
    under = float(zeros)
    if len(counts) and np.all(np.isfinite(edges)):
        width = edges[1] - edges[0]
        below = int(np.searchsorted(edges[1:], floor, side="right"))  # bins wholly under
        under += float(np.sum(counts[:below]))
        counts, edges = np.asarray(counts[below:], float), edges[below:].copy()
        if len(counts) and edges[0] <= floor:
            edges[0] = floor
            counts[0] += under
            return counts, edges
    else:  # no size above zero
        width, counts, edges = FLOOR_BAR, np.zeros(0), np.zeros(0)
    if under <= 0:
        return counts, edges
    if not len(counts):
        return np.array([under]), np.array([floor, floor + width])
    # A gap (an empty bin) between the bar on the floor and the lowest sizes above it.
    top = min(floor + width, edges[0])
    return np.concatenate([[under, 0.0], counts]), np.concatenate([[floor, top], edges])


def histogram_path(counts: np.ndarray, edges: np.ndarray) -> QPainterPath:
    """Horizontal bars: counts along x, the values' bins (``edges``) up the y axis, as
    beside the bands."""
    if not len(counts) or not np.all(np.isfinite(edges)):
        return QPainterPath()
    lo, hi = float(edges[0]), float(edges[-1])
    ys = np.concatenate([[lo], np.repeat(edges[1:-1], 2), [hi]])
    xs = np.repeat(np.asarray(counts, float), 2)
    path = pg.arrayToQPath(np.concatenate([[0.0], xs, [0.0]]), np.concatenate([[lo], ys, [hi]]))
    path.closeSubpath()
    return path


LABEL_GAP_PX = 12  # at least this much room between two step labels


def step_label(value: float) -> str:
    """A step count in few characters: 500, 5k, 12.5k, 1.5M."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


class StepAxis(pg.AxisItem):
    """A bottom axis of training steps whose labels never run together.

    pyqtgraph always draws its major ticks' labels, crowded or not: 5000, 10000 and 15000
    under a plot 90 pixels wide ran into "500010000150000". Here the labels are short
    ("5k") and the major ticks are spaced so that each label has room for its width.
    """

    def __init__(self) -> None:
        super().__init__("bottom")

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802 - pyqtgraph's name
        return [step_label(v * scale) for v in values]

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:  # noqa: N802, N803 - pyqtgraph's names
        levels = super().tickSpacing(minVal, maxVal, size)
        span = maxVal - minVal
        if not levels or not (span > 0 and size > 0):
            return levels
        major = levels[0][0]
        if self._labels_fit(major, minVal, maxVal, size):
            return levels
        # The next 1, 2 or 5 times a power of ten whose labels all have room.
        power = 10.0 ** math.floor(math.log10(major))
        while not self._labels_fit(major, minVal, maxVal, size) and major < span:
            major = next(m * power for m in (1, 2, 5, 10) if m * power > major * 1.0001)
            power = 10.0 ** math.floor(math.log10(major))
        return [(major, 0.0)]  # no minor level: its labels could crowd in again

    def _labels_fit(self, major: float, low: float, high: float, size: float) -> bool:
        """Whether labels every ``major`` steps stand apart, ``LABEL_GAP_PX`` or more."""
        ticks = np.arange(math.ceil(low / major), math.floor(high / major) + 1) * major
        if len(ticks) < 2:
            return True
        widest = max(self.label_width(v) for v in ticks[:50])
        return major / (high - low) * size >= widest + LABEL_GAP_PX

    def label_width(self, value: float) -> float:
        """How wide the label of ``value`` is drawn, in pixels."""
        font = self.style.get("tickFont") or self.font()
        return QFontMetricsF(font).horizontalAdvance(step_label(value))
