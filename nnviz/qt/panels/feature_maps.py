"""The feature maps panel: what each conv, activation and pooling layer makes of the input.

Every layer whose output is a stack of images (N, C, H, W) becomes ONE mosaic picture,
one tile per channel in reading order: one ImageItem per layer costs about a
millisecond where an item per map costs ten. Levels are per layer: maps that are never
negative (after a ReLU, or a pooling of one) use a sequential colour map from zero;
signed maps (a conv's raw output) use the app's signed colours (``nnviz.qt.colours``)
with levels symmetric about zero, so zero is always the background's shade. The activations come
from ``session.activations()``, computed once per input and weights and shared by all
panels, so following the input and live training costs a few ``setImage`` calls.

The mosaic and the helpers it shares with the filters panel are in ``mosaic``.
Right-click a map to switch its channel off or clamp it (``intervention_menu``).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.qt import colours
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.intervention_menu import InterventionControls, UnitMarkers, state_text
from nnviz.qt.panels.mosaic import (
    SEQUENTIAL,
    Mosaic,
    apply_palette,
    fit,
    image_plot,
    message_pages,
    model_layers,
    readout_label,
    set_bar_levels,
    symmetric_limit,
)
from nnviz.state import Session

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
        self.markers = UnitMarkers()  # switched-off and clamped channels
        self.plot.addItem(self.markers)
        self.signed: bool | None = None
        self.signed_map = colours.colormap(QPalette())  # the panel gives its theme's
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
            cmap = self.signed_map if signed else pg.colormap.get(SEQUENTIAL)
            self.image.setColorMap(cmap)
            self.bar.setColorMap(cmap)
            self.bar.axis.setLabel(colours.current().legend if signed else "")
        self.image.setImage(self.mosaic.image, autoLevels=False, levels=levels)
        set_bar_levels(self.bar, levels)

    def mark(self, changed: dict[int, float]) -> None:
        """A marker across each switched-off or clamped channel's map."""
        m = self.mosaic
        spots = []
        for channel, value in changed.items():
            if channel < self.channels:
                x, y = m.origin(*divmod(channel, m.cols))
                size = 0.8 * min(m.tile_h, m.tile_w)
                spots.append((channel, x + m.tile_w / 2, y + m.tile_h / 2, size, value))
        self.markers.show_units(spots)

    def channel_at(self, x: float, y: float) -> tuple[int, int, int] | None:
        """(channel, y, x within its map) under mosaic point (x, y), or None."""
        hit = self.mosaic.locate(x, y)
        if hit is None:
            return None
        row, col, ty, tx = hit
        channel = row * self.mosaic.cols + col
        return (channel, ty, tx) if channel < self.channels else None

    def describe(self, x: float, y: float) -> str:
        """Layer, channel, y, x and value under mosaic point (x, y); "" off the maps."""
        hit = self.channel_at(x, y)
        if hit is None or self.values is None:
            return ""
        channel, ty, tx = hit
        value = self.values[channel, ty, tx]
        state = state_text(self.markers.marked.get(channel))
        return (
            f"{self.name} \u00b7 channel {channel} \u00b7 y {ty}, x {tx} \u00b7 value {value:.4f}"
            + (f" \u00b7 {state}" if state else "")
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
        self.interventions = InterventionControls(self, "channel")

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
        self.graphics.scene().sigMouseClicked.connect(self._clicked)
        self.listen(session.model_loaded, self.reload)
        self.listen(session.input_changed, self.mark_stale)
        self.listen(session.snapshot_changed, self.mark_stale)
        self.listen(colours.changed, self._colours_changed)
        self.reload()

    # ----- model and choices -------------------------------------------------------------
    def layer_names(self) -> list[str]:
        """Layers with image-shaped output, in the order they run."""
        return list(self.layers)

    def reload(self) -> None:
        """A different model: one mosaic per layer with (1, C, H, W) output."""
        previous = self.layer_combo.currentText()
        self.graphics.clear()
        layers = model_layers(self.session)
        self.interventions.set_layers(layers)
        self.layers = {
            info.name: _LayerMaps(info.name, info.type, *info.output_shape[1:])
            for info in layers
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
                self.layers[name].mark(self.interventions.changed_units(name))

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

    def _layer_at(self, scene_pos: QPointF) -> tuple[_LayerMaps, QPointF] | None:
        """The shown layer under a scene point, and the point in its mosaic."""
        for name in self._shown:
            maps = self.layers[name]
            if maps.plot.getViewBox().sceneBoundingRect().contains(scene_pos):
                return maps, maps.image.mapFromScene(scene_pos)
        return None

    def _mouse_moved(self, args: tuple[QPointF]) -> None:
        hit = self._layer_at(args[0])
        if hit is None:
            self.readout.clear()
        else:
            self.readout.setText(hit[0].describe(hit[1].x(), hit[1].y()))

    def _clicked(self, event: object) -> None:
        """Right-click a map: switch its channel off, clamp it or restore it."""
        hit = self._layer_at(event.scenePos())
        if event.button() != Qt.MouseButton.RightButton or hit is None:
            return
        maps, p = hit
        channel = maps.channel_at(p.x(), p.y())
        if channel is not None:
            self.interventions.open_menu(maps.name, channel[0], event.screenPos().toPoint())

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        self.readout.clear()
        super().leaveEvent(event)

    # ----- theme -------------------------------------------------------------------------
    def palette_changed(self) -> None:
        self._apply_palette()

    def _colours_changed(self, *_: object) -> None:
        self._apply_palette()
        self.mark_stale()

    def _apply_palette(self) -> None:
        layers = list(self.layers.values())
        plots = [maps.plot for maps in layers]
        fg = apply_palette(self, [self.graphics], plots, [m.bar for m in layers], self.message)
        signed_map = colours.colormap(self.palette())
        for maps in layers:
            maps.plot.setTitle(maps.plot.titleLabel.text, color=fg, size="9pt")
            maps.signed_map, maps.signed = signed_map, None  # taken at the next draw
            maps.markers.set_background(self.palette().color(QPalette.ColorRole.Base))
