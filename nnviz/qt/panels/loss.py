"""The loss panel: training loss per step (raw and smoothed), train vs validation per epoch.

Points arrive in batches on ``events_added`` and go into preallocated numpy buffers
(grown by doubling); the smoothed curve is extended from where it stopped, so a long
run never recomputes from scratch. ``redraw`` only hands views of the buffers to items
it already holds. Peak downsampling and clip-to-view keep 100,000 points smooth
(200,000 points: 16.5 ms a render without them, 1.25 ms with), and the big curves use
width-1 pens, which cost 7x less than width 2.

The panel sets its plots' ranges itself: pyqtgraph's auto-range runs inside the paint,
moves the view and so schedules a second full paint, with every axis label re-rendered
(each paint cost 14-17 ms and starved the trainer of the GIL). Here the step axis grows
in chunks (to 1.5x the last step) and the y axes refit only when the data leaves them,
on the log toggle, on a model load, or on Fit (button or double-click), so most redraws
change no range and repaint only the curves: one paint per redraw. The legend is a
QLabel above the plots, drawn once, not a LegendItem repainted with them.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QStackedLayout,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.snapshot import EpochReport, SettingChanged, StepReport
from nnviz.qt.panels.base import Panel
from nnviz.state import Session

# Mid-tone colours that read on light and dark backgrounds alike; the smoothed loss
# is a darker (light theme) or lighter (dark theme) shade of the raw steps' blue.
RAW_COLOUR = QColor(58, 140, 222, 80)
SMOOTH_ON_LIGHT, SMOOTH_ON_DARK = QColor(16, 80, 165), QColor(135, 198, 255)
TRAIN_COLOUR = QColor(64, 170, 90)
VAL_COLOUR = QColor(242, 142, 43)
CHANGE_COLOUR = QColor(176, 122, 161)
VIEWED_COLOUR = QColor(232, 96, 28)  # the step the views show from the history
_SHORT_NAMES = {"weight_decay": "wd"}
# Ranges before any data: room for what is coming (ln 10 = 2.3 is a 10-way guess's loss).
# Each starts a little below zero, so the axis has room to label its zero.
EMPTY_STEPS, EMPTY_ACC = (-2.0, 100.0), (-5.0, 105.0)
EMPTY_LOSS, EMPTY_LOG_LOSS = (-0.125, 2.5), (-2.0, 0.5)
X_GROWTH = 1.5  # the step axis grows to this times the last step when the data leaves it
LOW_ROOM = 0.15  # a loss fit leaves this fraction of its span below for the loss to fall


def ema(
    values: np.ndarray, weight: float, out: np.ndarray, last: float = 0.0, count: int = 0
) -> tuple[float, int]:
    """TensorBoard's debiased EMA of ``values`` into ``out``, continuing from (last, count).

    Vectorised in blocks short enough that ``weight ** block`` stays far from underflow.
    Returns the state to continue from.
    """
    if weight <= 0.0:
        out[:] = values
        return (float(values[-1]) if len(values) else last), count + len(values)
    block = max(1, min(4096, int(200 / -math.log10(weight))))
    for start in range(0, len(values), block):
        v = values[start : start + block]
        k = np.arange(1, len(v) + 1, dtype=np.float64)
        wk = weight**k
        acc = wk * (last + (1.0 - weight) * np.cumsum(v / wk))
        out[start : start + len(v)] = acc / (1.0 - weight ** (count + k))
        last, count = float(acc[-1]), count + len(v)
    return last, count


def _change_label(name: str, value: float | None) -> str:
    if name == "pace":
        return "pace max" if value is None else f"pace {value:g}/s"
    return f"{_SHORT_NAMES.get(name, name)} {value:g}" if value is not None else name


class LossPanel(Panel):
    """Loss per step, train vs validation per epoch, accuracy, and setting changes."""

    title = "Loss"
    object_name = "loss"
    area: ClassVar = Qt.DockWidgetArea.BottomDockWidgetArea
    # Five redraws a second follow training closely enough; the GUI thread's time (and
    # the GIL) is worth more to the trainer than a smoother curve (alone beside
    # mlp-3b1b training, this panel took a quarter of the GUI thread at 10 Hz).
    max_fps: ClassVar[float] = 5.0

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self._x = np.zeros(1024)
        self._raw = np.zeros(1024)
        self._smooth = np.zeros(1024)
        self._n = 0
        self._ema_state = (0.0, 0)
        # Bounds of the finite raw losses (the smoothed curve stays inside them), kept up
        # to date as points arrive: (lowest, highest, lowest above zero for the log axis).
        self._bounds = (math.inf, -math.inf, math.inf)
        self._epochs: list[tuple[float, ...]] = []  # rows from _epoch_row
        self._epoch_bounds = (math.inf, -math.inf, math.inf, math.inf, -math.inf)
        self._changes: list[tuple[int, str, float | None]] = []
        self.markers: list[pg.InfiniteLine] = []
        self._drawn: tuple[int, int] | None = None  # (points, epochs) on screen
        # The ranges this panel set ("x", "loss", "acc"); one missing is fitted afresh.
        self._ranges: dict[str, tuple[float, float]] = {}
        self._follow = True  # ranges follow the data, until the user pans or zooms

        self.log_scale = QCheckBox("Log scale")
        self.log_scale.setToolTip("Show the loss on a logarithmic axis")
        self.smoothing = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=0.999, singleStep=0.05)
        self.smoothing.setValue(0.9)
        self.smoothing.setToolTip("Exponential moving average weight: 0 is raw, 0.99 is smooth")
        self.fit_button = QToolButton(text="Fit")
        self.fit_button.setToolTip(
            "Fit the plots to all the data and follow it again (or double-click a plot)"
        )
        self.readout = QLabel()
        # Ignored size hints: text that comes and goes must not resize the window (and the
        # offscreen platform warns on every change of a window's size constraints).
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.readout.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        bar.addWidget(self.log_scale)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Smoothing"))
        bar.addWidget(self.smoothing)
        bar.addSpacing(12)
        bar.addWidget(self.fit_button)
        bar.addWidget(self.readout, 1)

        # The legend: a label on the plots' background above them, so it never hides a
        # curve and costs nothing when the plots repaint (a LegendItem cost 1.2 ms a paint).
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.legend.setContentsMargins(4, 2, 10, 0)
        self.legend.setAutoFillBackground(True)
        self.legend.setBackgroundRole(QPalette.ColorRole.Base)
        font = self.legend.font()
        font.setPointSizeF(8.0)
        self.legend.setFont(font)

        self.graphics = pg.GraphicsLayoutWidget()
        self.loss_plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0)
        self.acc_plot: pg.PlotItem = self.graphics.addPlot(row=1, col=0)
        grid = self.graphics.ci.layout
        grid.setRowStretchFactor(0, 3)
        grid.setRowStretchFactor(1, 1)
        grid.setVerticalSpacing(0)
        self.acc_plot.setXLink(self.loss_plot)
        self.loss_plot.setLabel("left", "loss")
        self.acc_plot.setLabel("left", "accuracy %")
        self.acc_plot.setLabel("bottom", "step")
        self.acc_plot.getAxis("left").setTickDensity(0.4)  # a short plot: fewer labels
        self.loss_plot.getAxis("bottom").setStyle(showValues=False)
        for plot in (self.loss_plot, self.acc_plot):
            # No grid: it cost 7-10 ms a frame offscreen, more than 100k points; the
            # crosshair readout gives exact values instead.
            plot.getAxis("left").setWidth(54)  # both plots' y axes line up
            plot.getAxis("left").setStyle(hideOverlappingLabels=True)  # none across the seam
            plot.setMenuEnabled(False)
            # Ranges are set in redraw. disableAutoRange, not enableAutoRange(False): that
            # reads False as ViewBox.XAxis (0) and turns auto-range on.
            plot.disableAutoRange()
            plot.hideButtons()  # its "A" button would turn auto-range back on
            plot.vb.sigRangeChangedManually.connect(self._stop_following)
        # One peak-downsampling bucket per pixel column (pyqtgraph's default is five):
        # the min and max of each column are what a 1-pixel line shows anyway, and a path
        # five times shorter is five times cheaper to draw, with the GIL held.
        self.raw_curve = self.loss_plot.plot(
            pen=pg.mkPen(RAW_COLOUR, width=1), autoDownsampleFactor=1.0
        )
        self.smooth_curve = self.loss_plot.plot(
            pen=pg.mkPen(SMOOTH_ON_LIGHT, width=1), autoDownsampleFactor=1.0
        )
        for curve in (self.raw_curve, self.smooth_curve):
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
        self.train_epoch_curve = self._epoch_curve(self.loss_plot, TRAIN_COLOUR, "s")
        self.val_curve = self._epoch_curve(self.loss_plot, VAL_COLOUR, "o")
        self.train_acc_curve = self._epoch_curve(self.acc_plot, TRAIN_COLOUR, "s")
        self.val_acc_curve = self._epoch_curve(self.acc_plot, VAL_COLOUR, "o")
        # Columns of the epoch rows (step, train loss, val loss, train acc, val acc).
        self._epoch_columns = (
            (self.train_epoch_curve, 1, 1.0),
            (self.val_curve, 2, 1.0),
            (self.train_acc_curve, 3, 100.0),
            (self.val_acc_curve, 4, 100.0),
        )
        self.crosshairs = [pg.InfiniteLine(angle=90, movable=False) for _ in range(2)]
        for plot, line in zip((self.loss_plot, self.acc_plot), self.crosshairs, strict=True):
            plot.addItem(line, ignoreBounds=True)
            line.hide()
        # Where the history slider is: the weights every other view shows are from here.
        self.viewed_step = pg.InfiniteLine(
            angle=90,
            movable=False,
            pen=pg.mkPen(VIEWED_COLOUR, width=2),
            label="views show this step",
            labelOpts={"position": 0.08, "color": VIEWED_COLOUR},
        )
        self.loss_plot.addItem(self.viewed_step, ignoreBounds=True)
        self.viewed_step.hide()

        self.empty_label = QLabel("Press Train to see the loss fall")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.empty_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        stack = QStackedLayout()
        stack.setStackingMode(QStackedLayout.StackingMode.StackAll)
        stack.addWidget(self.graphics)
        stack.addWidget(self.empty_label)
        stack.setCurrentWidget(self.empty_label)  # on top
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        plots = QVBoxLayout()
        plots.setSpacing(0)
        plots.addWidget(self.legend)
        plots.addLayout(stack, 1)
        layout.addLayout(plots, 1)
        self._apply_palette()

        self.log_scale.toggled.connect(self.set_log_scale)
        self.smoothing.valueChanged.connect(self._resmooth)
        self.fit_button.clicked.connect(self.fit)
        self.graphics.scene().sigMouseClicked.connect(self._clicked)
        self._mouse = pg.SignalProxy(
            self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved
        )
        self.listen(session.events_added, self.add_events)
        self.listen(session.model_loaded, self.reload)
        self.listen(session.view_step_changed, self.show_viewed_step)
        self.reload()

    @staticmethod
    def _epoch_curve(plot: pg.PlotItem, colour: QColor, symbol: str) -> pg.PlotDataItem:
        pen = pg.mkPen(colour, width=2)  # few points: width 2 costs nothing here
        return plot.plot(pen=pen, symbol=symbol, symbolSize=7, symbolPen=colour, symbolBrush=colour)

    # ----- data --------------------------------------------------------------------------
    def point_count(self) -> int:
        """Training-loss points the panel holds (one per step)."""
        return self._n

    def reload(self) -> None:
        """Forget everything and show ``session.history`` (a loaded model's curves at once)."""
        history = self.session.history
        self._n = 0
        self._ema_state = (0.0, 0)
        self._bounds = (math.inf, -math.inf, math.inf)
        self._append(np.asarray(history.step, float), np.asarray(history.loss, float))
        self._epochs = [_epoch_row(e) for e in history.epochs]
        self._changes = [(c["step"], c["name"], c["value"]) for c in history.changes]
        for line in self.markers:
            self.loss_plot.removeItem(line)
        self.markers.clear()
        self._drawn = None
        self._hide_values()
        # Fit the new curves (or the empty state) now; the epochs' bounds come with the
        # next redraw, which refits only if an epoch's value lies outside.
        self._epoch_bounds = (math.inf, -math.inf, math.inf, math.inf, -math.inf)
        self._ranges.clear()
        self._follow = True
        self._update_ranges()
        self.show_viewed_step(self.session.viewing_step)
        self.mark_stale()

    def add_events(self, events: list[Any]) -> None:
        """Take the reports since the last publish into the buffers; drawn on ``refresh``."""
        steps = [e for e in events if isinstance(e, StepReport)]
        if steps:
            self._append(
                np.fromiter((e.step for e in steps), float, len(steps)),
                np.fromiter((e.loss for e in steps), float, len(steps)),
            )
        for e in events:
            if isinstance(e, EpochReport):
                self._epochs.append(_epoch_row(vars(e)))
            elif isinstance(e, SettingChanged):
                self._changes.append((e.step, e.name, e.value))
        self.mark_stale()

    def _append(self, steps: np.ndarray, losses: np.ndarray) -> None:
        n, m = self._n, len(steps)
        if n + m > len(self._x):
            size = max(2 * len(self._x), 1 << (n + m - 1).bit_length())
            for name in ("_x", "_raw", "_smooth"):
                grown = np.zeros(size)
                grown[:n] = getattr(self, name)[:n]
                setattr(self, name, grown)
        self._x[n : n + m] = steps
        self._raw[n : n + m] = losses
        self._ema_state = ema(
            losses, self.smoothing.value(), self._smooth[n : n + m], *self._ema_state
        )
        self._n = n + m
        self._bounds = _merge_bounds(self._bounds, losses)

    def _resmooth(self) -> None:
        self._ema_state = ema(self._raw[: self._n], self.smoothing.value(), self._smooth[: self._n])
        self._drawn = None
        self.mark_stale()

    # ----- ranges ------------------------------------------------------------------------
    def fit(self) -> None:
        """Fit both plots to all the data, and follow it again as it grows."""
        self._ranges.clear()
        self._follow = True
        self._update_ranges()

    def _stop_following(self, *_: Any) -> None:
        self._follow = False  # the user panned or zoomed: leave the view where they put it

    def _clicked(self, event: Any) -> None:  # noqa: ANN401 - pyqtgraph's MouseClickEvent
        if event.double():
            self.fit()

    def _update_ranges(self) -> None:
        """Set the ranges the data needs; most calls find the data inside and change none.

        Only a range that changes is set (and the view's transform updated at once, not in
        the next paint), so an unchanged range costs no axis re-render and no extra paint.
        """
        if not self._follow:
            return
        changed = False
        for plot, key, rng in (
            (self.loss_plot, "x", self._x_range(self._ranges.get("x"))),
            (self.loss_plot, "loss", self._loss_range(self._ranges.get("loss"))),
            (self.acc_plot, "acc", self._acc_range(self._ranges.get("acc"))),
        ):
            if self._ranges.get(key) != rng:
                self._ranges[key] = rng
                if key == "x":
                    plot.setXRange(*rng, padding=0)
                else:
                    plot.setYRange(*rng, padding=0)
                changed = True
        if changed:
            for plot in (self.loss_plot, self.acc_plot):
                plot.vb.updateMatrix()

    def _last_step(self) -> float:
        last = self._x[self._n - 1] if self._n else 0.0
        return max(last, self._epochs[-1][0]) if self._epochs else last

    def _x_range(self, current: tuple[float, float] | None) -> tuple[float, float]:
        """From step 0; grows in chunks to 1.5x the last step, a fit leaves 2% spare."""
        last = self._last_step()
        if current is None:
            top = max(EMPTY_STEPS[1], 1.02 * last)
        elif last > current[1]:
            top = X_GROWTH * last
        else:
            return current
        return (-0.02 * top, top)

    def _loss_range(self, current: tuple[float, float] | None) -> tuple[float, float]:
        """The losses' span (on the log axis, their decades), refitted only when a loss
        falls outside, with room below for the loss to fall: a handful of refits a run."""
        lo, hi, low_positive = self._bounds
        e_lo, e_hi, e_low_positive = self._epoch_bounds[:3]
        lo, hi, low_positive = min(lo, e_lo), max(hi, e_hi), min(low_positive, e_low_positive)
        if self.log_scale.isChecked():
            if not math.isfinite(low_positive):
                return current or EMPTY_LOG_LOSS
            lo, hi = math.log10(low_positive), math.log10(hi)
            min_span, floor = 0.3, -math.inf
        else:
            if not math.isfinite(lo):
                return current or EMPTY_LOSS
            min_span, floor = 0.25 * abs(hi), 0.0 if lo >= 0 else -math.inf
        placeholder = current in (None, EMPTY_LOSS, EMPTY_LOG_LOSS)
        if not placeholder and current[0] <= lo and hi <= current[1]:
            return current
        span = max(hi - lo, min_span, 1e-6)
        top = hi + 0.05 * span
        bottom = lo - LOW_ROOM * span
        if bottom < floor:  # a loss is never negative: stop just below zero
            bottom = floor - 0.05 * (top - floor)
        return (bottom, top)

    def _acc_range(self, current: tuple[float, float] | None) -> tuple[float, float]:
        """The accuracies' span (percent), refitted when an epoch's falls outside."""
        lo, hi = self._epoch_bounds[3:]
        if not math.isfinite(lo):
            return current or EMPTY_ACC
        if current not in (None, EMPTY_ACC) and current[0] <= lo and hi <= current[1]:
            return current
        pad = max(3.0, 0.1 * (hi - lo))
        return (lo - pad if lo - pad > 0 else EMPTY_ACC[0], min(EMPTY_ACC[1], hi + pad))

    def show_viewed_step(self, step: int | None) -> None:
        """Mark the history step the views show (None: they follow the live weights)."""
        if step is None:
            self.viewed_step.hide()
        else:
            self.viewed_step.setPos(step)
            self.viewed_step.show()

    # ----- drawing -----------------------------------------------------------------------
    def set_log_scale(self, on: bool) -> None:
        """Loss on a logarithmic axis (or back to linear)."""
        if self.log_scale.isChecked() != on:
            self.log_scale.setChecked(on)  # comes back here through toggled
            return
        steps = self.loss_plot.vb.viewRange()[0]
        self.loss_plot.setLogMode(y=on)
        # setLogMode turns auto-range on, and turning it off auto-ranges once: put the
        # step range back, and refit the loss (its old range is in the other axis's units)
        # whether the view follows the data or not.
        self.loss_plot.disableAutoRange()
        rng = self._loss_range(None)
        self._ranges["loss"] = rng
        self.loss_plot.setRange(xRange=steps, yRange=rng, padding=0)
        for plot in (self.loss_plot, self.acc_plot):
            plot.vb.updateMatrix()

    def redraw(self) -> None:
        n, epochs = self._n, len(self._epochs)
        if self._drawn is None or self._drawn[0] != n:
            x = self._x[:n]
            self.raw_curve.setData(x, self._raw[:n])
            self.smooth_curve.setData(x, self._smooth[:n])
        if self._drawn is None or self._drawn[1] != epochs:
            table = np.array(self._epochs, float).reshape(-1, 5)
            for curve, col, scale in self._epoch_columns:
                keep = np.isfinite(table[:, col])
                curve.setData(table[keep, 0], table[keep, col] * scale)
            loss = _merge_bounds((math.inf, -math.inf, math.inf), table[:, 1:3].ravel())
            acc = 100.0 * table[:, 3:5]
            acc = acc[np.isfinite(acc)]
            self._epoch_bounds = (
                *loss,
                float(acc.min()) if len(acc) else math.inf,
                float(acc.max()) if len(acc) else -math.inf,
            )
        for step, name, value in self._changes[len(self.markers) :]:
            pen = pg.mkPen(CHANGE_COLOUR, width=1, style=Qt.PenStyle.DashLine)
            label, opts = _change_label(name, value), {"position": 0.92, "color": CHANGE_COLOUR}
            line = pg.InfiniteLine(step, angle=90, pen=pen, label=label, labelOpts=opts)
            self.loss_plot.addItem(line, ignoreBounds=True)
            self.markers.append(line)
        self._drawn = (n, epochs)
        self._update_ranges()
        self.empty_label.setVisible(n == 0 and epochs == 0)

    def show_values_at(self, step: float) -> str:
        """Put the crosshair on the step nearest ``step`` and show its values; returns the text."""
        n = self._n
        if n == 0 and not self._epochs:
            return ""
        parts = []
        at = step
        if n:
            i = int(np.clip(np.searchsorted(self._x[:n], step), 1, n - 1)) if n > 1 else 0
            if n > 1 and abs(self._x[i - 1] - step) <= abs(self._x[i] - step):
                i -= 1
            at = self._x[i]
            parts.append(
                f"step {int(at):,}   loss {self._raw[i]:.4g}   smoothed {self._smooth[i]:.4g}"
            )
        if self._epochs:
            k = min(range(len(self._epochs)), key=lambda j: abs(self._epochs[j][0] - at))
            e_step, _, val_loss, _, val_acc = self._epochs[k]
            if not n:
                at = e_step
            if math.isfinite(val_loss):
                parts.append(f"epoch {k + 1}: val loss {val_loss:.4g}, val acc {val_acc:.1%}")
        for line in self.crosshairs:
            line.setPos(at)
            line.show()
        text = "   \u00b7   ".join(parts)
        self.readout.setText(text)
        return text

    def _mouse_moved(self, args: tuple[QPointF]) -> None:
        pos = args[0]
        for plot in (self.loss_plot, self.acc_plot):
            if plot.vb.sceneBoundingRect().contains(pos):
                self.show_values_at(plot.vb.mapSceneToView(pos).x())
                return
        self._hide_values()

    def _hide_values(self) -> None:
        for line in self.crosshairs:
            line.hide()
        self.readout.clear()

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        self._hide_values()
        super().leaveEvent(event)

    def palette_changed(self) -> None:
        self._apply_palette()

    def _apply_palette(self) -> None:
        """Background and text from the widget palette, so both themes read well."""
        pal = self.palette()
        bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
        dim = QColor(fg)
        dim.setAlpha(110)
        self.graphics.setBackground(bg)
        for plot in (self.loss_plot, self.acc_plot):
            for side in ("left", "bottom"):
                plot.getAxis(side).setPen(dim)
                plot.getAxis(side).setTextPen(fg)
        for line in self.crosshairs:
            line.setPen(pg.mkPen(dim, width=1))
        dark = bg.lightness() < 128
        self.smooth_curve.setPen(pg.mkPen(SMOOTH_ON_DARK if dark else SMOOTH_ON_LIGHT, width=1))
        self.legend.setText(_legend_html(bg, SMOOTH_ON_DARK if dark else SMOOTH_ON_LIGHT))
        hint = [0.45 * f + 0.55 * b for f, b in zip(fg.getRgbF(), bg.getRgbF(), strict=True)]
        self.empty_label.setStyleSheet(f"color: {QColor.fromRgbF(*hint).name()}; font-size: 13pt;")


def _epoch_row(e: dict[str, Any]) -> tuple[float, ...]:
    """An epoch's (step, train loss, val loss, train acc, val acc); NaN where none."""
    keys = ("step", "train_loss", "val_loss", "train_accuracy", "val_accuracy")
    return tuple(math.nan if e.get(k) is None else float(e[k]) for k in keys)


def _merge_bounds(
    bounds: tuple[float, float, float], values: np.ndarray
) -> tuple[float, float, float]:
    """(lowest, highest, lowest above zero) of ``bounds`` and the finite ``values``."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return bounds
    positive = finite[finite > 0]
    lo, hi, low_positive = bounds
    return (
        min(lo, float(finite.min())),
        max(hi, float(finite.max())),
        min(low_positive, float(positive.min())) if len(positive) else low_positive,
    )


def _legend_html(background: QColor, smooth: QColor) -> str:
    """The legend's rich text: each curve's colour and mark, then its name."""
    raw = QColor.fromRgbF(
        *(
            RAW_COLOUR.alphaF() * c + (1 - RAW_COLOUR.alphaF()) * b
            for c, b in zip(RAW_COLOUR.getRgbF()[:3], background.getRgbF()[:3], strict=True)
        )
    )  # the translucent raw line as it looks over the background
    entries = (
        (raw, "\u2501\u2501", "train loss per step"),
        (smooth, "\u2501\u2501", "smoothed"),
        (TRAIN_COLOUR, "\u2500\u25a0\u2500", "train, epoch mean"),
        (VAL_COLOUR, "\u2500\u25cf\u2500", "validation"),
    )
    return "&nbsp;&nbsp;&nbsp;&nbsp;".join(
        f'<span style="color:{colour.name()}">{mark}</span>&nbsp;{name}'
        for colour, mark, name in entries
    )
