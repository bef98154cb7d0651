"""The feature maps panel: what each conv, activation and pooling layer makes of the input.

Every layer whose output is a stack of images (N, C, H, W) becomes ONE mosaic picture,
one tile per channel in reading order: one ImageItem per layer costs about a
millisecond where an item per map costs ten (shared/design/PITFALLS.md). Levels are
per layer: maps that are never negative (after a ReLU, or a pooling of one) use a
sequential colour map from zero; signed maps (a conv's raw output) use the diverging
map with levels symmetric about zero, so white is always zero. The activations come
from ``session.activations()``, computed once per input and weights and shared by all
panels, so following the input and live training costs a few ``setImage`` calls.

``Mosaic`` and the helpers before the panel are shared with the filters panel.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pyqtgraph as pg
from numpy.lib.stride_tricks import as_strided
from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.core.inspect import LayerInfo, summarize
from nnviz.qt.panels.base import Panel
from nnviz.state import Session

DIVERGING = "CET-D1"  # blue-white-red: zero is white, the sign is the hue
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
ALL_LAYERS = "All layers"
# Layers whose output is their input at inference time: a copy would only repeat a row.
_PASS_THROUGH = ("Dropout", "Identity")
NO_MAPS_MESSAGE = (
    "No feature maps in this model: none of its layers outputs images (channels \u00d7 "
    "height \u00d7 width) as convolution layers do \u2014 see Activations"
)


class _LayerMaps:
    """One layer's maps: a titled plot with its mosaic image and a colour bar."""

    def __init__(self, name: str, kind: str, channels: int, height: int, width: int) -> None:
        self.name, self.channels = name, channels
        cols = math.ceil(math.sqrt(channels))
        gap = max(1, height // 12)  # visible between big maps, not wider than small ones
        self.mosaic = Mosaic(math.ceil(channels / cols), cols, height, width, gap)
        self.plot, self.image = image_plot()
        self.plot.setTitle(f"{name} ({kind}): {channels} maps of {height}\u00d7{width}")
        fit(self.plot, self.mosaic.image.shape)
        self.bar = pg.ColorBarItem(interactive=False, width=10)
        self.signed: bool | None = None
        self.values: np.ndarray | None = None  # (C, H, W) as drawn

    @property
    def aspect(self) -> float:
        """Height over width of the mosaic picture."""
        return self.mosaic.image.shape[0] / self.mosaic.image.shape[1]

    def draw(self, maps: np.ndarray) -> None:
        """Show (C, H, W) maps with this layer's own levels."""
        self.values = maps
        self.mosaic.fill_reading_order(maps)
        signed = bool((maps < 0).any())
        limit = symmetric_limit(maps)
        levels = (-limit, limit) if signed else (0.0, limit)
        if signed != self.signed:
            self.signed = signed
            cmap = pg.colormap.get(DIVERGING if signed else SEQUENTIAL)
            self.image.setColorMap(cmap)
            self.bar.setColorMap(cmap)
        self.image.setImage(self.mosaic.image, autoLevels=False, levels=levels)
        set_bar_levels(self.bar, levels)

    def describe(self, x: float, y: float) -> str:
        """Layer, channel, y, x and value under mosaic point (x, y); "" off the maps."""
        hit = self.mosaic.locate(x, y)
        if hit is None or self.values is None:
            return ""
        row, col, ty, tx = hit
        channel = row * self.mosaic.cols + col
        if channel >= self.channels:
            return ""
        value = self.values[channel, ty, tx]
        return (
            f"{self.name} \u00b7 channel {channel} \u00b7 y {ty}, x {tx} \u00b7 value {value:.4f}"
        )


class FeatureMapsPanel(Panel):
    """Every channel of every image-shaped layer output, for the current input."""

    title = "Feature maps"
    object_name = "feature_maps"
    area: ClassVar = Qt.DockWidgetArea.RightDockWidgetArea

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.layers: dict[str, _LayerMaps] = {}
        self._shown: list[str] = []

        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("One layer's maps, or every layer's, one under another")
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        bar.addWidget(QLabel("Layer"))
        bar.addWidget(self.layer_combo, 1)
        self.graphics = pg.GraphicsLayoutWidget()
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.graphics)
        self.scroll.viewport().installEventFilter(self)  # rows follow its width
        self.readout = readout_label()
        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.setSpacing(2)
        content_layout.addLayout(bar)
        content_layout.addWidget(self.scroll, 1)
        content_layout.addWidget(self.readout)
        self.pages, self.message = message_pages(self, content)

        self.layer_combo.currentIndexChanged.connect(self._arrange)
        self._mouse = pg.SignalProxy(
            self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved
        )
        self.listen(session.model_loaded, self.reload)
        self.listen(session.input_changed, self.mark_stale)
        self.listen(session.snapshot_changed, self.mark_stale)
        self.reload()

    # ----- model and choices -------------------------------------------------------------
    def layer_names(self) -> list[str]:
        """Layers with image-shaped output, in the order they run."""
        return list(self.layers)

    def reload(self) -> None:
        """A different model: one mosaic per layer with (1, C, H, W) output."""
        previous = self.layer_combo.currentText()
        self.graphics.clear()
        self.layers = {
            info.name: _LayerMaps(info.name, info.type, *info.output_shape[1:])
            for info in model_layers(self.session)
            if len(info.output_shape) == 4 and not info.type.startswith(_PASS_THROUGH)
        }
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        if self.layers:
            self.layer_combo.addItems([ALL_LAYERS, *self.layers])
            if previous in self.layers:
                self.layer_combo.setCurrentText(previous)
        self.layer_combo.blockSignals(False)
        self._apply_palette()
        self._arrange()

    def set_layer(self, name: str | None) -> None:
        """Show one layer's maps, or every layer's (None)."""
        self.layer_combo.setCurrentText(name or ALL_LAYERS)

    def shown_layers(self) -> list[str]:
        return list(self._shown)

    def _arrange(self) -> None:
        """Put the chosen layer (or all of them, one per row) into the view."""
        self.graphics.clear()
        choice = self.layer_combo.currentText()
        names = list(self.layers) if choice == ALL_LAYERS else [choice]
        self._shown = [name for name in names if name in self.layers]
        for row, name in enumerate(self._shown):
            self.graphics.addItem(self.layers[name].plot, row=row, col=0)
            self.graphics.addItem(self.layers[name].bar, row=row, col=1)
        self._fit_heights()
        self.mark_stale()

    def _fit_heights(self) -> None:
        """Alone, a layer fills the view; together, each gets a row as tall as it needs at
        the view's width, and the view scrolls."""
        grid = self.graphics.ci.layout
        width = max(100, self.scroll.viewport().width() - 80)  # less the colour bar
        total = 0.0
        for row, name in enumerate(self._shown):
            if len(self._shown) == 1:
                grid.setRowMinimumHeight(row, 0)
                grid.setRowMaximumHeight(row, 1e6)
            else:
                height = min(max(width * self.layers[name].aspect, 90), 480) + 28  # + title
                grid.setRowFixedHeight(row, height)
                total += height
        self.graphics.setMinimumHeight(int(total) if len(self._shown) > 1 else 0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Resize and len(self._shown) > 1:
            self._fit_heights()
        return False

    # ----- drawing -----------------------------------------------------------------------
    def redraw(self) -> None:
        if self.session.loaded is None:
            self._show_message("No model loaded")
            return
        if not self.layers:
            self._show_message(NO_MAPS_MESSAGE)
            return
        if self.session.current_input is None:
            self._show_message("Pick a digit (or draw one) to see what each layer makes of it")
            return
        try:
            activations = self.session.activations()
        except NnvizError as exc:
            self._show_message(f"The model could not run on this input: {exc}")
            return
        self.pages.setCurrentIndex(0)
        for name in self._shown:  # a layer out of sight is not drawn
            maps = activations.get(name)
            if maps is not None and maps.ndim == 4:
                self.layers[name].draw(maps[0])

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.pages.setCurrentIndex(1)

    # ----- hover -------------------------------------------------------------------------
    def describe_at(self, layer: str, x: float, y: float) -> str:
        """What lies under point (x, y) of ``layer``'s mosaic: channel, y, x and value."""
        return self.layers[layer].describe(x, y)

    def tile_centre(self, layer: str, channel: int) -> QPointF:
        """Mosaic coordinates of the centre of ``channel``'s map in ``layer``."""
        mosaic = self.layers[layer].mosaic
        x, y = mosaic.origin(*divmod(channel, mosaic.cols))
        return QPointF(x + mosaic.tile_w / 2, y + mosaic.tile_h / 2)

    def _mouse_moved(self, args: tuple[QPointF]) -> None:
        pos = args[0]
        for name in self._shown:
            maps = self.layers[name]
            if maps.plot.getViewBox().sceneBoundingRect().contains(pos):
                p = maps.image.mapFromScene(pos)
                self.readout.setText(maps.describe(p.x(), p.y()))
                return
        self.readout.clear()

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        self.readout.clear()
        super().leaveEvent(event)

    # ----- theme -------------------------------------------------------------------------
    def palette_changed(self) -> None:
        self._apply_palette()

    def _apply_palette(self) -> None:
        layers = list(self.layers.values())
        plots = [maps.plot for maps in layers]
        fg = apply_palette(self, [self.graphics], plots, [m.bar for m in layers], self.message)
        for plot in plots:
            plot.setTitle(plot.titleLabel.text, color=fg, size="9pt")
