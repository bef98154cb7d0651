"""The distributions panel: each layer's weights and gradients over training, as bands.

Like TensorBoard's distributions, a series is drawn as nested bands between percentiles
(min-max, 7-93 %, 16-84 %, 31-69 %) around the median line, one row per layer with
parameters, first layer at the top. Gradients are drawn as sizes |gradient| on a log
scale that all layers share by default, so gradients that vanish on the way back to the
first layers sit orders of magnitude below the last layer's; a toggle shows the signed
gradients on each layer's own linear scale instead. A narrow plot beside each series
shows its histogram now, on the series' own value axis: beside |gradient| on the log
scale, that is a histogram of log10|gradient|, so its bins line up with the bands.

The statistics come as ``LayerStats`` events (a few a second, taken on the training
thread) into a bounded ``BandHistory`` (see ``bands.py``, with the items that draw
them). Items are built once per model; redraw gives them new paths and data, and sets a
plot's range only when the data leaves it, so most redraws repaint no axis.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QPalette, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsPathItem,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.layer_stats import trainable_layers
from nnviz.core.snapshot import LayerRecord, LayerStats
from nnviz.qt.panels.bands import (
    MEDIAN,
    BandHistory,
    PercentileBands,
    StepAxis,
    equal_bins,
    floored_histogram,
    histogram_path,
)
from nnviz.qt.panels.base import Panel
from nnviz.state import PAUSED, RUNNING, Session

WEIGHT_COLOUR = QColor(58, 140, 222)
GRADIENT_COLOUR = QColor(232, 120, 40)
ROW_PX = 150  # height of one layer's row; more layers scroll
X_GROWTH = 1.5  # the step axis grows to this times the steps shown when the data leaves it
NO_MODEL_HINT = "Load a model to see how its weights and gradients change while it trains"
VIEW_ONLY = (
    "A view-only model (opened without its architecture) cannot be trained, so there are "
    "no training statistics"
)
STARTED = "Statistics arrive after the first steps"
NONE_IN_FILE = "No statistics recorded in this file: they arrive with the first training steps"
NONE_YET = "No statistics yet: they arrive with the first training steps"
HOVER_HINT = "Hover over a plot to read its values"


class _LayerRow:
    """One layer's plots: weights over training and their histogram now, and the same
    of its gradients."""

    def __init__(self, graphics: pg.GraphicsLayoutWidget, row: int, name: str) -> None:
        self.name = name
        steps = {"bottom": StepAxis()}
        self.weights_plot: pg.PlotItem = graphics.addPlot(row=row, col=0, axisItems=steps)
        self.weight_histogram_plot: pg.PlotItem = graphics.addPlot(row=row, col=1)
        steps = {"bottom": StepAxis()}
        self.gradients_plot: pg.PlotItem = graphics.addPlot(row=row, col=2, axisItems=steps)
        self.gradient_histogram_plot: pg.PlotItem = graphics.addPlot(row=row, col=3)
        for plot in self.plots:
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(False, False)
            plot.hideButtons()
            plot.disableAutoRange()  # ranges are set in redraw, once per new data
            plot.getAxis("left").setWidth(52)
            plot.getAxis("left").setTickDensity(0.6)
        self.weights = PercentileBands(self.weights_plot, WEIGHT_COLOUR)
        self.gradients = PercentileBands(self.gradients_plot, GRADIENT_COLOUR)
        self.weight_histogram = _histogram_beside(
            self.weight_histogram_plot, self.weights_plot, WEIGHT_COLOUR
        )
        self.gradient_histogram = _histogram_beside(
            self.gradient_histogram_plot, self.gradients_plot, GRADIENT_COLOUR
        )

    @property
    def plots(self) -> tuple[pg.PlotItem, ...]:
        return (
            self.weights_plot,
            self.weight_histogram_plot,
            self.gradients_plot,
            self.gradient_histogram_plot,
        )

    @property
    def histogram_plots(self) -> tuple[pg.PlotItem, ...]:
        return (self.weight_histogram_plot, self.gradient_histogram_plot)


def _histogram_beside(plot: pg.PlotItem, series: pg.PlotItem, colour: QColor) -> QGraphicsPathItem:
    """The bars of a histogram in ``plot``, on the value axis of the ``series`` beside it."""
    plot.setYLink(series)
    plot.hideAxis("left")
    plot.getAxis("bottom").setStyle(showValues=False)
    bars = QGraphicsPathItem()
    bars.setPen(QPen(Qt.PenStyle.NoPen))
    bars.setBrush(QBrush(QColor(colour.red(), colour.green(), colour.blue(), 150)))
    plot.addItem(bars)
    return bars


class DistributionsPanel(Panel):
    """Percentile bands of every layer's weights and gradients over training."""

    title = "Distributions"
    object_name = "distributions"
    area: ClassVar = Qt.DockWidgetArea.TopDockWidgetArea
    max_fps: ClassVar[float] = 1.0  # new statistics twice a second; ~20 ms to draw and paint

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.history = BandHistory()
        self.rows: list[_LayerRow] = []
        self._ranges: dict[Any, tuple[float, float]] = {}

        self.log_scale = QCheckBox("|gradient| on a shared log scale")
        self.log_scale.setChecked(True)
        self.log_scale.setToolTip(
            "On: the size of each gradient, all layers on one log scale, so gradients that "
            "vanish towards the first layers stand out. Off: signed gradients, each layer "
            "on its own linear scale."
        )
        self.readout = QLabel(HOVER_HINT)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        bar.addWidget(self.log_scale)
        bar.addWidget(self.readout, 1)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setToolTip(
            "Bands: min-max, 7-93 %, 16-84 % and 31-69 % of the values; line: the median"
        )
        grid = self.graphics.ci.layout
        for col, stretch in enumerate((5, 1, 5, 1)):
            grid.setColumnStretchFactor(col, stretch)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(self.graphics)

        self.empty_label = QLabel(NO_MODEL_HINT)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.stack = QStackedLayout()
        self.stack.addWidget(self.scroll)
        self.stack.addWidget(self.empty_label)
        self.stack.setCurrentWidget(self.empty_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addLayout(self.stack, 1)
        self._apply_palette()

        self.log_scale.toggled.connect(self._scale_changed)
        self._mouse = pg.SignalProxy(
            self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved
        )
        self.listen(session.events_added, self.add_events)
        self.listen(session.model_loaded, self.clear)
        self.listen(session.status_changed, self.mark_stale)  # the message may change

    # ----- data ----------------------------------------------------------------------------
    def add_events(self, events: list[Any]) -> None:
        """Take the statistics among the reports into the buffer; drawn on ``refresh``."""
        new = False
        for e in events:
            if isinstance(e, LayerStats):
                self.history.add(e)
                new = True
        if new:
            self.mark_stale()

    def clear(self) -> None:
        """Forget the statistics (another model was loaded)."""
        self.history.clear()
        self.mark_stale()

    # ----- drawing -------------------------------------------------------------------------
    def redraw(self) -> None:
        h = self.history
        # Before the first statistics, the rows are laid out for the model's layers: a
        # row costs 80 ms to build (four pyqtgraph plots), better spent when a model is
        # opened than in the middle of training.
        names = h.names if h.n else self._model_layers()
        if [r.name for r in self.rows] != names:
            self._build_rows(names)
        self.stack.setCurrentWidget(self.scroll if h.n else self.empty_label)
        if not h.n or h.latest is None:
            self.empty_label.setText(no_statistics_message(self.session, NO_MODEL_HINT))
            return
        x = h.steps
        sizes = self.log_scale.isChecked()
        floor = self._gradient_floor() if sizes else 0.0
        for i, (row, record) in enumerate(zip(self.rows, h.latest.layers, strict=True)):
            weights = h.weights(i)
            row.weights.set_data(x, weights)
            grads = h.gradients(i, sizes)
            if sizes:
                grads = np.log10(np.maximum(grads, floor))
            row.gradients.set_data(x, grads)
            counts = record.weight_histogram
            row.weight_histogram.setPath(
                histogram_path(counts, equal_bins(record.weight_range, len(counts)))
            )
            self._fit(row.weight_histogram_plot, "x", 0.0, float(counts.max()))
            counts, edges = _gradient_histogram(record, math.log10(floor) if sizes else None)
            row.gradient_histogram.setPath(histogram_path(counts, edges))
            most = float(counts.max()) if len(counts) else 0.0
            self._fit(row.gradient_histogram_plot, "x", 0.0, most)
            self._fit(row.weights_plot, "y", *_span(weights))
            if not sizes:
                self._fit(row.gradients_plot, "y", *_span(grads))
        if sizes:
            # Whole decades, shared by every layer: the range changes rarely, and a layer
            # whose gradients vanish sits visibly below the others.
            top = max(float(h.gradients(i, True)[:, -1].max()) for i in range(len(self.rows)))
            lo = round(math.log10(floor))
            hi = max(math.ceil(math.log10(top)) if top > 0 else lo + 1, lo + 1)
            for row in self.rows:
                self._set_range(row.gradients_plot, "y", lo, hi)
        first, last = float(x[0]), float(x[-1])
        shown = self._ranges.get((id(self.rows[0].weights_plot), "x"))
        if shown is None or shown[0] != first or last > shown[1]:
            # The step axis grows in chunks, so most redraws repaint no axis.
            end = first + max(last - first, 10.0) * X_GROWTH
            for row in self.rows:
                for plot in (row.weights_plot, row.gradients_plot):
                    self._set_range(plot, "x", first, end, padding=0.0)

    def _gradient_floor(self) -> float:
        """The bottom of the shared log scale, a power of ten: a decade or more below the
        smallest positive 16th percentile of any layer. Smaller sizes, zeros among them,
        are drawn on it (the bottom edge of the plot)."""
        h = self.history
        sizes = [h.gradients(i, True) for i in range(len(self.rows))]
        top = max((float(g[:, -1].max()) for g in sizes), default=0.0)
        low = np.concatenate([g[:, 2] for g in sizes]) if sizes else np.zeros(0)
        low = low[low > 0]
        if len(low):
            floor = max(float(low.min()) / 10, top * 1e-12)
        else:
            floor = top * 1e-6 if top > 0 else 1e-12
        return 10.0 ** math.floor(math.log10(floor))

    def _fit(self, plot: pg.PlotItem, axis: str, lo: float, hi: float) -> None:
        """Refit a range when the data leaves it or fills under a third of it."""
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return
        shown = self._ranges.get((id(plot), axis))
        if shown is not None:
            a, b = shown
            if a <= lo and hi <= b and (hi - lo) >= (b - a) / 3:
                return
        span = hi - lo if hi > lo else max(abs(hi), 1e-12)
        margin = 0.0 if lo == 0.0 and axis == "x" else span * 0.1
        self._set_range(plot, axis, lo - margin, hi + span * 0.1)

    def _model_layers(self) -> list[str]:
        """The names the statistics will have: the trainable model's layers with weights."""
        model = self.session.train_model if self.session.trainable else None
        return [name for name, _ in trainable_layers(model)] if model is not None else []

    def _build_rows(self, names: list[str]) -> None:
        """One row per layer; rows already built are kept and renamed, not rebuilt."""
        for row in self.rows[len(names) :]:
            for plot in row.plots:
                self.graphics.removeItem(plot)
        self.rows = self.rows[: len(names)]
        for row, name in zip(self.rows, names, strict=False):
            row.name = name
        for i in range(len(self.rows), len(names)):
            self.rows.append(_LayerRow(self.graphics, i, names[i]))
        self._ranges.clear()
        # Every step axis gets the same range in redraw. Not setXLink: linked views side
        # by side line up on screen, which shifts one column's steps against the other's.
        # The steps are the same in every row (and the readout names them): the last row
        # labels them; fewer labels also make each redraw cheaper.
        for i, row in enumerate(self.rows):
            last = i == len(self.rows) - 1
            for plot in (row.weights_plot, row.gradients_plot):
                plot.setLabel("bottom", "step" if last else "")
                plot.getAxis("bottom").showLabel(last)
                plot.getAxis("bottom").setStyle(showValues=last)
        self.graphics.setMinimumHeight(ROW_PX * len(self.rows))
        self._update_titles()
        self._apply_palette()

    def _update_titles(self) -> None:
        grads = "|gradient|, log scale" if self.log_scale.isChecked() else "gradient"
        for row in self.rows:
            row.weights_plot.setTitle(f"{row.name}: weights", size="9pt")
            for plot in row.histogram_plots:
                plot.setTitle("now", size="9pt")
            row.gradients_plot.setTitle(f"{row.name}: {grads}", size="9pt")
            row.gradients_plot.getAxis("left").setLogMode(self.log_scale.isChecked())

    def _scale_changed(self) -> None:
        self._update_titles()
        self._ranges.clear()
        self.mark_stale()

    def _set_range(
        self, plot: pg.PlotItem, axis: str, lo: float, hi: float, padding: float = 0.0
    ) -> None:
        """Set a plot's range only when it changed: each change repaints its axis."""
        key = (id(plot), axis)
        if self._ranges.get(key) == (lo, hi):
            return
        self._ranges[key] = (lo, hi)
        if axis == "x":
            plot.setXRange(lo, hi, padding=padding)
        else:
            plot.setYRange(lo, hi, padding=padding)

    # ----- reading values -------------------------------------------------------------
    def show_values_at(self, layer: str, step: float) -> str:
        """Show (and return) a layer's medians and bands at the kept point nearest ``step``."""
        h = self.history
        if not h.n or layer not in h.names:
            return ""
        i = h.names.index(layer)
        k = int(np.abs(h.steps - step).argmin())
        w, g = h.weights(i)[k], h.gradients(i, True)[k]
        text = (
            f"{layer} at step {int(h.steps[k]):,}:  weights median {w[MEDIAN]:.3g} "
            f"(16-84 %: {w[2]:.3g} to {w[-3]:.3g})  \u00b7  |gradient| median {g[MEDIAN]:.2e}, "
            f"max {g[-1]:.2e}"
        )
        self.readout.setText(text)
        return text

    def _mouse_moved(self, args: tuple[QPointF]) -> None:
        pos = args[0]
        for row in self.rows:
            for plot in (row.weights_plot, row.gradients_plot):
                if plot.vb.sceneBoundingRect().contains(pos):
                    self.show_values_at(row.name, plot.vb.mapSceneToView(pos).x())
                    return
        self.readout.setText(HOVER_HINT)

    # ----- theme ---------------------------------------------------------------------------
    def palette_changed(self) -> None:
        self._apply_palette()

    def _apply_palette(self) -> None:
        pal = self.palette()
        bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
        dim = QColor(fg)
        dim.setAlpha(110)
        dark = bg.lightness() < 128
        self.graphics.setBackground(bg)
        for row in self.rows:
            for plot in row.plots:
                plot.titleLabel.setAttr("color", fg.name())
                plot.titleLabel.setText(plot.titleLabel.text)
                for side in ("left", "bottom"):
                    plot.getAxis(side).setPen(dim)
                    plot.getAxis(side).setTextPen(fg)
            row.weights.set_theme(dark)
            row.gradients.set_theme(dark)
            # A histogram's count axis only keeps its plot as tall as the others.
            for plot in row.histogram_plots:
                plot.getAxis("bottom").setPen(bg)
        hint = [0.45 * f + 0.55 * b for f, b in zip(fg.getRgbF(), bg.getRgbF(), strict=True)]
        self.empty_label.setStyleSheet(f"color: {QColor.fromRgbF(*hint).name()}; font-size: 13pt;")


def no_statistics_message(session: Session, no_model: str) -> str:
    """Why there are no training statistics to show, in the words true of this model:
    ``no_model`` without one, and otherwise whether it can be trained at all, is being
    trained or has none saved."""
    if session.loaded is None:
        return no_model
    if not session.trainable:
        return VIEW_ONLY
    if session.status in (RUNNING, PAUSED):
        return STARTED
    # A file opened just now: statistics are not saved in it (a trained sample has none).
    return NONE_IN_FILE if session.path is not None and not session.dirty else NONE_YET


def _gradient_histogram(record: LayerRecord, floor: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(counts, bin edges) of a layer's gradients now: signed values, or with a ``floor``
    the log10 of their sizes on the log scale the bands are drawn on."""
    if floor is None:
        counts = record.gradient_histogram
        return counts, equal_bins(record.gradient_range, len(counts))
    return floored_histogram(
        record.gradient_size_histogram, record.gradient_size_range, record.gradient_zeros, floor
    )


def _span(bands: np.ndarray) -> tuple[float, float]:
    finite = bands[np.isfinite(bands)]
    if not len(finite):
        return math.nan, math.nan
    return float(finite.min()), float(finite.max())
