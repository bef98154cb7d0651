"""The activations panel: how strongly each unit of each layer responds to the current input.

Which layers are shown: a layer's output is drawn once, at the end of the elementwise
steps that follow it. A Linear or Conv layer followed by an activation function (or a
normalisation) is shown through that function's output, the values the next layer
actually reads; one with no activation after it is shown as it is (the linear outputs).
Flatten, Dropout and Identity are skipped, since in eval mode they repeat the layer
before them, and so are pooling layers, whose channel means mostly repeat the
activation they pool. Dense layers (2-D outputs) show one cell per unit, wrapped in
rows of 16; conv-like layers (4-D outputs) show one cell per channel: its mean over
the image. The last layer is the output, shown as class probabilities. Right-click a
cell to switch its unit off or clamp it (``intervention_menu``).

Everything the panel draws sits in one ViewBox (one ImageItem per layer, NaN gaps
between cells, explicit levels) and one bar chart, built when the model changes and
updated with ``setImage``/``setOpts`` afterwards (see shared/design/PITFALLS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QGraphicsItem,
    QLabel,
    QSizePolicy,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.core.inspect import ACTIVATION_TYPES, NORM_TYPES, REPEAT_TYPES, LayerInfo, summarize
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.intervention_menu import InterventionControls, UnitMarkers
from nnviz.qt.panels.prediction_bars import PredictionBars
from nnviz.qt.theme import mix
from nnviz.state import Session

# Activation functions with a fixed range: their cells use it, so 0.5 looks the same
# in every layer and at every step of training.
FIXED_LEVELS = {
    "Sigmoid": (0.0, 1.0),
    "Hardsigmoid": (0.0, 1.0),
    "Softmax": (0.0, 1.0),
    "Tanh": (-1.0, 1.0),
    "Hardtanh": (-1.0, 1.0),
    "Softsign": (-1.0, 1.0),
}
COLUMNS = 16  # cells per row: 128 units -> 8 rows of 16
CELL_PX = 8  # image pixels per cell, the last row and column of each a NaN (transparent) gap
CAPTION_PX = 20  # a caption's line above its strip, in screen pixels at any zoom
LAYER_GAP = 0.6  # between one strip and the next caption, in cells
HOVER_HINT = "Hover over a cell or a bar to read its value"
POSITIVE, NEGATIVE = QColor(232, 96, 28), QColor(40, 120, 210)  # lit cells: orange / blue


def layers_to_show(layers: Sequence[LayerInfo]) -> list[LayerInfo]:
    """The hidden layers worth a strip (the module docstring says which); the last
    layer, the output, is left out: it is drawn as probabilities."""
    shown = []
    for i, layer in enumerate(layers[:-1]):
        if layer.type in REPEAT_TYPES or "Pool" in layer.type:
            continue
        after = next((n for n in layers[i + 1 :] if n.type not in REPEAT_TYPES), None)
        if (
            after is not None
            and after.type in ACTIVATION_TYPES | NORM_TYPES
            and after.output_shape == layer.output_shape
        ):
            continue  # drawn as the output of the step after it
        shown.append(layer)
    return shown


def unit_values(output: np.ndarray) -> np.ndarray:
    """One value per unit: dense outputs as they are, each channel's mean for conv outputs."""
    out = np.asarray(output, dtype=np.float32)[0]
    if out.ndim <= 1:
        return out.reshape(-1)
    return out.reshape(out.shape[0], -1).mean(axis=1)


@dataclass
class _Strip:
    """One layer's cells on screen."""

    layer: LayerInfo
    image: pg.ImageItem
    caption: pg.TextItem
    rect: QRectF  # in view units, one unit per cell
    rows: int
    cols: int
    colours: np.ndarray  # (rows * CELL_PX, cols * CELL_PX, 4) RGBA, the gaps transparent
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    levels: tuple[float, float] = (0.0, 1.0)
    lut: np.ndarray | None = None  # the colour map the cells were coloured with

    @property
    def per_channel(self) -> bool:
        return len(self.layer.output_shape) > 2


class ActivationsPanel(Panel):
    """Each layer's response to the current input, and the output as class probabilities."""

    title = "Activations"
    object_name = "activations"
    area: ClassVar = Qt.DockWidgetArea.RightDockWidgetArea

    unit_clicked = Signal(str, int)  # layer name, unit (or channel) index

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.strips: list[_Strip] = []
        self.probabilities = np.zeros(0, np.float32)
        self._built_for: Any = None  # the LoadedModel the items were built for
        self._classes: list[str] = []

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setToolTip(
            "One cell per unit (per channel for conv layers): the more orange, the higher; "
            "blue is below zero"
        )
        self.view: pg.ViewBox = self.graphics.addViewBox(row=0, col=0)
        self.view.invertY(True)
        self.view.setMouseEnabled(False, False)
        self.view.setMenuEnabled(False)
        # The output as painted bars below the strips, not a plot in the scene: they change
        # on every stroke on the canvas, and a bar item with ten text items cost 1.5 ms to
        # update and about as much to paint each time.
        self.output_title = QLabel("output: probability of each class")
        self.output_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.output_title.font()
        font.setPointSizeF(9.0)
        self.output_title.setFont(font)
        self.bars = PredictionBars()
        self.bars.setMouseTracking(True)
        self.bars.installEventFilter(self)
        self.message = pg.TextItem(anchor=(0.5, 0.5))
        self.view.addItem(self.message)
        self.markers = UnitMarkers()  # switched-off and clamped cells, all strips
        self.view.addItem(self.markers)
        self.interventions = InterventionControls(self)

        self.readout = QLabel(HOVER_HINT)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.readout.setContentsMargins(6, 0, 6, 2)
        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.body = QWidget()  # the strips above the output bars
        self.body.setAutoFillBackground(True)
        self.body.setBackgroundRole(QPalette.ColorRole.Base)
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        body.addWidget(self.graphics, 1)
        body.addWidget(self.output_title)
        body.addWidget(self.bars)
        self.stack = QStackedLayout()
        self.stack.addWidget(self.body)
        self.stack.addWidget(self.empty_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self.stack, 1)
        layout.addWidget(self.readout)
        self.setMinimumSize(220, 300)
        self._apply_palette()

        self.view.sigResized.connect(self._fit)
        scene = self.graphics.scene()
        self._mouse = pg.SignalProxy(scene.sigMouseMoved, rateLimit=30, slot=self._mouse_moved)
        scene.sigMouseClicked.connect(self._clicked)
        self.listen(session.model_loaded, self.mark_stale)
        self.listen(session.input_changed, self.mark_stale)
        self.listen(session.snapshot_changed, self.mark_stale)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(420, 640)  # room for a few strips above ten bars

    # ----- building (once per model) -----------------------------------------------------
    def _rebuild(self) -> None:
        loaded = self.session.loaded
        for strip in self.strips:
            self.view.removeItem(strip.image)
            self.view.removeItem(strip.caption)
        self.strips.clear()
        summary = summarize(loaded.program or loaded.module, tuple(loaded.input_shape))
        self._built_for = loaded  # only once it worked: a failure is tried again next frame
        self.interventions.set_layers(summary.layers)
        for layer in layers_to_show(summary.layers):
            units = int(layer.output_shape[1]) if len(layer.output_shape) > 1 else 1
            cols = min(units, COLUMNS)
            rows = -(-units // cols)
            caption = pg.TextItem(_caption(layer, units), anchor=(0.5, 1.0))
            # Drawn once into a pixmap: the strips beside it change at every mouse move
            # of a stroke, and their repaint re-rendered each caption's text.
            caption.textItem.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            colours = np.zeros((rows * CELL_PX, cols * CELL_PX, 4), np.uint8)
            image = pg.ImageItem(colours, axisOrder="row-major")
            self.view.addItem(caption)
            self.view.addItem(image)
            self.strips.append(_Strip(layer, image, caption, QRectF(), rows, cols, colours))
        self.message.setText("" if self.strips else "No hidden layers: only the output")
        self._fit()

        n = int(summary.layers[-1].output_shape[-1]) if summary.layers else 0
        names = list(loaded.class_names)
        self._classes = names if len(names) == n else [str(i) for i in range(n)]
        self.bars.set_classes(self._classes)
        # Up to 18 px a bar (the strips take the rest), down to 11 px in a short dock.
        self.bars.setMinimumHeight(11 * n + 12)
        self.bars.setMaximumHeight(18 * n + 12)
        self._apply_palette()  # colours the new items

    def _fit(self) -> None:
        """Square cells, as large as fit, from the top: the strips read top-down to the
        output below (an aspect-locked ViewBox would centre them vertically). Captions
        keep their height in pixels, so a small dock shrinks the cells, not the text."""
        width, height = max(self.view.width(), 1.0), max(self.view.height(), 1.0)
        rows = sum(strip.rows for strip in self.strips)
        gaps = LAYER_GAP * max(len(self.strips) - 1, 0) + 0.2
        wide = COLUMNS + 0.4
        scale = width / wide  # pixels per cell
        if rows:
            scale = min(scale, (height - CAPTION_PX * len(self.strips)) / (rows + gaps))
        scale = max(scale, 2.0)
        caption = CAPTION_PX / scale
        y = 0.0
        for strip in self.strips:
            strip.caption.setPos(COLUMNS / 2, y + caption - 2.0 / scale)
            strip.rect = QRectF((COLUMNS - strip.cols) / 2, y + caption, strip.cols, strip.rows)
            strip.image.setRect(strip.rect)
            y += caption + strip.rows + LAYER_GAP
        self._draw_markers()
        self.message.setPos(COLUMNS / 2, 1.0)
        span_x, span_y = width / scale, height / scale
        self.view.setRange(QRectF(-0.2 - (span_x - wide) / 2, 0.0, span_x, span_y), padding=0)

    # ----- drawing -----------------------------------------------------------------------
    def redraw(self) -> None:
        s = self.session
        if s.loaded is None:
            return self._show_empty("Load a model to see how its layers respond to a digit")
        if s.current_input is None:
            return self._show_empty("Pick an input to see how each layer responds to it")
        try:
            if self._built_for is not s.loaded:
                self._rebuild()
            acts = s.activations()
            probs = s.probabilities()
        except NnvizError as exc:
            return self._show_empty(f"Cannot show the activations: {exc}")
        self.stack.setCurrentWidget(self.body)
        for strip in self.strips:
            if strip.layer.name in acts:
                self._draw_strip(strip, unit_values(acts[strip.layer.name]))
        self._draw_markers()
        self._draw_bars(np.zeros(0) if probs is None else probs)

    def _draw_markers(self) -> None:
        """A marker on each switched-off or clamped cell, centred on the cell's colour."""
        centre = (CELL_PX - 1) / 2 / CELL_PX  # a cell's last pixel row and column are a gap
        spots = []
        for strip in self.strips:
            for unit, value in self.interventions.changed_units(strip.layer.name).items():
                row, col = divmod(unit, strip.cols)
                x, y = strip.rect.left() + col + centre, strip.rect.top() + row + centre
                spots.append(((strip.layer.name, unit), x, y, 0.8, value))
        self.markers.show_units(spots)

    def _show_empty(self, text: str) -> None:
        self.empty_label.setText(text)
        self.stack.setCurrentWidget(self.empty_label)

    def _draw_strip(self, strip: _Strip, values: np.ndarray) -> None:
        strip.values = values
        cells = np.full(strip.rows * strip.cols, np.nan, np.float32)
        cells[: len(values)] = values
        finite = values[np.isfinite(values)]
        levels = FIXED_LEVELS.get(strip.layer.type)
        if levels is None:
            low = float(finite.min()) if len(finite) else 0.0
            high = float(np.abs(finite).max()) if len(finite) else 0.0
            high = high if high > 0 else 1.0
            levels = (0.0, high) if low >= 0 else (-high, high)
        strip.levels = levels
        strip.lut = self._signed_lut if levels[0] < 0 else self._positive_lut
        # Coloured here, cell by cell, and handed over as RGBA: the image item then only
        # draws it, where a float image with levels and a lookup table was mapped pixel
        # by pixel on every paint (the strips change on every stroke on the canvas).
        lo, hi = levels
        scaled = (cells - lo) * (256.0 / max(hi - lo, 1e-12))
        missing = np.isnan(scaled)  # units past the last one (and NaN): transparent
        scaled[missing] = 0.0
        rgba = strip.lut[np.clip(scaled, 0, 255, out=scaled).astype(np.intp)]
        rgba[missing, 3] = 0
        k = CELL_PX
        colours = strip.colours.reshape(strip.rows, k, strip.cols, k, 4)
        colours[:, : k - 1, :, : k - 1] = rgba.reshape(strip.rows, 1, strip.cols, 1, 4)
        # The strip's own buffer, no copy: pyqtgraph wraps it in a QImage without copying,
        # and every rewrite is followed by this setImage, so the next paint renders the
        # new colours before drawing; the buffer lives as long as the strip.
        strip.image.setImage(strip.colours, autoLevels=False, levels=None)

    def _draw_bars(self, probs: np.ndarray) -> None:
        probs = np.asarray(probs, np.float32)[: len(self._classes)]
        self.probabilities = probs
        label = self.session.current_input.label if self.session.current_input else None
        self.bars.show_probabilities(
            probs, label if label is not None and label < len(probs) else None
        )

    def top_class(self) -> int | None:
        """The highlighted bar: the class the model picks."""
        return int(np.argmax(self.probabilities)) if len(self.probabilities) else None

    def shown_values(self) -> dict[str, np.ndarray]:
        """What each strip shows, one value per cell, by layer name."""
        return {strip.layer.name: strip.values for strip in self.strips}

    # ----- hover and click ---------------------------------------------------------------
    def cell_at(self, point: QPointF) -> tuple[str, int] | None:
        """The (layer, unit) under a point in the strips' view coordinates, if any."""
        for strip in self.strips:
            if strip.rect.contains(point):
                col = int(point.x() - strip.rect.left())
                row = int(point.y() - strip.rect.top())
                unit = row * strip.cols + col
                return (strip.layer.name, unit) if unit < len(strip.values) else None
        return None

    def describe(self, layer: str, unit: int) -> str:
        """The hover text of one cell: layer, unit (or channel) and value."""
        strip = next(s for s in self.strips if s.layer.name == layer)
        what = "channel" if strip.per_channel else "unit"
        value = strip.values[unit]
        mean = " (mean over the channel's map)" if strip.per_channel else ""
        changed = self.interventions.describe(layer, unit)
        return f"{layer} ({strip.layer.type}) {what} {unit}: {value:.4g}{mean}{changed}"

    def hover_text(self, scene_pos: QPointF) -> str:
        """What the readout says with the mouse at ``scene_pos``."""
        if self.view.sceneBoundingRect().contains(scene_pos):
            cell = self.cell_at(self.view.mapSceneToView(scene_pos))
            return self.describe(*cell) if cell else ""
        return ""

    def bar_text(self, pos: QPointF) -> str:
        """What the readout says with the mouse at ``pos`` on the output bars."""
        i = self.bars.class_at(pos)
        if i is None or i >= len(self.probabilities):
            return ""
        return f"class {self._classes[i]}: probability {self.probabilities[i]:.2%}"

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt)
        if watched is self.bars and event.type() == QEvent.Type.MouseMove:
            self.readout.setText(self.bar_text(event.position()) or HOVER_HINT)
        return super().eventFilter(watched, event)

    def _mouse_moved(self, event: tuple[QPointF]) -> None:
        self.readout.setText(self.hover_text(event[0]) or HOVER_HINT)

    def _clicked(self, event: Any) -> None:
        if self.view.sceneBoundingRect().contains(event.scenePos()):
            cell = self.cell_at(self.view.mapSceneToView(event.scenePos()))
            if cell is None:
                return
            if event.button() == Qt.MouseButton.RightButton:
                strip = next(s for s in self.strips if s.layer.name == cell[0])
                what = "channel" if strip.per_channel else "unit"
                self.interventions.open_menu(*cell, event.screenPos().toPoint(), what)
            else:
                self.unit_clicked.emit(*cell)

    # ----- theme -------------------------------------------------------------------------
    def palette_changed(self) -> None:
        self._apply_palette()
        self.mark_stale()

    def _apply_palette(self) -> None:
        """Cells light up from the background's own shade, so both themes read well."""
        pal = self.palette()
        bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
        off = mix(bg, fg, 0.12)  # an unlit cell: just visible against the background
        cmap = pg.ColorMap([0.0, 0.5, 1.0], [NEGATIVE, off, POSITIVE])
        self._signed_lut = cmap.getLookupTable(0.0, 1.0, 256, alpha=True)
        self._positive_lut = cmap.getLookupTable(0.5, 1.0, 256, alpha=True)
        self.graphics.setBackground(bg)
        self.bars.apply_palette(pal)
        for strip in self.strips:
            strip.caption.setColor(fg)
        self.message.setColor(fg)
        self.markers.set_background(bg)
        hint = mix(bg, fg, 0.55)
        self.empty_label.setStyleSheet(f"color: {hint.name()}; font-size: 13pt;")


def _caption(layer: LayerInfo, units: int) -> str:
    if len(layer.output_shape) > 2:
        return f"{layer.name} ({layer.type}): mean of each of {units} channels"
    return f"{layer.name} ({layer.type}): {units} units"
