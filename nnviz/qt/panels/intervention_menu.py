"""Right-click a unit to switch it off, clamp it or restore it; a marker on changed units.

Every panel that draws units (activation cells, neurons, feature maps, filters) uses
the same menu and the same look of marker, so the user learns them once. A panel owns
one ``UnitMarkers`` item per picture (not one item per unit) and an
``InterventionControls`` that opens the menu and says which of its units are changed.

Markers follow a unit through its *chain*: a layer and the elementwise layers right
after it (activation, normalisation, dropout) with the same output shape. Switching
off conv1's filter 3 also silences relu1's channel 3, so both are marked, and "Restore"
on either gives the unit back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QWidget,
    QWidgetAction,
)

from nnviz.core.errors import NnvizError
from nnviz.core.inspect import ACTIVATION_TYPES, NORM_TYPES, REPEAT_TYPES, LayerInfo
from nnviz.qt.panels.base import Panel

# A colour none of the value maps uses (orange/blue cells, blue-white-red weights,
# viridis maps), so a marker never reads as a value.
MARKER_COLOUR = QColor(236, 24, 140)
# Steps that keep a layer's units where they are (Flatten too, when it changes nothing).
ELEMENTWISE = ACTIVATION_TYPES | NORM_TYPES | REPEAT_TYPES


def unit_chains(layers: Sequence[LayerInfo]) -> dict[str, tuple[str, ...]]:
    """Each layer's chain (see the module docstring), by layer name."""
    chains: dict[str, tuple[str, ...]] = {}
    current: list[str] = []
    previous: LayerInfo | None = None
    for layer in layers:
        follows = (
            previous is not None
            and layer.type in ELEMENTWISE
            and layer.output_shape == previous.output_shape
        )
        current = [*current, layer.name] if follows else [layer.name]
        for name in current:
            chains[name] = tuple(current)
        previous = layer
    return chains


def state_text(value: float | None) -> str:
    """How a changed unit is described: "switched off" or "clamped to 1.5"."""
    if value is None:
        return ""
    return "switched off" if value == 0.0 else f"clamped to {value:.4g}"


class UnitMarkers(pg.ScatterPlotItem):
    """Every changed unit of one picture: an X where switched off, a square where clamped."""

    def __init__(self) -> None:
        super().__init__(pxMode=False)
        self.setZValue(20)  # above images, edges and neurons
        self.set_background(QColor(255, 255, 255))
        self.marked: dict[object, float] = {}  # what is marked: unit (or a panel's key) -> value

    def set_background(self, colour: QColor) -> None:
        """The outline colour, so a marker stands out on any tile."""
        self._outline = pg.mkPen(colour, width=1)
        self._ring = pg.mkPen(MARKER_COLOUR, width=3)
        self._fill = pg.mkBrush(MARKER_COLOUR)

    def show_units(self, spots: Iterable[tuple[object, float, float, float, float]]) -> None:
        """Mark (unit, x, y, size, value) spots; an empty list clears the picture."""
        spots = list(spots)
        had_any = bool(self.marked)
        self.marked = {unit: value for unit, _, _, _, value in spots}
        # Hidden while there is nothing to mark: most redraws (a stroke on the canvas, a
        # new snapshot) have none, and an empty scatter item still cost a paint each time.
        self.setVisible(bool(spots))
        if not spots:
            if had_any:
                self.setData([])
            return
        off = [value == 0.0 for *_, value in spots]
        self.setData(
            pos=[(x, y) for _, x, y, _, _ in spots],
            size=[size for _, _, _, size, _ in spots],
            symbol=["x" if o else "s" for o in off],
            pen=[self._outline if o else self._ring for o in off],
            brush=[self._fill if o else pg.mkBrush(None) for o in off],
        )


class InterventionControls:
    """A panel's side of interventions: its layers' chains, the menu, the marked units."""

    def __init__(self, panel: Panel, what: str = "unit") -> None:
        self.panel, self.session, self.what = panel, panel.session, what
        self.chains: dict[str, tuple[str, ...]] = {}
        self.menu: QMenu | None = None  # the menu open now (tests pick its actions)
        self.clamp_box: QDoubleSpinBox | None = None
        panel.listen(self.session.interventions_changed, panel.mark_stale)

    def set_layers(self, layers: Sequence[LayerInfo]) -> None:
        """The model's layers in execution order, read again for a new model."""
        self.chains = unit_chains(layers)

    def changed_units(self, layer: str) -> dict[int, float]:
        """Units of ``layer`` (or of its chain) that are switched off or clamped."""
        units: dict[int, float] = {}
        for name in self.chains.get(layer, (layer,)):
            units.update(self.session.interventions.get(name, {}))
        return units

    def describe(self, layer: str, unit: int) -> str:
        """ " · switched off" (or clamped) for a changed unit, "" otherwise; for hovers."""
        text = state_text(self.changed_units(layer).get(unit))
        return f" \u00b7 {text}" if text else ""

    def open_menu(
        self, layer: str, unit: int, screen_pos: QPoint, what: str | None = None
    ) -> QMenu:
        """Pop up the menu for ``unit`` of ``layer`` (a neuron, or a channel's whole map)."""
        if self.menu is not None:
            self.menu.deleteLater()  # the last one, closed by now
        self.menu = menu = QMenu(self.panel)
        what = what or self.what
        menu.addAction(
            f"Switch off {what} {unit} ({layer})",
            lambda: self._do(self.session.switch_off, layer, unit),
        )
        menu.addAction(self._clamp_action(menu, layer, unit, self._output_now(layer, unit)))
        changed = unit in self.changed_units(layer)
        restore = menu.addAction(f"Restore {what} {unit}", lambda: self._restore(layer, unit))
        restore.setEnabled(changed)
        menu.addSeparator()
        count = self.session.interventions.unit_count
        restore_all = menu.addAction(
            f"Restore all switched-off units ({count})", self.session.restore_all
        )
        restore_all.setEnabled(count > 0)
        menu.popup(screen_pos)
        return menu

    def action(self, text: str) -> object:
        """The open menu's action whose text starts with ``text`` (for tests and shortcuts)."""
        assert self.menu is not None
        return next(a for a in self.menu.actions() if a.text().startswith(text))

    def _clamp_action(self, menu: QMenu, layer: str, unit: int, value: float) -> QWidgetAction:
        row = QWidget(menu)
        box = QHBoxLayout(row)
        box.setContentsMargins(24, 2, 8, 2)
        self.clamp_box = spin = QDoubleSpinBox(row)
        spin.setRange(-1e6, 1e6)
        spin.setDecimals(3)
        spin.setValue(float(value))
        spin.setToolTip("The value this unit will output whatever its input (0 = off)")
        button = QPushButton("Clamp", row)
        box.addWidget(QLabel("Clamp to", row))
        box.addWidget(spin, 1)
        box.addWidget(button)

        def clamp() -> None:
            menu.close()
            self._do(self.session.clamp, layer, unit, spin.value())

        button.clicked.connect(clamp)
        spin.lineEdit().returnPressed.connect(clamp)
        action = QWidgetAction(menu)
        action.setDefaultWidget(row)
        return action

    def _output_now(self, layer: str, unit: int) -> float:
        """What the unit outputs for the current input (a channel: its map's mean), or 0;
        the clamp box starts there, so the user sees the scale of the layer's values."""
        try:
            output = self.session.activations().get(layer)
        except NnvizError:
            return 0.0
        if output is None or output.ndim < 2 or unit >= output.shape[1]:
            return 0.0
        return float(output[0, unit].mean())

    def _restore(self, layer: str, unit: int) -> None:
        for name in self.chains.get(layer, (layer,)):
            self.session.restore(name, unit)

    def _do(self, change: object, *args: object) -> None:
        try:
            change(*args)
        except NnvizError as exc:  # e.g. a unit the model no longer has
            self.session.report_error(str(exc))
