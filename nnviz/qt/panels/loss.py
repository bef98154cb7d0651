"""The loss panel: training loss per step (raw and smoothed), train vs validation per epoch.

Points arrive in batches on ``events_added`` and go into preallocated numpy buffers
(grown by doubling); the smoothed curve is extended from where it stopped, so a long
run never recomputes from scratch. ``redraw`` only hands views of the buffers to items
it already holds. Peak downsampling and clip-to-view keep 100,000 points smooth
(PITFALLS.md), and the big curves use width-1 pens, which cost 7x less than width 2.
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
_SHORT_NAMES = {"weight_decay": "wd"}


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

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self._x = np.zeros(1024)
        self._raw = np.zeros(1024)
        self._smooth = np.zeros(1024)
        self._n = 0
        self._ema_state = (0.0, 0)
        self._epochs: list[tuple[float, ...]] = []  # rows from _epoch_row
        self._changes: list[tuple[int, str, float | None]] = []
        self.markers: list[pg.InfiniteLine] = []
        self._drawn: tuple[int, int] | None = None  # (points, epochs) on screen

        self.log_scale = QCheckBox("Log scale")
        self.log_scale.setToolTip("Show the loss on a logarithmic axis")
        self.smoothing = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=0.999, singleStep=0.05)
        self.smoothing.setValue(0.9)
        self.smoothing.setToolTip("Exponential moving average weight: 0 is raw, 0.99 is smooth")
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
        bar.addWidget(self.readout, 1)

        self.graphics = pg.GraphicsLayoutWidget()
        # The legend gets a row of its own above the plot so it never hides a curve.
        self.legend = pg.LegendItem(labelTextSize="8pt", colCount=4, frame=False)
        self.legend.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.graphics.addItem(self.legend, row=0, col=0)
        self.loss_plot: pg.PlotItem = self.graphics.addPlot(row=1, col=0)
        self.acc_plot: pg.PlotItem = self.graphics.addPlot(row=2, col=0)
        grid = self.graphics.ci.layout
        grid.setAlignment(self.legend, Qt.AlignmentFlag.AlignRight)
        grid.setRowStretchFactor(1, 3)
        grid.setRowStretchFactor(2, 1)
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
        self.raw_curve = self.loss_plot.plot(pen=pg.mkPen(RAW_COLOUR, width=1))
        self.smooth_curve = self.loss_plot.plot(pen=pg.mkPen(SMOOTH_ON_LIGHT, width=1))
        for curve in (self.raw_curve, self.smooth_curve):
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
        self.train_epoch_curve = self._epoch_curve(self.loss_plot, TRAIN_COLOUR, "s")
        self.val_curve = self._epoch_curve(self.loss_plot, VAL_COLOUR, "o")
        for curve, name in (
            (self.raw_curve, "train loss per step"),
            (self.smooth_curve, "smoothed"),
            (self.train_epoch_curve, "train, epoch mean"),
            (self.val_curve, "validation"),
        ):
            self.legend.addItem(curve, name)
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
        layout.addLayout(stack, 1)
        self._apply_palette()

        self.log_scale.toggled.connect(self.set_log_scale)
        self.smoothing.valueChanged.connect(self._resmooth)
        self._mouse = pg.SignalProxy(
            self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved
        )
        self.listen(session.events_added, self.add_events)
        self.listen(session.model_loaded, self.reload)
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
        self._append(np.asarray(history.step, float), np.asarray(history.loss, float))
        self._epochs = [_epoch_row(e) for e in history.epochs]
        self._changes = [(c["step"], c["name"], c["value"]) for c in history.changes]
        for line in self.markers:
            self.loss_plot.removeItem(line)
        self.markers.clear()
        self._drawn = None
        self._hide_values()
        if self._n == 0 and not self._epochs:
            # Room for what is coming: ln(10) = 2.3 is the loss of a 10-way guess.
            self.loss_plot.setRange(xRange=(0, 100), yRange=(0, 2.5), padding=0)
            self.acc_plot.setYRange(0, 100, padding=0)
            for plot in (self.loss_plot, self.acc_plot):
                plot.enableAutoRange()
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

    def _resmooth(self) -> None:
        self._ema_state = ema(self._raw[: self._n], self.smoothing.value(), self._smooth[: self._n])
        self._drawn = None
        self.mark_stale()

    # ----- drawing -----------------------------------------------------------------------
    def set_log_scale(self, on: bool) -> None:
        """Loss on a logarithmic axis (or back to linear)."""
        if self.log_scale.isChecked() != on:
            self.log_scale.setChecked(on)  # comes back here through toggled
            return
        self.loss_plot.setLogMode(y=on)

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
        for step, name, value in self._changes[len(self.markers) :]:
            pen = pg.mkPen(CHANGE_COLOUR, width=1, style=Qt.PenStyle.DashLine)
            label, opts = _change_label(name, value), {"position": 0.92, "color": CHANGE_COLOUR}
            line = pg.InfiniteLine(step, angle=90, pen=pen, label=label, labelOpts=opts)
            self.loss_plot.addItem(line, ignoreBounds=True)
            self.markers.append(line)
        self._drawn = (n, epochs)
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

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "graphics"):
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
        self.legend.setLabelTextColor(fg)
        for _, label in self.legend.items:
            label.setText(label.text)  # setLabelTextColor alone leaves the old colour drawn
        hint = [0.45 * f + 0.55 * b for f, b in zip(fg.getRgbF(), bg.getRgbF(), strict=True)]
        self.empty_label.setStyleSheet(f"color: {QColor.fromRgbF(*hint).name()}; font-size: 13pt;")


def _epoch_row(e: dict[str, Any]) -> tuple[float, ...]:
    """An epoch's (step, train loss, val loss, train acc, val acc); NaN where none."""
    keys = ("step", "train_loss", "val_loss", "train_accuracy", "val_accuracy")
    return tuple(math.nan if e.get(k) is None else float(e[k]) for k in keys)
