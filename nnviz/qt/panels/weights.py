"""The weights panel: each dense layer's weight matrix as a heatmap, its bias beside it.

Row r of a matrix is output unit r, column c is input c, so a row is everything one
unit listens to. Colours are the app's signed colours (``nnviz.qt.colours``) centred on
zero (levels (-m, m), m the largest finite |value| shown), so the background's shade
means "ignores this input" and the two hues say which way a weight pushes. The matrix
and the bias strip are one ImageItem each, with explicit levels and auto-downsampling,
so a 128 x 9216 matrix stays cheap and legible when zoomed out. While training runs
the panel redraws at most five times a second and never touches the zoom; the colour
scale follows the data ("Auto scale") or stays put ("Fixed scale").
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.dense import (
    DenseLayer,
    dense_layers,
    image_reading_layer,
    symmetric_limit,
    weight_matrix,
)
from nnviz.qt import colours
from nnviz.qt.panels.base import Panel
from nnviz.state import Session

HOVER_HINT = "Point at a weight to read it; wheel to zoom, drag to pan"
ALL_LAYERS = "All layers"
_GAP = 2  # empty (NaN, transparent) rows between stacked layers


@dataclass(frozen=True)
class _Block:
    layer: DenseLayer
    row: int  # first row of the layer in the stacked image


class WeightsPanel(Panel):
    """Dense layers' weight matrices as heatmaps, with biases and a colour bar."""

    title = "Weights"
    object_name = "weights"
    # A redraw a person can follow while training runs; more only costs the trainer.
    max_fps: ClassVar[float] = 2.0
    area: ClassVar = Qt.DockWidgetArea.RightDockWidgetArea
    min_interval_s = 0.2  # live updates at ~5 Hz: enough to watch, cheap while training

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.layers: list[DenseLayer] = []
        self._blocks: list[_Block] = []
        self._reader: DenseLayer | None = None  # the layer whose inputs are pixels
        self._weights = np.zeros((0, 0), np.float32)  # the image's own buffers: never
        self._biases = np.zeros((0, 1), np.float32)  # views of the model's tensors
        self._find_layers = True  # a new model: look for its dense layers
        self._relayout = True  # another layer shown: new shape, view and colour scale
        self._refit = False  # the user asked for levels fitted to the data
        self._drawn_at = -math.inf

        self.layer_choice = QComboBox()
        self.layer_choice.setToolTip("Which layer's weights to show")
        self.layer_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.auto_scale = QRadioButton("Auto scale")
        self.auto_scale.setToolTip("Colours follow the weights as they change")
        self.fixed_scale = QRadioButton("Fixed scale")
        self.fixed_scale.setToolTip("Keep the colour scale, to see the weights grow or shrink")
        self.auto_scale.setChecked(True)
        self._scale_group = QButtonGroup(self)
        self._scale_group.addButton(self.auto_scale)
        self._scale_group.addButton(self.fixed_scale)
        self.reset_button = QPushButton("Reset view")
        self.reset_button.setToolTip("Show the whole matrix and fit the colours to the weights")
        self.controls = QWidget()  # hidden with the view when there is nothing to show
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.layer_choice)
        bar.addWidget(self.auto_scale)
        bar.addWidget(self.fixed_scale)
        bar.addWidget(self.reset_button)
        bar.addStretch(1)
        self.readout = QLabel(HOVER_HINT)
        # Ignored size hints: hover text must not resize the dock.
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.graphics = pg.GraphicsLayoutWidget()
        self.plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0)
        self.bias_plot: pg.PlotItem = self.graphics.addPlot(row=0, col=1)
        self.image = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.bias_image = pg.ImageItem(axisOrder="row-major")
        for item in (self.image, self.bias_image):
            item.setPos(-0.5, -0.5)  # pixel (r, c) centred on (c, r): ticks sit on rows
        self.plot.addItem(self.image)
        self.bias_plot.addItem(self.bias_image)
        self.plot.setLabel("bottom", "input (column)")
        self.plot.setLabel("left", "output unit (row)")
        for plot in (self.plot, self.bias_plot):
            plot.invertY(True)  # row 0 on top, as a matrix is written
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.vb.disableAutoRange()  # new weights never move the view
        self.bias_plot.setYLink(self.plot)
        self.bias_plot.setMouseEnabled(x=False, y=True)
        self.bias_plot.hideAxis("left")
        self.bias_plot.getAxis("bottom").setTicks([[(0, "bias")]])
        self.bias_plot.setLabel("bottom", " ")  # as tall as the matrix's axis: rows line up
        self.bias_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.bias_plot.setXRange(-0.5, 0.5, padding=0.1)
        self.graphics.ci.layout.setColumnFixedWidth(1, 34)
        self.colour_bar = pg.ColorBarItem(
            colorMap=colours.colormap(self.palette()),
            width=14,
            rounding=1e-4,
            colorMapMenu=False,
        )
        self.colour_bar.setImageItem([self.image, self.bias_image])
        self.graphics.addItem(self.colour_bar, row=0, col=2)

        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self._stack = QStackedLayout()
        self._stack.addWidget(self.graphics)
        self._stack.addWidget(self.message)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        controls = QVBoxLayout(self.controls)
        controls.setContentsMargins(4, 2, 4, 0)
        controls.setSpacing(2)
        controls.addLayout(bar)
        controls.addWidget(self.readout)
        layout.addWidget(self.controls)
        layout.addLayout(self._stack, 1)
        self._apply_palette()

        self.layer_choice.currentIndexChanged.connect(self._layer_chosen)
        self.auto_scale.toggled.connect(self._scale_mode_changed)
        self.reset_button.clicked.connect(self.reset_view)
        # Dragging the colour bar is the user taking over the scale: keep it.
        self.colour_bar.sigLevelsChanged.connect(lambda _: self.fixed_scale.setChecked(True))
        self._mouse = pg.SignalProxy(
            self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved
        )
        self.listen(session.model_loaded, self._model_loaded)
        self.listen(session.snapshot_changed, self.mark_stale)
        self.listen(colours.changed, self._colours_changed)

    # ----- what the user asks for ----------------------------------------------------------
    def shown_layers(self) -> list[DenseLayer]:
        """The layers on screen: the chosen one, or all of them stacked."""
        if self.layer_choice.currentText() == ALL_LAYERS:
            return list(self.layers)
        index = self.layer_choice.currentIndex()
        return [self.layers[index]] if 0 <= index < len(self.layers) else []

    def reset_view(self) -> None:
        """Show the whole matrix again and fit the colour scale to the current weights."""
        self._fit_view()
        self._refit = True
        self.mark_stale()
        self._drawn_at = -math.inf  # draw at once, whatever the throttle says

    def levels(self) -> tuple[float, float]:
        """The colour scale's (low, high), shared by the matrix and the bias strip."""
        return tuple(self.colour_bar.levels())

    def _fit_view(self) -> None:
        h, w = self._weights.shape
        self.plot.vb.setRange(xRange=(-0.5, w - 0.5), yRange=(-0.5, h - 0.5), padding=0.02)

    def _model_loaded(self) -> None:
        self._find_layers = True
        self.mark_stale()

    def _layer_chosen(self) -> None:
        self._relayout = True
        self.mark_stale()

    def _scale_mode_changed(self, auto: bool) -> None:
        if auto:
            self._refit = True
            self._drawn_at = -math.inf
            self.mark_stale()

    # ----- drawing ---------------------------------------------------------------------------
    def redraw(self) -> None:
        now = time.monotonic()
        if self._find_layers:
            self._find_layers = False
            self._relayout = True
            self.layers = dense_layers(self.session.view_model)
            self._reader = image_reading_layer(self.session.view_model, self._input_shape())
            self.layer_choice.blockSignals(True)  # the relayout below covers the change
            self.layer_choice.clear()
            self.layer_choice.addItems(
                [f"{x.name}  ({x.out_features} x {x.in_features})" for x in self.layers]
            )
            if len(self.layers) > 1:
                self.layer_choice.addItem(ALL_LAYERS)
            self.layer_choice.blockSignals(False)
        if not self.layers:
            self._show_message()
            return
        relayout = self._relayout
        if not relayout and not self._refit and now - self._drawn_at < self.min_interval_s:
            self.mark_stale()  # too soon after the last draw: the newest weights come next frame
            return
        self._stack.setCurrentWidget(self.graphics)
        self.controls.show()
        if relayout:
            self._layout_blocks()
        state = self.session.view_model.state_dict()
        for block in self._blocks:
            weights, bias = weight_matrix(state, block.layer)
            rows = slice(block.row, block.row + block.layer.out_features)
            self._weights[rows, : block.layer.in_features] = weights
            if bias is not None:
                self._biases[rows, 0] = bias
        # The same buffers again: setImage re-renders them (and they never share memory
        # with the model, which the next snapshot overwrites in place).
        self.image.setImage(self._weights, autoLevels=False)
        self.bias_image.setImage(self._biases, autoLevels=False)
        if relayout or self._refit or self.auto_scale.isChecked():
            m = symmetric_limit(self._weights, self._biases)
            self.colour_bar.setLevels((-m, m))
        if relayout:
            self._fit_view()
        self._relayout = self._refit = False
        self._drawn_at = now

    def _layout_blocks(self) -> None:
        shown = self.shown_layers()
        self._blocks, row = [], 0
        for layer in shown:
            self._blocks.append(_Block(layer, row))
            row += layer.out_features + _GAP
        height, width = row - _GAP, max(x.in_features for x in shown)
        self._weights = np.full((height, width), np.nan, np.float32)
        self._biases = np.full((height, 1), np.nan, np.float32)
        left = self.plot.getAxis("left")
        if len(shown) > 1:  # stacked: name each block instead of numbering rows
            left.setTicks(
                [[(b.row + b.layer.out_features / 2, b.layer.name) for b in self._blocks]]
            )
            self.plot.setLabel("left", "layer (rows are output units)")
        else:
            left.setTicks(None)
            self.plot.setLabel("left", f"{shown[0].name}: output unit (row)")
        pad_x, pad_y = 0.05 * width + 2, 0.05 * height + 2
        self.plot.vb.setLimits(
            xMin=-pad_x,
            xMax=width + pad_x,
            yMin=-pad_y,
            yMax=height + pad_y,
            minXRange=2,
            minYRange=2,
        )

    def _show_message(self) -> None:
        if self.session.view_model is None:
            text = "Load a model to see its weights"
        else:
            text = (
                "Dense layers only: this model has none.\n"
                "(Its weights are convolution filters; see the Filters panel.)"
            )
        self.message.setText(text)
        self._stack.setCurrentWidget(self.message)
        self.controls.hide()

    # ----- hover -----------------------------------------------------------------------------
    def _block_at(self, row: int) -> _Block | None:
        for block in self._blocks:
            if block.row <= row < block.row + block.layer.out_features:
                return block
        return None

    def text_at(self, x: float, y: float) -> str:
        """What the weight under image coordinates (x: column, y: row) is; "" if none."""
        row, col = math.floor(y), math.floor(x)
        block = self._block_at(row)
        if block is None or not 0 <= col < block.layer.in_features:
            return ""
        unit, value = row - block.row, self._weights[row, col]
        where = f"input (column) {col}"
        if self._reader is not None and self._reader.name == block.layer.name:
            width = self._input_shape()[-1]
            where += f" = pixel (row {col // width}, col {col % width})"
        return f"{block.layer.name}   output unit (row) {unit}   {where}   weight {value:+.4g}"

    def bias_text_at(self, y: float) -> str:
        """The bias of the unit at image row ``y`` of the bias strip; "" if none."""
        row = math.floor(y)
        block = self._block_at(row)
        if block is None or not block.layer.has_bias:
            return ""
        unit = row - block.row
        return f"{block.layer.name}   output unit (row) {unit}   bias {self._biases[row, 0]:+.4g}"

    def _input_shape(self) -> tuple[int, ...]:
        loaded = self.session.loaded
        return tuple(loaded.input_shape) if loaded is not None else ()

    def _mouse_moved(self, args: tuple[QPointF]) -> None:
        pos, text = args[0], ""
        if self._blocks and self.plot.vb.sceneBoundingRect().contains(pos):
            p = self.image.mapFromScene(pos)
            text = self.text_at(p.x(), p.y())
        elif self._blocks and self.bias_plot.vb.sceneBoundingRect().contains(pos):
            text = self.bias_text_at(self.bias_image.mapFromScene(pos).y())
        self.readout.setText(text or HOVER_HINT)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        self.readout.setText(HOVER_HINT)
        super().leaveEvent(event)

    # ----- theme -----------------------------------------------------------------------------
    def palette_changed(self) -> None:
        self._apply_palette()

    def _colours_changed(self, *_: object) -> None:
        self._apply_palette()
        self.mark_stale()

    def _apply_palette(self) -> None:
        """Background and text from the widget palette, so both themes read well; the
        signed colours, zero in the background's shade."""
        apply_palette(self, self.graphics, [self.plot, self.bias_plot], self.colour_bar)
        self.colour_bar.setColorMap(colours.colormap(self.palette()))
        self.colour_bar.axis.setLabel(f"weight: {colours.current().legend}")


def apply_palette(
    widget: QWidget, graphics: pg.GraphicsLayoutWidget, plots: list, colour_bar: pg.ColorBarItem
) -> None:
    """Give a panel's plots and colour bar the widget's theme colours."""
    pal = widget.palette()
    bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
    dim = QColor(fg)
    dim.setAlpha(110)
    graphics.setBackground(bg)
    for plot in [*plots, colour_bar]:
        for side in ("left", "bottom", "right", "top"):
            axis = plot.getAxis(side)
            axis.setPen(dim)
            axis.setTextPen(fg)
    # The real values on the colour bar, never "(x0.001)" beside its label.
    colour_bar.axis.setSIPrefixEnableRanges(())
    colour_bar.axis.enableAutoSIPrefix(False)
    if colour_bar.region is not None:
        for line in colour_bar.region.lines:
            line.setPen(pg.mkPen(fg, width=1))
