"""The "Switched off" panel: what is switched off or clamped, and which units matter.

The top half lists every intervention (layer, unit, value) with a Restore button each
and one Restore all. Units are switched off from the other views' right-click menus,
or here from the bottom half, "What matters for this digit": pick a layer, press Rank
units, and every unit of that layer is switched off alone (one batched forward pass,
``nnviz.core.interventions.knockout_effects``); the list shows first the units whose
loss hurts the current prediction most. Click a unit there to switch it off (again
to restore it). A ranking holds still until Rank units is pressed again, so the list
does not jump under the mouse; it says when the digit or the model has changed since.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.core.inspect import REPEAT_TYPES, LayerInfo
from nnviz.core.interventions import Knockout
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.intervention_menu import state_text
from nnviz.qt.panels.mosaic import model_layers
from nnviz.state import Session

NOTHING_OFF = (
    "Nothing is switched off. Right-click a neuron, channel or filter in Activations, "
    "Network, Feature maps or Filters to switch it off or clamp it, or rank a layer's "
    "units below."
)
RANK_HINT = "Pick a layer and press Rank units: each unit is switched off alone to see what it does"


def rankable_layers(layers: list[LayerInfo]) -> list[LayerInfo]:
    """Hidden layers with units (neurons or channels); not the output, not reshapes."""
    return [
        layer
        for layer in layers[:-1]
        if len(layer.output_shape) >= 2 and layer.type not in REPEAT_TYPES
    ]


def unit_word(layer: LayerInfo) -> str:
    return "channel" if len(layer.output_shape) > 2 else "unit"


class InterventionsPanel(Panel):
    """Lists switched-off and clamped units; ranks a layer's units by what their loss costs."""

    title = "Switched off"
    object_name = "interventions"
    area: ClassVar = Qt.DockWidgetArea.RightDockWidgetArea

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.layers: dict[str, LayerInfo] = {}
        self.knockout: Knockout | None = None
        self._ranked_for: tuple[object, ...] | None = None  # the digit and weights ranked

        self.summary = QLabel(NOTHING_OFF)
        self.summary.setWordWrap(True)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.table = _table(["Layer", "Unit", "Output", ""])
        self.table.setToolTip("Units whose output is forced, whatever their input")
        self.restore_all_button = QPushButton("Restore all")
        self.restore_all_button.setToolTip("Every unit computes its own output again")
        top = QVBoxLayout()
        top.addWidget(self.summary)
        top.addWidget(self.table, 1)
        top.addWidget(self.restore_all_button, 0, Qt.AlignmentFlag.AlignRight)

        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("The layer whose units are switched off one at a time")
        self.rank_button = QPushButton("Rank units")
        self.rank_button.setToolTip(
            "Switch off each unit of the layer alone and sort them by how much the "
            "predicted class's probability falls"
        )
        self.rank_note = QLabel(RANK_HINT)
        self.rank_note.setWordWrap(True)
        self.rank_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.ranking = _table(["Unit", "Probability after", "Loss change", ""], stretch=3)
        self.ranking.setToolTip("Click a unit to switch it off; click again to restore it")
        choose = QHBoxLayout()
        choose.addWidget(QLabel("Layer"))
        choose.addWidget(self.layer_combo, 1)
        choose.addWidget(self.rank_button)
        matters = QGroupBox("What matters for this digit")
        bottom = QVBoxLayout(matters)
        bottom.addLayout(choose)
        bottom.addWidget(self.rank_note)
        bottom.addWidget(self.ranking, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(top, 2)
        layout.addWidget(matters, 3)
        self.setMinimumSize(260, 320)

        self.restore_all_button.clicked.connect(session.restore_all)
        self.rank_button.clicked.connect(self.rank)
        self.layer_combo.currentIndexChanged.connect(self._forget_ranking)
        self.ranking.itemClicked.connect(self._ranking_clicked)
        self.listen(session.model_loaded, self.reload)
        self.listen(session.interventions_changed, self.mark_stale)
        self.listen(session.input_changed, self.mark_stale)
        self.listen(session.snapshot_changed, self.mark_stale)
        self.reload()

    # ----- the layers that can be ranked -------------------------------------------------
    def reload(self) -> None:
        """A different model: its hidden layers in the chooser, no ranking."""
        self.layers = {layer.name: layer for layer in rankable_layers(model_layers(self.session))}
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for layer in self.layers.values():
            n = layer.output_shape[1]
            self.layer_combo.addItem(
                f"{layer.name} ({layer.type}, {n} {unit_word(layer)}s)", layer.name
            )
        self.layer_combo.blockSignals(False)
        self._forget_ranking()

    def set_layer(self, name: str) -> None:
        """Rank the units of layer ``name`` next."""
        self.layer_combo.setCurrentIndex(list(self.layers).index(name))

    def _forget_ranking(self) -> None:
        self.knockout, self._ranked_for = None, None
        self.mark_stale()

    # ----- ranking -----------------------------------------------------------------------
    def rank(self) -> None:
        """Switch off each unit of the chosen layer alone and list them, most hurtful first."""
        layer = self.layer_combo.currentData()
        probs = self.session.probabilities() if layer is not None else None
        if probs is None:
            self.rank_note.setText("Load a model and pick a digit first")
            return
        try:
            self.knockout = self.session.knockout(layer, int(np.argmax(probs)))
        except NnvizError as exc:
            self.knockout = None
            self.rank_note.setText(f"Cannot rank {layer}: {exc}")
            return
        self._ranked_for = self._ranking_state()
        self.mark_stale()
        self.refresh(force=True)

    def ranked_units(self) -> list[int]:
        """The units in the list, from the most hurtful loss down."""
        items = [self.ranking.topLevelItem(i) for i in range(self.ranking.topLevelItemCount())]
        return [item.data(0, Qt.ItemDataRole.UserRole) for item in items]

    def _ranking_state(self) -> tuple[object, ...]:
        """What a ranking depends on besides the interventions: the digit and the weights."""
        return (self.session.current_input, self.session.loaded, self.session.snapshot)

    def _ranking_clicked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        if self.knockout is None:
            return
        layer, unit = self.knockout.layer, item.data(0, Qt.ItemDataRole.UserRole)
        try:
            if self.session.interventions.value(layer, unit) is None:
                self.session.switch_off(layer, unit)
            else:
                self.session.restore(layer, unit)
        except NnvizError as exc:
            self.session.report_error(str(exc))

    # ----- drawing -----------------------------------------------------------------------
    def redraw(self) -> None:
        self._draw_table()
        self._draw_ranking()

    def _draw_table(self) -> None:
        rows = self.session.interventions.rows()
        self.table.clear()
        for layer, unit, value in rows:
            word = unit_word(self.layers[layer]) if layer in self.layers else "unit"
            item = QTreeWidgetItem([layer, f"{word} {unit}", state_text(value), ""])
            self.table.addTopLevelItem(item)
            button = QPushButton("Restore")
            button.setToolTip(f"{layer} unit {unit} computes its own output again")
            button.clicked.connect(
                lambda _=False, name=layer, u=unit: self.session.restore(name, u)
            )
            self.table.setItemWidget(item, 3, button)
        self.restore_all_button.setEnabled(bool(rows))
        self.summary.setText(self._summary_text(len(rows)))

    def _summary_text(self, count: int) -> str:
        if not count:
            return NOTHING_OFF
        probs = self.session.probabilities() if self.session.current_input else None
        units = f"{count} unit{'s' if count > 1 else ''} switched off or clamped"
        if probs is None or not len(probs):
            return units
        top = int(np.argmax(probs))
        return f"{units}; the model now predicts {self._class(top)} ({probs[top]:.1%})"

    def _draw_ranking(self) -> None:
        self.ranking.clear()
        k = self.knockout
        if k is None:
            if self.layer_combo.count() == 0:
                self.rank_note.setText("This model has no hidden layers to rank")
            elif not self.rank_note.text().startswith("Cannot"):
                self.rank_note.setText(RANK_HINT)
            self.rank_button.setEnabled(self.layer_combo.count() > 0)
            return
        target, base = k.target_class, k.baseline[k.target_class]
        word = unit_word(self.layers[k.layer])
        note = (
            f"Each {word} of {k.layer} switched off alone, the most hurtful first: "
            f"P({self._class(target)}) is {base:.1%} now; loss = \u2212log P"
        )
        now = self._ranking_state()
        if any(a is not b for a, b in zip(self._ranked_for or now, now, strict=True)):
            note += " (the digit or the weights have changed: Rank units again)"
        self.rank_note.setText(note)
        after, rises = k.probabilities, k.loss_rises
        self.ranking.setHeaderLabels(
            [word.capitalize(), f"P({self._class(target)}) after", "Loss change", ""]
        )
        for unit in k.ranked():
            winner = int(np.argmax(after[unit]))
            note = f"predicts {self._class(winner)}" if winner != target else ""
            state = state_text(self.session.interventions.value(k.layer, unit))
            cells = [str(unit), f"{after[unit, target]:.1%}", _signed(rises[unit]), state or note]
            item = QTreeWidgetItem(cells)
            item.setData(0, Qt.ItemDataRole.UserRole, unit)
            for column in (0, 1, 2):
                item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight)
            self.ranking.addTopLevelItem(item)

    def _class(self, index: int) -> str:
        names = self.session.loaded.class_names if self.session.loaded else []
        return names[index] if 0 <= index < len(names) else str(index)


def _table(headers: list[str], stretch: int = 0) -> QTreeWidget:
    """A plain table: no tree lines, columns as wide as their text but one stretched."""
    table = QTreeWidget()
    table.setHeaderLabels(headers)
    table.setRootIsDecorated(False)
    header = table.header()
    header.setStretchLastSection(False)
    for column in range(len(headers)):
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    return table


def _signed(value: float) -> str:
    """+0.237, -0.005; float noise around zero reads as +0.000."""
    return f"{value + 0.0:+.3f}".replace("-0.000", "+0.000")
