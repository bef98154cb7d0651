"""The receptive fields panel: what each unit of the first dense layer looks for.

A unit of the layer that reads the image directly weighs every pixel, so its 784
incoming weights, laid out as a 28 x 28 image, show the pattern of ink that excites
it, in the app's signed colours (``nnviz.qt.colours``): orange (or 3Blue1Brown's green)
where ink raises its input, blue (or red) where ink lowers it, the background's shade
where it does not care. All units are drawn as ONE
mosaic image with NaN (transparent) gaps between tiles: one item, one render (64 tiles
as 64 items cost 11 ms an update, as one mosaic 1.3 ms). Clicking a tile shows that unit
large, with its bias, and emits ``unit_selected`` for other panels to follow.
"""

from __future__ import annotations

import math
import time
from typing import ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSizePolicy,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.dense import DenseLayer, image_reading_layer, symmetric_limit, weight_matrix
from nnviz.qt import colours
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.weights import apply_palette
from nnviz.state import Session

HOVER_HINT = "Point at a pixel to read its weight; click a unit to see it large"
GAP = 2  # transparent pixels between tiles
NEEDS_DENSE = (
    "This view needs a dense layer that reads the 28x28 image (for example mlp-3b1b); "
    "for convolution filters see the Filters panel"
)


class ReceptiveFieldsPanel(Panel):
    """Each hidden unit's incoming weights as an image, in a grid; click one to enlarge it."""

    title = "Receptive fields"
    object_name = "receptive_fields"
    # A redraw a person can follow while training runs; more only costs the trainer.
    max_fps: ClassVar[float] = 2.0
    area: ClassVar = Qt.DockWidgetArea.RightDockWidgetArea
    min_interval_s = 0.2  # live updates at ~5 Hz

    unit_selected = Signal(str, int)  # layer name, unit index: the user clicked a unit

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.layer: DenseLayer | None = None
        self.image_shape = (28, 28)
        self.columns = 1  # tiles per mosaic row
        self.selected = 0
        self._weights = np.zeros((0, 0), np.float32)  # (units, pixels), owned copy
        self._bias: np.ndarray | None = None
        self._unit_limits = np.ones(0, np.float32)  # each unit's largest |weight|
        self._mosaic = np.zeros((0, 0), np.float32)
        self._find_layer = True
        self._drawn_at = -math.inf

        self.per_unit = QRadioButton("Scale each unit")
        self.per_unit.setToolTip("Each tile uses its own colour range: every pattern shows")
        self.per_layer = QRadioButton("One scale for the layer")
        self.per_layer.setToolTip("All tiles share a colour range: strong units stand out")
        self.per_unit.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.per_unit)
        group.addButton(self.per_layer)
        self.controls = QWidget()  # hidden with the view when there is nothing to show
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.per_unit)
        bar.addWidget(self.per_layer)
        bar.addStretch(1)
        self.hint = QLabel()  # which colour excites, which inhibits
        bar.addWidget(self.hint)
        self.readout = QLabel(HOVER_HINT)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.graphics = pg.GraphicsLayoutWidget()
        self.mosaic_title = self.graphics.addLabel(row=0, col=0)
        self.unit_title = self.graphics.addLabel(row=0, col=1)
        self.mosaic_view: pg.ViewBox = self.graphics.addViewBox(row=1, col=0)
        self.unit_view: pg.ViewBox = self.graphics.addViewBox(row=1, col=1)
        self.mosaic = pg.ImageItem(axisOrder="row-major")
        self.unit_image = pg.ImageItem(axisOrder="row-major")
        for view, item in ((self.mosaic_view, self.mosaic), (self.unit_view, self.unit_image)):
            view.addItem(item)
            view.setAspectLocked(True)
            view.invertY(True)  # the digit's top row on top
            view.setMenuEnabled(False)
        self.highlight = QGraphicsRectItem()  # around the selected tile
        self.highlight.setZValue(10)
        self.mosaic_view.addItem(self.highlight, ignoreBounds=True)
        self.colour_bar = pg.ColorBarItem(
            width=14,
            interactive=False,
            colorMapMenu=False,
        )
        self.colour_bar.setImageItem(self.unit_image)
        self.graphics.addItem(self.colour_bar, row=1, col=2)
        grid = self.graphics.ci.layout
        grid.setColumnStretchFactor(0, 3)
        grid.setColumnStretchFactor(1, 2)

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

        self.per_unit.toggled.connect(self._scale_mode_changed)
        scene = self.graphics.scene()
        self._mouse = pg.SignalProxy(scene.sigMouseMoved, rateLimit=30, slot=self._mouse_moved)
        scene.sigMouseClicked.connect(self._clicked)
        self.listen(session.model_loaded, self._model_loaded)
        self.listen(session.snapshot_changed, self.mark_stale)
        self.listen(colours.changed, self._colours_changed)

    # ----- geometry of the mosaic ------------------------------------------------------------
    def tile_origin(self, unit: int) -> tuple[int, int]:
        """The (row, column) in the mosaic where unit ``unit``'s tile starts."""
        h, w = self.image_shape
        return (unit // self.columns) * (h + GAP), (unit % self.columns) * (w + GAP)

    def tile(self, unit: int) -> np.ndarray:
        """Unit ``unit``'s tile as drawn (divided by its largest |weight| when scaled per unit)."""
        (r, c), (h, w) = self.tile_origin(unit), self.image_shape
        return self._mosaic[r : r + h, c : c + w]

    def unit_at(self, x: float, y: float) -> int | None:
        """The unit whose tile holds mosaic coordinates (x: column, y: row); None in a gap."""
        if self.layer is None or x < 0 or y < 0:
            return None
        h, w = self.image_shape
        (tile_row, dy), (tile_col, dx) = divmod(int(y), h + GAP), divmod(int(x), w + GAP)
        unit = tile_row * self.columns + tile_col
        inside = dy < h and dx < w and tile_col < self.columns
        return unit if inside and unit < self.layer.out_features else None

    # ----- what the user asks for ------------------------------------------------------------
    def select_unit(self, unit: int) -> None:
        """Show unit ``unit`` large and tell listeners (as a click on its tile does)."""
        if self.layer is None or not 0 <= unit < self.layer.out_features:
            return
        self.selected = unit
        self._draw_selected()
        self.unit_selected.emit(self.layer.name, unit)

    def _clicked(self, event: object) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.layer is None:
            return
        pos = event.scenePos()
        if self.mosaic_view.sceneBoundingRect().contains(pos):
            p = self.mosaic.mapFromScene(pos)
            unit = self.unit_at(p.x(), p.y())
            if unit is not None:
                self.select_unit(unit)

    def _model_loaded(self) -> None:
        self._find_layer = True
        self.mark_stale()

    def _scale_mode_changed(self) -> None:
        self._drawn_at = -math.inf  # the user's choice shows at once
        self.mark_stale()

    # ----- drawing ---------------------------------------------------------------------------
    def redraw(self) -> None:
        now = time.monotonic()
        found = self._find_layer
        if found:
            self._find_layer = False
            loaded = self.session.loaded
            shape = tuple(loaded.input_shape) if loaded is not None else ()
            self.layer = image_reading_layer(self.session.view_model, shape)
            self.selected = 0
        if self.layer is None:
            no_model = self.session.view_model is None
            self.message.setText(
                "Load a model to see what its units look for" if no_model else NEEDS_DENSE
            )
            self._stack.setCurrentWidget(self.message)
            self.controls.hide()
            return
        if not found and now - self._drawn_at < self.min_interval_s:
            self.mark_stale()  # too soon: the newest weights are drawn on a later frame
            return
        self._stack.setCurrentWidget(self.graphics)
        self.controls.show()
        weights, bias = weight_matrix(self.session.view_model.state_dict(), self.layer)
        self._weights, self._bias = weights.copy(), None if bias is None else bias.copy()
        self._unit_limits = _limits(self._weights)
        if found:
            self.image_shape = tuple(self.session.loaded.input_shape[-2:])
            self._layout()
        self._fill_mosaic()
        self._draw_selected()
        if found:
            self.mosaic_view.autoRange(padding=0.01)
            self.unit_view.autoRange(padding=0.01)
        self._drawn_at = now

    def _layout(self) -> None:
        units = self.layer.out_features
        self.columns = math.ceil(math.sqrt(units))
        rows = math.ceil(units / self.columns)
        h, w = self.image_shape
        # Every tile with its gap after it, so the buffer reshapes to (rows, h + GAP,
        # columns, w + GAP) and all tiles go in with one assignment; the last gaps are
        # transparent like the others.
        self._mosaic = np.full((rows * (h + GAP), self.columns * (w + GAP)), np.nan, np.float32)
        self.mosaic_title.setText(
            f"{self.layer.name}: {units} units, each one's {self.layer.in_features} input weights "
            f"as a {h}x{w} image"
        )

    def _fill_mosaic(self) -> None:
        (h, w), units = self.image_shape, len(self._weights)
        tiles = self._weights.reshape(units, h, w)
        if self.per_unit.isChecked():
            tiles = tiles / self._unit_limits[:, None, None]
            levels = (-1.0, 1.0)
        else:
            m = self._layer_limit()
            levels = (-m, m)
        rows = len(self._mosaic) // (h + GAP)
        grid = self._mosaic.reshape(rows, h + GAP, self.columns, w + GAP).transpose(0, 2, 1, 3)
        k = np.arange(units)
        grid[k // self.columns, k % self.columns, :h, :w] = tiles  # writes through the view
        self.mosaic.setImage(self._mosaic, autoLevels=False, levels=levels)

    def _draw_selected(self) -> None:
        unit, (h, w) = self.selected, self.image_shape
        values = self._weights[unit].reshape(h, w)
        limits = self._unit_limits
        m = float(limits[unit]) if self.per_unit.isChecked() else self._layer_limit()
        self.unit_image.setImage(values, autoLevels=False)
        self.colour_bar.setLevels((-m, m))
        bias = "" if self._bias is None else f"   bias {self._bias[unit]:+.3g}"
        self.unit_title.setText(f"{self.layer.name} unit {unit}{bias}")
        r, c = self.tile_origin(unit)
        self.highlight.setRect(QRectF(c - 0.5, r - 0.5, w + 1, h + 1))

    def _layer_limit(self) -> float:
        """The layer's scale: the one the Weights panel gives this layer (its weights and
        bias), so a weight has the same colour in both panels."""
        return symmetric_limit(self._weights, self._bias)

    # ----- hover -----------------------------------------------------------------------------
    def text_at(self, x: float, y: float) -> str:
        """The unit, pixel and weight under mosaic coordinates (x, y); "" in a gap."""
        unit = self.unit_at(x, y)
        if unit is None:
            return ""
        h, w = self.image_shape
        row, col = int(y) % (h + GAP), int(x) % (w + GAP)
        value = self._weights[unit, row * w + col]
        return f"{self.layer.name} unit {unit}   pixel (row {row}, col {col})   weight {value:+.4g}"

    def _mouse_moved(self, args: tuple[QPointF]) -> None:
        pos, text = args[0], ""
        if self.layer is not None and self.mosaic_view.sceneBoundingRect().contains(pos):
            p = self.mosaic.mapFromScene(pos)
            text = self.text_at(p.x(), p.y())
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
        apply_palette(self, self.graphics, [], self.colour_bar)
        cmap, scheme = colours.colormap(self.palette()), colours.current()
        self.mosaic.setColorMap(cmap)
        self.colour_bar.setColorMap(cmap)  # and the enlarged unit, its image
        self.colour_bar.axis.setLabel(f"weight: {scheme.legend}")
        self.hint.setText(
            f"<b style='color:{scheme.positive}'>{scheme.positive_word}</b>: ink here "
            f"excites the unit &nbsp; <b style='color:{scheme.negative}'>"
            f"{scheme.negative_word}</b>: ink here inhibits it"
        )
        fg = self.palette().color(QPalette.ColorRole.WindowText)
        for label in (self.mosaic_title, self.unit_title):
            label.setAttr("color", fg)
            label.setText(label.text)
        self.highlight.setPen(pg.mkPen(self.palette().color(QPalette.ColorRole.Highlight), width=1))


def _limits(weights: np.ndarray) -> np.ndarray:
    """Each unit's largest finite |weight| (1.0 where none), for symmetric levels."""
    a = np.abs(weights)
    a = np.where(np.isfinite(a), a, 0.0)
    m = a.max(axis=1) if a.size else np.ones(len(weights))
    return np.where(m > 0, m, 1.0).astype(np.float32)
