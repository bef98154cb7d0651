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

The strips are painted by one widget (``activation_cells``), the output by another
(``prediction_bars``): both change at every mouse move of a stroke on the canvas, and
painting them directly costs a fraction of what a pyqtgraph scene did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QSize, Qt, Signal
from PySide6.QtGui import QPalette, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QStackedLayout, QVBoxLayout, QWidget

from nnviz.core.errors import NnvizError
from nnviz.core.inspect import ACTIVATION_TYPES, NORM_TYPES, REPEAT_TYPES, LayerInfo, summarize
from nnviz.qt import colours
from nnviz.qt.panels.activation_cells import CELL_PX, ActivationCells, Strip, new_strip
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.intervention_menu import InterventionControls
from nnviz.qt.panels.prediction_bars import MIN_ROW_PX, ROOMY_ROW_PX, PredictionBars
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
HOVER_HINT = "Hover over a cell or a bar to read its value"
USABLE_CELL_PX = 10  # a cell this wide still shows its colour and takes a click
_BARS, _CELLS = 0, 1  # the parts of the height (the cells take what is left over)


def share_height(available: float, steps: Sequence[tuple[int, float]], parts: int) -> list[float]:
    """Heights for ``parts`` parts out of ``available`` pixels: each step (part, height)
    in turn raises its part towards that height, as far as what is left allows."""
    heights = [0.0] * parts
    left = float(available)
    for part, height in steps:
        more = min(max(height - heights[part], 0.0), left)
        heights[part] += more
        left -= more
    heights[-1] += max(left, 0.0)  # whatever is left over goes to the last part
    return heights


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


class ActivationsPanel(Panel):
    """Each layer's response to the current input, and the output as class probabilities."""

    title = "Activations"
    object_name = "activations"
    area: ClassVar = Qt.DockWidgetArea.RightDockWidgetArea

    unit_clicked = Signal(str, int)  # layer name, unit (or channel) index

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.strips: list[Strip] = []
        self.probabilities = np.zeros(0, np.float32)
        self._built_for: Any = None  # the LoadedModel the items were built for
        self._classes: list[str] = []

        self.cells = ActivationCells()
        self.markers = self.cells  # switched-off and clamped cells, all strips
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
        body.addWidget(self.cells, 1)
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
        self._share_height()

        self.cells.hovered.connect(self._mouse_moved)
        self.cells.left.connect(lambda: self.readout.setText(HOVER_HINT))
        self.cells.pressed.connect(self._pressed)
        self.listen(session.model_loaded, self.mark_stale)
        self.listen(session.input_changed, self.mark_stale)
        self.listen(session.snapshot_changed, self.mark_stale)
        self.listen(colours.changed, self.palette_changed)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(420, 640)  # room for a few strips above ten bars

    # ----- building (once per model) -----------------------------------------------------
    def _rebuild(self) -> None:
        loaded = self.session.loaded
        summary = summarize(loaded.program or loaded.module, tuple(loaded.input_shape))
        self._built_for = loaded  # only once it worked: a failure is tried again next frame
        self.interventions.set_layers(summary.layers)
        self.strips = []
        for layer in layers_to_show(summary.layers):
            units = int(layer.output_shape[1]) if len(layer.output_shape) > 1 else 1
            self.strips.append(new_strip(layer, _caption(layer, units), units))
        message = "" if self.strips else "No hidden layers: only the output"
        self.cells.set_strips(self.strips, message)

        n = int(summary.layers[-1].output_shape[-1]) if summary.layers else 0
        names = list(loaded.class_names)
        self._classes = names if len(names) == n else [str(i) for i in range(n)]
        self.bars.set_classes(self._classes)
        self.bars.setMinimumHeight(0)  # _share_height gives it its height
        self._share_height()
        self._apply_palette()  # colours the new items

    def _share_height(self) -> None:
        """The height between the strips and the bars, by what each needs: first cells
        of ``USABLE_CELL_PX`` and bars you can see, then a line of text per class, then
        the strips as large as the width allows, then roomy bars; the strips take what
        is left (it stays empty below them)."""
        cells, bars = self.cells, self.bars
        # From the panel's own size: on a resize, the children have not all followed yet.
        below = self.readout.sizeHint().height() + self.layout().spacing()
        available = self.height() - below - self.output_title.sizeHint().height()
        widest = cells.widest_scale(self.width())
        text_row = bars.text_height() + 2
        heights = share_height(
            available,
            [
                (_CELLS, cells.height_for(min(widest, USABLE_CELL_PX))),
                (_BARS, bars.height_for(MIN_ROW_PX)),
                (_BARS, bars.height_for(text_row)),
                (_CELLS, cells.height_for(widest)),
                (_BARS, bars.height_for(max(ROOMY_ROW_PX, text_row))),
            ],
            parts=2,
        )
        height = max(int(heights[_BARS]), 1)
        if (bars.minimumHeight(), bars.maximumHeight()) != (height, height):
            bars.setFixedHeight(height)
            self.body.layout().activate()  # now: the strips are laid out for this height

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self._share_height()

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
        self.cells.update()
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
        if spots or self.cells.marked:
            self.cells.show_units(spots)

    def _show_empty(self, text: str) -> None:
        self.empty_label.setText(text)
        self.stack.setCurrentWidget(self.empty_label)

    def _draw_strip(self, strip: Strip, values: np.ndarray) -> None:
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
        # Coloured here, cell by cell, as RGBA: painting then only scales the picture
        # (the strips change at every move of a stroke on the canvas).
        lo, hi = levels
        scaled = (cells - lo) * (256.0 / max(hi - lo, 1e-12))
        missing = np.isnan(scaled)  # units past the last one (and NaN): transparent
        scaled[missing] = 0.0
        rgba = strip.lut[np.clip(scaled, 0, 255, out=scaled).astype(np.intp)]
        rgba[missing, 3] = 0
        k = CELL_PX
        colours = strip.colours.reshape(strip.rows, k, strip.cols, k, 4)
        colours[:, : k - 1, :, : k - 1] = rgba.reshape(strip.rows, 1, strip.cols, 1, 4)
        # In the strip's own buffer, which its QImage wraps: the repaint that follows
        # every redraw shows the new colours, with no copy and no conversion.

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

    def hover_text(self, point: QPointF) -> str:
        """What the readout says with the mouse at ``point`` (cell coordinates)."""
        cell = self.cell_at(point)
        return self.describe(*cell) if cell else ""

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

    def _mouse_moved(self, point: QPointF) -> None:
        self.readout.setText(self.hover_text(point) or HOVER_HINT)

    def _pressed(self, point: QPointF, button: Qt.MouseButton, where: QPoint) -> None:
        cell = self.cell_at(point)
        if cell is None:
            return
        if button == Qt.MouseButton.RightButton:
            strip = next(s for s in self.strips if s.layer.name == cell[0])
            what = "channel" if strip.per_channel else "unit"
            self.interventions.open_menu(*cell, where, what)
        elif button == Qt.MouseButton.LeftButton:
            self.unit_clicked.emit(*cell)

    # ----- theme -------------------------------------------------------------------------
    def palette_changed(self, *_: object) -> None:
        self._apply_palette()
        self.mark_stale()

    def _apply_palette(self) -> None:
        """Cells light up from the background's own shade, so both themes read well."""
        pal = self.palette()
        bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
        # The app's signed colours; an unlit cell (zero) is just visible on the background.
        cmap, scheme = colours.colormap(pal), colours.current()
        self._signed_lut = cmap.getLookupTable(0.0, 1.0, 256, alpha=True)
        self._positive_lut = cmap.getLookupTable(0.5, 1.0, 256, alpha=True)
        self.cells.setToolTip(
            f"One cell per unit (per channel for conv layers): the more {scheme.positive_word}, "
            f"the higher; {scheme.negative_word} is below zero"
        )
        self.cells.set_colours(bg, fg)
        self.bars.apply_palette(pal)
        hint = mix(bg, fg, 0.55)
        self.empty_label.setStyleSheet(f"color: {hint.name()}; font-size: 13pt;")


def _caption(layer: LayerInfo, units: int) -> str:
    if len(layer.output_shape) > 2:
        return f"{layer.name} ({layer.type}): mean of each of {units} channels"
    return f"{layer.name} ({layer.type}): {units} units"
