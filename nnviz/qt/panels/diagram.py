"""The network diagram: 3Blue1Brown's picture of a dense network, lit by the current digit.

Neurons are circles in columns, filled as strongly as they are active (the output of
the layer's activation function; the output column shows softmax probabilities,
labelled with the class names, the top class ringed). The 784 inputs are the 28x28
digit itself, at the left. Edges take the app's signed colours (``nnviz.qt.colours``,
as the weight heatmaps do: orange positive and blue negative by default) and grow
thicker and more opaque with |weight|. Only the ``top_k`` strongest incoming edges of
each neuron are drawn: all of them would be 12,960 lines for the smallest network.
Where wide layers go: see ``diagram_layout``. Right-click a hidden neuron to switch it
off or clamp it (``intervention_menu``).

Cost: all edges of a layer pair are six items (sign x thickness, see ``diagram_edges``)
and all neurons one ScatterPlotItem. A new digit only changes brushes; new weights
rebuild the edges, at most ``EDGE_REBUILD_S`` apart while training runs.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import (
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.inspect import summarize
from nnviz.qt import colours
from nnviz.qt.panels import diagram_layout as dl
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.diagram_edges import EDGE_WIDTHS, EdgeLines, edge_colour, legend
from nnviz.qt.panels.intervention_menu import InterventionControls, UnitMarkers
from nnviz.state import Session

CNN_MESSAGE = (
    "The network diagram is for dense networks (MLPs such as mlp-3b1b); "
    "for CNNs see Filters and Feature maps"
)
NO_MODEL_MESSAGE = "Load a model to see its neurons"
EDGE_REBUILD_S = 0.2  # new weights redraw the edges at most 5 times a second


class NetworkDiagramPanel(Panel):
    """Neurons, their activations for the current digit, and each one's strongest weights."""

    title = "Network"
    object_name = "diagram"
    # top-k edges and 800 lines per redraw: a fifth of the GUI thread at 5 Hz
    max_fps: ClassVar[float] = 2.0
    area: ClassVar = Qt.DockWidgetArea.RightDockWidgetArea

    neuron_selected = Signal(str, int)  # dense layer name, neuron index: the user clicked it

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.diagram: dl.Layout | None = None
        self._edges: dict[tuple[str, str], np.ndarray] = {}  # (target, source) index pairs
        self._edge_weights: dict[tuple[str, str], np.ndarray] = {}
        self._values: dict[str, np.ndarray] = {}
        self._probs: np.ndarray | None = None  # of the digit shown; None before one
        self._edge_thinning: dict[tuple[str, str], float] = {}  # sets the edges' pen alpha
        self._drawn_acts: object = None  # the activations dict the brushes show
        self._model_stale = self._edges_stale = True
        self._edges_at = -1.0
        self._hovered: tuple[str, int] | None = None
        self._label_px = 0.0  # room the class labels need at the right

        self.controls = QWidget()
        bar = QHBoxLayout(self.controls)
        bar.setContentsMargins(4, 2, 4, 0)
        self.top_k_box = QSpinBox(minimum=1, maximum=32, value=3)
        self.top_k_box.setToolTip("How many of each neuron's strongest incoming weights to draw")
        self.readout = QLabel()
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.readout.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar.addWidget(QLabel("Strongest inputs per neuron"))
        bar.addWidget(self.top_k_box)
        bar.addWidget(self.readout, 1)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setContentsMargins(4, 0, 4, 2)

        self.graphics = pg.GraphicsLayoutWidget()
        self.view: pg.ViewBox = self.graphics.addViewBox(lockAspect=True, enableMenu=False)
        self.view.invertY(True)  # neuron 0 and the digit's first row at the top
        self.image = pg.ImageItem(axisOrder="row-major")
        self.frame = QGraphicsRectItem()
        self.edge_items: dict[tuple[str, str], list[EdgeLines]] = {}
        scheme = colours.current()
        self.highlight = [EdgeLines(scheme.colour(sign), 3) for sign in (True, False)]
        self.neurons = pg.ScatterPlotItem(pxMode=False, symbol="o")
        self.top_ring = pg.ScatterPlotItem(pxMode=False, symbol="o", brush=None)
        self.hover_ring = pg.ScatterPlotItem(pxMode=False, symbol="o", brush=None)
        self.class_labels: list[pg.TextItem] = []
        self.captions: list[pg.TextItem] = []
        self.markers = UnitMarkers()  # switched-off and clamped neurons
        self.interventions = InterventionControls(self, "neuron")
        # Bottom to top: the digit, its frame, edges (z 1), the hovered neuron's edges,
        # the neurons, rings, markers.
        items = (self.image, self.frame, *self.highlight, self.neurons, self.top_ring)
        for z, item in zip(
            (-2, -1, 2, 2, 3, 4, 4, 5), (*items, self.hover_ring, self.markers), strict=True
        ):
            item.setZValue(z)
            self.view.addItem(item)

        self.message = QLabel(NO_MODEL_MESSAGE)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.stack = QStackedLayout()
        self.stack.addWidget(self.graphics)
        self.stack.addWidget(self.message)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.controls)
        layout.addLayout(self.stack, 1)
        layout.addWidget(self.legend)
        self._show_diagram(False)
        self._apply_palette()

        self.top_k_box.valueChanged.connect(self._top_k_changed)
        self.graphics.scene().sigMouseClicked.connect(self._clicked)
        self._mouse = pg.SignalProxy(
            self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved
        )
        self.view.sigResized.connect(self._fit)
        self.listen(session.model_loaded, self._model_changed)
        self.listen(session.snapshot_changed, self._weights_changed)
        self.listen(session.input_changed, self.mark_stale)
        self.listen(colours.changed, self._colours_changed)

    # ----- state ---------------------------------------------------------------------------
    @property
    def top_k(self) -> int:
        """Incoming edges drawn per neuron (its strongest by |weight|)."""
        return self.top_k_box.value()

    @top_k.setter
    def top_k(self, k: int) -> None:
        self.top_k_box.setValue(k)

    def is_dense(self) -> bool:
        """True when the model is drawn as a diagram (an MLP), False when a message shows."""
        return self.diagram is not None

    def drawn_edges(self) -> dict[tuple[str, str], np.ndarray]:
        """Per (source layer, target layer): the (source, target) neuron indices drawn.

        The digit's pixels are source layer "input", indexed row-major (784 for MNIST).
        """
        return {pair: e[:, ::-1].copy() for pair, e in self._edges.items()}

    def values_shown(self) -> dict[str, np.ndarray]:
        """What lights each column's neurons: activations, and probabilities for the output."""
        return {name: v.copy() for name, v in self._values.items()}

    def top_class(self) -> int | None:
        """The index of the highlighted output neuron (the most probable class)."""
        return None if self._probs is None else int(np.argmax(self._probs))

    def _model_changed(self) -> None:
        self._model_stale = True
        self._top_k_changed()

    def _weights_changed(self, *_: Any) -> None:
        self._edges_stale = True  # drawn within EDGE_REBUILD_S
        self.mark_stale()

    def _top_k_changed(self) -> None:
        self._edges_stale, self._edges_at = True, -1.0  # not throttled: drawn next frame
        self.mark_stale()

    # ----- drawing -------------------------------------------------------------------------
    def redraw(self) -> None:
        if self._model_stale:
            self._build()
        if self.diagram is None:
            return
        if self._edges_stale:
            if time.monotonic() - self._edges_at >= EDGE_REBUILD_S:
                self._draw_edges()
            else:
                self.mark_stale()  # try again next frame
        acts = self.session.activations()
        if acts is not self._drawn_acts:
            self._drawn_acts = acts
            self._draw_activity(acts)

    def _build(self) -> None:
        """Lay out the columns for a new model (or say why there is no diagram)."""
        self._model_stale = False
        for item in [*self.class_labels, *self.captions, *sum(self.edge_items.values(), [])]:
            self.view.removeItem(item)
        self.class_labels, self.captions, self.edge_items = [], [], {}
        self._edges, self._edge_weights, self._values = {}, {}, {}
        self._edge_thinning.clear()
        self._drawn_acts, self.diagram, self._probs = None, None, None
        self.clear_highlight()
        loaded, model = self.session.loaded, self.session.view_model
        found = None
        if loaded is not None and model is not None:
            summary = summarize(loaded.program or model, loaded.input_shape)
            self.interventions.set_layers(summary.layers)
            found = dl.dense_columns(summary, model.state_dict())
        self._show_diagram(found is not None)
        if found is None:
            self.message.setText(NO_MODEL_MESSAGE if loaded is None else CNN_MESSAGE)
            return
        self.diagram = lay = dl.lay_out(found, loaded.input_shape[1:])
        h, w = loaded.input_shape[1:]
        rect = QRectF(*lay.image_rect)
        self.image.setImage(np.zeros((h, w), np.float32), levels=(0.0, 1.0), lut=self._lut)
        self.image.setRect(rect)  # after an image: setRect scales by the image's size
        self.frame.setRect(rect)
        top = -dl.COLUMN_HEIGHT / 2 - 0.2
        self.captions = [self._text(f"input {h}\u00d7{w}", rect.center().x(), top, (0.5, 1))]
        for col in lay.columns:
            self.captions.append(self._text(f"{col.layer} ({col.units})", col.x, top, (0.5, 1)))
            if col.units > len(col.y):
                more = f"+ {col.units - len(col.y)} more"
                self.captions.append(self._text(more, col.x, col.y[-1] + col.size, (0.5, 0)))
        xy, sizes = lay.spots()
        self.neurons.setData(pos=xy, size=sizes, pen=self._ring_pen)
        out = lay.columns[-1]
        for i, name in enumerate(loaded.class_names[: len(out.y)]):
            self.class_labels.append(self._text(name, out.x + out.size, out.y[i], (0, 0.5)))
        widest = max(loaded.class_names[: len(out.y)], key=len)
        self._label_px = QFontMetrics(self._bold).horizontalAdvance(f"{widest}  100%") + 16
        self._fit()

    def _fit(self, *_: Any) -> None:
        """Everything in view, with room in pixels for the class labels at the right."""
        if self.diagram is None:
            return
        rect = self.diagram.view_rect(self.view.width(), self.view.height(), self._label_px)
        self.view.setRange(QRectF(*rect), padding=0)

    def _show_diagram(self, on: bool) -> None:
        self.stack.setCurrentWidget(self.graphics if on else self.message)
        self.controls.setVisible(on)
        self.legend.setVisible(on)

    def _text(self, text: str, x: float, y: float, anchor: tuple[float, float]) -> pg.TextItem:
        item = pg.TextItem(text, color=self._fg, anchor=anchor)
        item.setPos(x, y)
        self.view.addItem(item, ignoreBounds=True)
        return item

    def _draw_edges(self) -> None:
        """The ``top_k`` strongest incoming edges of every neuron, bucketed into few items."""
        self._edges_stale, self._edges_at = False, time.monotonic()
        state = self.session.view_model.state_dict()
        for j, col in enumerate(self.diagram.columns):
            src_name, src_xy = self.diagram.sources(j)
            w = state[f"{col.layer}.weight"].detach().cpu().numpy()[: len(col.y), : len(src_xy)]
            pairs = dl.strongest_inputs(w, self.top_k)
            key = (src_name, col.layer)
            self._edges[key] = pairs
            self._edge_weights[key] = wij = w[pairs[:, 0], pairs[:, 1]]
            xy = dl.segments(pairs, src_xy, col.xy)
            items = self.edge_items.get(key) or self._edge_curves(key)
            thin = min(1.0, (120 / len(pairs)) ** 0.5)  # hundreds of edges: fainter ones
            new_pens = self._edge_thinning.get(key) != thin  # only when k changed
            self._edge_thinning[key] = thin
            for item, (positive, b, mask) in zip(
                items, dl.edge_buckets(wij, float(np.abs(w).max())), strict=True
            ):
                item.set_lines(xy[np.repeat(mask, 2)])
                if new_pens:
                    item.set_style(edge_colour(positive, b, thin), EDGE_WIDTHS[b])
        if self._hovered is not None:
            self.highlight_neuron(*self._hovered)

    def _edge_curves(self, key: tuple[str, str]) -> list[EdgeLines]:
        items = [EdgeLines(edge_colour(True, 0, 1.0)) for _ in range(2 * dl.EDGE_BUCKETS)]
        for item in items:
            item.setZValue(1)
            self.view.addItem(item)
        self.edge_items[key] = items
        return items

    def _draw_activity(self, acts: dict[str, np.ndarray]) -> None:
        """Brightness from this digit's activations; the digit; the top class."""
        current = self.session.current_input
        if current is not None:
            self.image.setImage(current.image, levels=(0.0, 1.0), lut=self._lut)
        self._probs = probs = self.session.probabilities() if acts else None
        brightness = []
        for col in self.diagram.columns:
            self._values[col.layer] = values = dl.column_values(col, acts, probs)
            brightness.append(dl.brightness(values))
        levels = np.rint(np.concatenate(brightness) * 255).astype(int)
        self.neurons.setBrush([self._brushes[v] for v in levels])
        top, out = self.top_class(), self.diagram.columns[-1]
        names = self.session.loaded.class_names
        for i, label in enumerate(self.class_labels):
            chosen = i == top
            label.setText(f"{names[i]}  {probs[i]:.0%}" if chosen else names[i])
            label.setColor(self._accent if chosen else self._fg)
            label.textItem.setFont(self._bold if chosen else self._plain)
        if top is None:
            self.top_ring.setData([])
        else:
            ring = pg.mkPen(self._accent, width=2)
            self.top_ring.setData(pos=[(out.x, out.y[top])], size=1.35 * out.size, pen=ring)
        if self._hovered is not None:
            self.readout.setText(self.hover_text(*self._hovered))
        self.markers.show_units(dl.marked_neurons(self.diagram, self.interventions.changed_units))

    # ----- hover and click -----------------------------------------------------------------
    def hover_text(self, layer: str, index: int) -> str:
        """What a neuron (or an input pixel, layer "input") shows on hover."""
        current, loaded = self.session.current_input, self.session.loaded
        if layer == "input":
            value = float(current.image.reshape(-1)[index]) if current is not None else 0.0
            return dl.describe_pixel(index, loaded.input_shape[2], value)
        value = float(self._values[layer][index]) if layer in self._values else 0.0
        return dl.describe_neuron(self.diagram.column(layer), index, value, loaded.class_names)

    def neuron_position(self, layer: str, index: int) -> QPointF:
        """Where a neuron is drawn, in view coordinates."""
        col = self.diagram.column(layer)
        return QPointF(col.x, float(col.y[index]))

    def highlight_neuron(self, layer: str, index: int) -> None:
        """Show a neuron's incoming edges on top (the others dimmed), a ring and its value."""
        self._hovered = (layer, index)
        src_name, src_xy = self.diagram.sources(self.diagram.index_of(layer))
        pairs = self._edges[(src_name, layer)]
        mine = pairs[:, 0] == index
        wij = self._edge_weights[(src_name, layer)][mine]
        for item in sum(self.edge_items.values(), []):
            item.setOpacity(0.2)
        target = self.neuron_position(layer, index)
        col = self.diagram.column(layer)
        for item, positive in zip(self.highlight, (True, False), strict=True):
            keep = pairs[mine][(wij >= 0) == positive]
            item.set_lines(dl.segments(keep, src_xy, col.xy))
        ring = pg.mkPen(self._fg, width=2)
        self.hover_ring.setData(pos=[(target.x(), target.y())], size=1.35 * col.size, pen=ring)
        self.readout.setText(self.hover_text(layer, index))

    def clear_highlight(self) -> None:
        """Back to all edges at full strength, no hovered neuron."""
        self._hovered = None
        for item in sum(self.edge_items.values(), []):
            item.setOpacity(1.0)
        for item in self.highlight:
            item.set_lines(np.zeros((0, 2)))
        self.hover_ring.setData([])
        self.readout.clear()

    def _mouse_moved(self, args: tuple[QPointF]) -> None:
        if self.diagram is None or not self._edges:
            return
        pos = self.view.mapSceneToView(args[0])
        hit = self.diagram.neuron_at(pos.x(), pos.y())
        if hit is not None:
            if hit != self._hovered:
                self.highlight_neuron(*hit)
            return
        if self._hovered is not None:
            self.clear_highlight()
        pixel = self.diagram.pixel_at(pos.x(), pos.y(), self.session.loaded.input_shape[1:])
        if pixel is not None:
            self.readout.setText(self.hover_text("input", pixel))

    def _clicked(self, event: Any) -> None:
        if self.diagram is None:
            return
        pos = self.view.mapSceneToView(event.scenePos())
        hit = self.diagram.neuron_at(pos.x(), pos.y())
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.neuron_selected.emit(*hit)
        elif hit is not None and event.button() == Qt.MouseButton.RightButton:
            col = self.diagram.column(hit[0])
            if col.shown_as != dl.SOFTMAX:  # a hidden neuron: what the next layer reads
                self.interventions.open_menu(col.shown_as, hit[1], event.screenPos().toPoint())

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if self._hovered is not None:
            self.clear_highlight()
        super().leaveEvent(event)

    # ----- theme ---------------------------------------------------------------------------
    def palette_changed(self) -> None:
        self._apply_palette()
        self._model_changed()  # every item takes the new colours

    def _colours_changed(self, *_: object) -> None:
        self.palette_changed()

    def _apply_palette(self) -> None:
        """Ink (the digit, lit neurons, text) in the text colour on the base colour."""
        pal = self.palette()
        bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
        self._fg, self._accent = fg, pal.color(QPalette.ColorRole.Highlight)
        self.graphics.setBackground(bg)
        t = np.linspace(0.0, 1.0, 256)[:, None]
        ends = np.array([bg.getRgb()[:3], fg.getRgb()[:3]], float)
        self._lut = np.rint(ends[0] + t * (ends[1] - ends[0])).astype(np.uint8)
        # Opaque fills: edges end at neuron centres, hidden under the circles.
        self._brushes = [QBrush(QColor(*rgb)) for rgb in self._lut.tolist()]
        ring = QColor(fg)
        ring.setAlpha(150)
        self._ring_pen = pg.mkPen(ring, width=1)
        self.frame.setPen(pg.mkPen(ring, width=1))
        self.markers.set_background(bg)
        self._plain, self._bold = QFont(), QFont()
        self._bold.setBold(True)
        self.legend.setText(legend())
        scheme = colours.current()
        for item, positive in zip(self.highlight, (True, False), strict=True):
            item.set_style(scheme.colour(positive), 3)
