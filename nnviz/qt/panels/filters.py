"""The filters panel: every convolution filter of a layer as a small picture.

A conv layer's weights (out, in, kh, kw) become ONE mosaic image: rows are filters
(output channels), columns the input channels they read (or the other way round when
that draws them larger in the panel's shape), with a NaN gap between tiles that draws
transparent. A layer that reads one channel (lenet's first), or the view averaged over
the inputs, has one tile per filter, wrapped into the grid that draws them largest. A
click enlarges a filter below the grid; until then the grid has the whole panel.
One ImageItem for the whole layer costs about a millisecond where an item per filter
costs ten, so the panel follows training live: watch
lenet's first layer grow edge detectors. ``redraw`` fills a preallocated array with
numpy and hands it over in one ``setImage``. Right-click a filter to switch off its
output channel (``intervention_menu``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPalette, QPen, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from nnviz.qt import colours
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.intervention_menu import InterventionControls, UnitMarkers
from nnviz.qt.panels.mosaic import (
    Mosaic,
    apply_palette,
    best_wrap,
    fit,
    image_plot,
    message_pages,
    model_layers,
    numpy_copy,
    readout_label,
    set_bar_levels,
    symmetric_limit,
    tile_scale,
    tile_ticks,
)
from nnviz.state import Session

NO_CONV_MESSAGE = "No convolution layers in this model \u2014 see Weights and Receptive fields"
HOVER_HINT = "Click a filter to enlarge it; right-click it to switch it off"
# Room the axes, their labels and the colour bar take beside the grid, in pixels.
AXES_WIDTH, AXES_HEIGHT = 130, 50
DETAIL_SHARE = 0.3  # of the height, for the enlarged filter once one is picked


# ----- the panel -------------------------------------------------------------------------
class FiltersPanel(Panel):
    """Every conv filter of a layer as a picture, live while training; click to enlarge."""

    title = "Filters"
    object_name = "filters"
    area: ClassVar = Qt.DockWidgetArea.RightDockWidgetArea

    filter_selected = Signal(str, int)  # layer, out-channel: the user picked a filter

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self._layers: list[str] = []
        self._mosaic: Mosaic | None = None
        self._shown: np.ndarray | None = None  # (out, in or 1, kh, kw) real weights on screen
        self._bias: np.ndarray | None = None
        self._in_channels = 0
        self._wrapped = False  # one tile per filter, in reading order (not filter x input)
        self._transposed = False  # filters along the columns, in-channels down the rows
        self._detail_shape: tuple[int, ...] = ()
        self.selected: tuple[int, int] | None = None  # (out-channel, in-channel) enlarged

        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("The convolution layer whose filters are shown")
        self.average = QCheckBox("Average inputs")
        self.average.setToolTip("One tile per filter: its mean over the input channels")
        self.per_filter = QCheckBox("Scale each")
        self.per_filter.setToolTip(
            "Scale every tile to its own largest weight, so weak filters show their shape too"
        )
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        bar.addWidget(QLabel("Layer"))
        bar.addWidget(self.layer_combo, 1)
        bar.addWidget(self.average)
        bar.addWidget(self.per_filter)

        self.graphics = pg.GraphicsLayoutWidget()
        self.mosaic_plot, self.mosaic_image = image_plot()
        self.mosaic_plot.showAxis("left")
        self.mosaic_plot.showAxis("top")
        self.mosaic_plot.setLabel("left", "filter (out-channel)")
        self.graphics.addItem(self.mosaic_plot, row=0, col=0)
        self.colour_bar = pg.ColorBarItem(interactive=False, width=12)
        self.graphics.addItem(self.colour_bar, row=0, col=1)
        self.highlight = QGraphicsRectItem()
        self.highlight.setZValue(10)
        self.highlight.hide()
        self.mosaic_plot.addItem(self.highlight)
        self.markers = UnitMarkers()  # filters switched off (their output channel)
        self.mosaic_plot.addItem(self.markers)
        self.interventions = InterventionControls(self, "filter")

        self.detail_label = QLabel()
        self.detail_label.setWordWrap(True)
        self.detail_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.hide_detail = QPushButton("Hide")
        self.hide_detail.setToolTip("Close the enlarged filter: the grid takes the room")
        self.detail_graphics = pg.GraphicsLayoutWidget()
        self.detail_plot, self.detail_image = image_plot()
        self.detail_graphics.addItem(self.detail_plot)
        self.detail = QWidget()  # shown only while a filter is picked
        detail_layout = QVBoxLayout(self.detail)
        detail_layout.setContentsMargins(4, 0, 4, 0)
        title = QHBoxLayout()
        title.addWidget(self.detail_label, 1)
        title.addWidget(self.hide_detail)
        detail_layout.addLayout(title)
        detail_layout.addWidget(self.detail_graphics, 1)
        self.detail.hide()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.graphics)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)

        self.readout = readout_label()
        self.readout.setText(HOVER_HINT)
        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.setSpacing(2)
        content_layout.addLayout(bar)
        content_layout.addWidget(self.splitter, 1)
        content_layout.addWidget(self.readout)
        self.pages, self.message = message_pages(self, content)
        self._apply_palette()

        self.layer_combo.currentIndexChanged.connect(self._layer_changed)
        self.average.toggled.connect(self._view_changed)
        self.per_filter.toggled.connect(self.mark_stale)
        self.hide_detail.clicked.connect(self.clear_selection)
        self._mouse = pg.SignalProxy(
            self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved
        )
        self._detail_mouse = pg.SignalProxy(
            self.detail_graphics.scene().sigMouseMoved, rateLimit=30, slot=self._detail_moved
        )
        self.graphics.scene().sigMouseClicked.connect(self._clicked)
        self.listen(session.model_loaded, self.reload)
        self.listen(session.snapshot_changed, self.mark_stale)
        self.listen(colours.changed, self._colours_changed)
        self.reload()

    # ----- model and choices -------------------------------------------------------------
    def layer_names(self) -> list[str]:
        """The model's conv layers, in the order they run."""
        return list(self._layers)

    def reload(self) -> None:
        """A different model: list its conv layers (exported ones by their weights' names)."""
        module = self.session.view_model
        weights = module.state_dict() if module is not None else {}
        layers = model_layers(self.session)
        self.interventions.set_layers(layers)
        types = {layer.name: layer.type for layer in layers}
        if not types and module is not None:
            types = {name: type(m).__name__ for name, m in module.named_modules()}
        self._layers = [
            name
            for name, kind in types.items()
            if kind == "Conv2d" and getattr(weights.get(f"{name}.weight"), "ndim", 0) == 4
        ]
        previous = self.layer_combo.currentData()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for name in self._layers:
            out, inp, kh, kw = weights[f"{name}.weight"].shape
            self.layer_combo.addItem(f"{name} ({out}\u00d7{inp}\u00d7{kh}\u00d7{kw})", name)
        if previous in self._layers:
            self.layer_combo.setCurrentIndex(self._layers.index(previous))
        self.layer_combo.blockSignals(False)
        self.selected = None
        self.mark_stale()

    def current_layer(self) -> str | None:
        return self.layer_combo.currentData()

    def set_layer(self, name: str) -> None:
        """Show the filters of conv layer ``name``."""
        self.layer_combo.setCurrentIndex(self._layers.index(name))

    def _layer_changed(self) -> None:
        self.selected = None
        self.mark_stale()

    def _view_changed(self) -> None:
        if self.selected is not None:
            self.selected = (self.selected[0], 0)
        self.mark_stale()

    def clear_selection(self) -> None:
        """No filter enlarged: the grid has the whole panel again."""
        self.selected = None
        self.mark_stale()
        self.refresh(force=True)

    def select_filter(self, out_channel: int, in_channel: int = 0) -> None:
        """Enlarge one filter (in the averaged view, its mean over the inputs)."""
        layer = self.current_layer()
        if layer is None:
            return
        self.selected = (out_channel, 0 if self.average.isChecked() else in_channel)
        self.mark_stale()
        self.refresh(force=True)  # the answer to a click: draw it now
        self.filter_selected.emit(layer, out_channel)

    # ----- drawing -----------------------------------------------------------------------
    def redraw(self) -> None:
        module = self.session.view_model
        if module is None:
            self._show_message("No model loaded")
            return
        layer = self.current_layer()
        if layer is None:
            self._show_message(NO_CONV_MESSAGE)
            return
        self.pages.setCurrentIndex(0)
        weights = module.state_dict()
        # Copies: the weights change under us while training; the picture must not.
        w = numpy_copy(weights[f"{layer}.weight"])
        bias = weights.get(f"{layer}.bias")
        self._bias = None if bias is None else numpy_copy(bias)
        self._in_channels = w.shape[1]
        shown = w.mean(axis=1, keepdims=True) if self.average.isChecked() else w
        self._shown = shown
        out, cols, kh, kw = shown.shape
        self._show_detail(self.selected is not None and self.selected[0] < out)
        # A single column of tiles (averaged, or a first layer that reads one channel)
        # wraps into the grid that draws them largest; filter x in-channel grids lie
        # along the panel's longer side (lenet's conv2, 16 x 6, is wide in a wide panel).
        wrapped, transposed = cols == 1, False
        rows = out
        area = self._grid_area()
        if wrapped:
            rows, cols = best_wrap(out, kh, kw, *area)
        elif tile_scale(cols, out, kh, kw, *area) > tile_scale(out, cols, kh, kw, *area):
            rows, cols, transposed = cols, out, True
        layout = (rows, cols, kh, kw, 1)
        shape = (layout, wrapped, transposed)
        if self._mosaic is None or (self._mosaic.layout, self._wrapped, self._transposed) != shape:
            self._mosaic, self._wrapped, self._transposed = Mosaic(*layout[:4]), *shape[1:]
            self._set_axes()
        if self.per_filter.isChecked():
            scale = np.abs(shown).max(axis=(2, 3), keepdims=True)
            display = shown / np.where(scale > 0, scale, 1.0)
            limit = 1.0
        else:
            display, limit = shown, symmetric_limit(shown)
        if wrapped:
            self._mosaic.fill_reading_order(display[:, 0])
        else:
            self._mosaic.fill_grid(display.transpose(1, 0, 2, 3) if transposed else display)
        levels = (-limit, limit)
        self.mosaic_image.setImage(self._mosaic.image, autoLevels=False, levels=levels)
        set_bar_levels(self.colour_bar, levels)
        self._draw_detail(layer, display, levels)
        self._draw_markers(layer)

    def _grid_area(self) -> tuple[float, float]:
        """The room for the grid now, in pixels: the view less its axes and colour bar."""
        width, height = self.graphics.width() - AXES_WIDTH, self.graphics.height() - AXES_HEIGHT
        return max(width, 40), max(height, 40)

    def _show_detail(self, on: bool) -> None:
        """The enlarged filter below the grid, with ``DETAIL_SHARE`` of the height."""
        if on == self.detail.isVisible():
            return
        self.detail.setVisible(on)
        if on:
            height = max(self.splitter.height(), 100)
            share = round(height * DETAIL_SHARE)
            self.splitter.setSizes([height - share, share])

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.mark_stale()  # another shape may draw the filters larger

    def _draw_markers(self, layer: str) -> None:
        """A marker on every tile of each switched-off or clamped filter."""
        m = self._mosaic
        spots = []
        for o, value in self.interventions.changed_units(layer).items():
            for i in range(1 if self._wrapped else self._shown.shape[1]):
                if o < len(self._shown):
                    x, y = m.origin(*self._tile_of(o, i))
                    size = 0.8 * min(m.tile_h, m.tile_w)
                    spots.append(((o, i), x + m.tile_w / 2, y + m.tile_h / 2, size, value))
        self.markers.show_units(spots)

    def _set_axes(self) -> None:
        mosaic = self._mosaic
        assert mosaic is not None
        left, top = self.mosaic_plot.getAxis("left"), self.mosaic_plot.getAxis("top")
        if self._wrapped:
            out, cols = len(self._shown), mosaic.cols

            def filters_in_row(r: int) -> str:
                last = min((r + 1) * cols, out) - 1
                return f"{r * cols}\u2013{last}" if last > r * cols else str(last)

            left.setTicks(tile_ticks(mosaic.rows, mosaic.tile_h + 1, mosaic.tile_h, filters_in_row))
            self.mosaic_plot.setLabel("left", "filters, in reading order")
            top.setTicks([[]])
            self.mosaic_plot.setLabel(
                "top",
                f"mean over {self._in_channels} in-channels"
                if self.average.isChecked() and self._in_channels > 1
                else "one in-channel",
            )
        else:
            left.setTicks(tile_ticks(mosaic.rows, mosaic.tile_h + 1, mosaic.tile_h))
            top.setTicks(tile_ticks(mosaic.cols, mosaic.tile_w + 1, mosaic.tile_w))
            filters, inputs = "filter (out-channel)", "in-channel"
            if self._transposed:
                filters, inputs = inputs, filters
            self.mosaic_plot.setLabel("left", filters)
            self.mosaic_plot.setLabel("top", inputs)
        fit(self.mosaic_plot, mosaic.image.shape)

    def _draw_detail(self, layer: str, display: np.ndarray, levels: tuple[float, float]) -> None:
        if self.selected is None or self.selected[0] >= display.shape[0]:
            self.selected = None
            self.highlight.hide()
            self.detail_image.clear()
            self._show_detail(False)
            return
        o, i = self.selected
        self.detail_image.setImage(
            np.ascontiguousarray(display[o, i]), autoLevels=False, levels=levels
        )
        x, y = self._mosaic.origin(*self._tile_of(o, i))
        self.highlight.setRect(QRectF(x - 0.5, y - 0.5, display.shape[3] + 1, display.shape[2] + 1))
        self.highlight.show()
        inputs = self._inputs_text(i)
        bias = "no bias" if self._bias is None else f"bias {self._bias[o]:+.4f}"
        scaled = " (scaled to its own max)" if self.per_filter.isChecked() else ""
        self.detail_label.setText(
            f"{layer} \u00b7 filter {o} \u00b7 {inputs} \u00b7 {bias}{scaled}"
        )
        if self._detail_shape != display.shape[2:]:
            self._detail_shape = display.shape[2:]
            fit(self.detail_plot, display.shape[2:])

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.pages.setCurrentIndex(1)

    # ----- hover and click ---------------------------------------------------------------
    def describe_at(self, x: float, y: float) -> str:
        """What lies under mosaic point (x, y): layer, filter, in-channel, row, col, weight."""
        hit = self._filter_at(x, y)
        return "" if hit is None else self._describe(*hit)

    def _filter_at(self, x: float, y: float) -> tuple[int, int, int, int] | None:
        """(out-channel, in-channel, row, col) under mosaic point (x, y), or None."""
        hit = self._mosaic.locate(x, y) if self._mosaic is not None else None
        if hit is None or self._shown is None:
            return None
        r, c, row, col = hit
        if self._transposed:
            return c, r, row, col
        if not self._wrapped:
            return r, c, row, col
        o = r * self._mosaic.cols + c
        return (o, 0, row, col) if o < len(self._shown) else None

    def _tile_of(self, out_channel: int, in_channel: int) -> tuple[int, int]:
        """(row, col) of a filter's tile in the mosaic."""
        assert self._mosaic is not None
        if self._wrapped:
            return divmod(out_channel, self._mosaic.cols)
        return (in_channel, out_channel) if self._transposed else (out_channel, in_channel)

    def _describe(self, o: int, i: int, row: int, col: int) -> str:
        assert self._shown is not None
        inputs = self._inputs_text(i)
        value = self._shown[o, i, row, col]
        return (
            f"{self.current_layer()} \u00b7 filter {o} (out-channel) \u00b7 {inputs} \u00b7 "
            f"row {row}, col {col} \u00b7 weight {value:+.4f}"
        )

    def _inputs_text(self, in_channel: int) -> str:
        if self.average.isChecked() and self._in_channels > 1:
            return f"mean over {self._in_channels} in-channels"
        return f"in-channel {in_channel}"

    def tile_centre(self, out_channel: int, in_channel: int = 0) -> QPointF:
        """Mosaic coordinates of a tile's centre (where a click selects it)."""
        assert self._mosaic is not None
        x, y = self._mosaic.origin(*self._tile_of(out_channel, in_channel))
        return QPointF(x + self._mosaic.tile_w / 2, y + self._mosaic.tile_h / 2)

    def _mouse_moved(self, args: tuple[QPointF]) -> None:
        pos = args[0]
        if self.mosaic_plot.getViewBox().sceneBoundingRect().contains(pos):
            p = self.mosaic_image.mapFromScene(pos)
            self.readout.setText(self.describe_at(p.x(), p.y()) or HOVER_HINT)
        else:
            self.readout.setText(HOVER_HINT)

    def _detail_moved(self, args: tuple[QPointF]) -> None:
        p = self.detail_image.mapFromScene(args[0])
        image = self.detail_image.image
        if self.selected is None or image is None:
            return
        row, col = int(p.y()), int(p.x())
        if p.x() >= 0 and p.y() >= 0 and row < image.shape[0] and col < image.shape[1]:
            self.readout.setText(self._describe(*self.selected, row, col))
        else:
            self.readout.clear()

    def _clicked(self, event: object) -> None:
        pos = event.scenePos()
        if not self.mosaic_plot.getViewBox().sceneBoundingRect().contains(pos):
            return
        p = self.mosaic_image.mapFromScene(pos)
        hit = self._filter_at(p.x(), p.y())  # None without a mosaic
        if hit is None:
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self.select_filter(hit[0], hit[1])
        elif event.button() == Qt.MouseButton.RightButton:
            # A filter's output is its channel of the layer's output: that is what goes off.
            screen = event.screenPos().toPoint()
            self.interventions.open_menu(self.current_layer(), hit[0], screen)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        self.readout.setText(HOVER_HINT)
        super().leaveEvent(event)

    # ----- theme -------------------------------------------------------------------------
    def palette_changed(self) -> None:
        self._apply_palette()

    def _colours_changed(self, *_: object) -> None:
        self._apply_palette()
        self.mark_stale()

    def _apply_palette(self) -> None:
        fg = apply_palette(
            self,
            [self.graphics, self.detail_graphics],
            [self.mosaic_plot, self.detail_plot],
            [self.colour_bar],
            self.message,
        )
        cmap = colours.colormap(self.palette())
        for image in (self.mosaic_image, self.detail_image):
            image.setColorMap(cmap)
        self.colour_bar.setColorMap(cmap)
        self.colour_bar.axis.setLabel(f"weight: {colours.current().legend}")
        self.highlight.setPen(QPen(QColor(fg), 0))  # cosmetic: one pixel at any zoom
        self.markers.set_background(self.palette().color(QPalette.ColorRole.Base))
