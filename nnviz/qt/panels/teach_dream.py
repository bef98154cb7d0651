"""What does this unit want to see: the picture a neuron, a channel or a class likes most.

``nnviz.core.dream.visualize_unit`` grows the picture from noise by gradient ascent,
with light jitter, blur and fading so it reads at 28x28. It takes about a second, so
it runs in a worker thread on a deep copy of the views' model (the hooks and the eval
mode it sets would otherwise be seen by the views), with a busy bar meanwhile. Hidden
units need the layers' outputs, which exported (.pt2) and TorchScript models do not
give: for those only the output classes are offered, and the panel says why.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.dream import unit_activation, visualize_unit
from nnviz.core.errors import NnvizError
from nnviz.core.explain import class_probabilities
from nnviz.core.gradients import hookable
from nnviz.core.inspect import ACTIVATION_TYPES, LayerInfo
from nnviz.qt.panels.mosaic import model_layers
from nnviz.qt.panels.teach_jobs import BackgroundJob
from nnviz.qt.panels.teach_pictures import (
    Captions,
    answer,
    busy_bar,
    class_name,
    digit_plot,
    hint_label,
    show_digit,
)
from nnviz.state import Session

OUTPUT = "output class"
DREAMABLE = frozenset({"Linear", "Conv1d", "Conv2d", *ACTIVATION_TYPES})
EXPLANATION = (
    "Dream grows a picture from noise that makes the unit as active as it can: for a "
    "channel, its mean over the image. Jitter, blur and fading keep it readable."
)
OUTDATED = "The weights changed since: press Dream to follow them."


@dataclass(frozen=True)
class Dream:
    """A unit's picture and what the unit and the model make of it."""

    layer: str | None  # None: an output class
    unit: int
    picture: np.ndarray  # (28, 28) in [0, 1]
    reached: float  # the unit's value on the picture
    on_input: float | None  # its value on the current input, when there is one
    probabilities: np.ndarray  # what the model reads the picture as


def run_dream(
    model: Any, layer: str | None, unit: int, input_shape: tuple[int, ...], shown: Any
) -> Dream:
    """The worker's job, on a model copy of its own."""
    picture = visualize_unit(model, layer, unit, input_shape=tuple(input_shape))
    on_input = None if shown is None else unit_activation(model, shown, layer, unit)
    return Dream(
        layer,
        unit,
        picture,
        unit_activation(model, picture, layer, unit),
        on_input,
        class_probabilities(model, picture),
    )


def _own_copy(model: Any) -> Any:
    """A deep copy; torch's own deprecation notes while copying an exported graph are
    torch's business, not the person's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return copy.deepcopy(model)


def dreamable_layers(session: Session) -> tuple[list[LayerInfo], str | None]:
    """The hidden layers whose units can be dreamed of, and why none can (or None)."""
    layers = model_layers(session)
    try:
        hookable(session.view_model, "Picturing a hidden unit")
    except NnvizError:
        kind = "exported (.pt2)" if session.loaded.kind == "export" else "TorchScript"
        return [], (
            f"This {kind} model does not give nnviz its layers' outputs, so only the output "
            "classes can be dreamed of."
        )
    hidden = [info for info in layers[:-1] if info.type in DREAMABLE and len(info.output_shape) > 1]
    return hidden, None


class DreamSection(QWidget):
    """Layer, unit, Dream: the unit's favourite picture, large."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.job = BackgroundJob(self)
        self.dream: Dream | None = None
        self._units: dict[str | None, int] = {}  # layer -> how many units it has
        self._moved = False  # the weights changed while a dream ran or since one was shown
        self.captions = Captions(self)

        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("The layer of the unit (or the output classes)")
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.unit_spin = QSpinBox()
        self.unit_spin.setToolTip("Which neuron, channel or class of the layer")
        self.unit_count = QLabel()
        self.dream_button = QPushButton("Dream")
        self.dream_button.setToolTip("Grow the picture this unit responds to most (a second)")
        self.busy = busy_bar("Dreaming\u2026")
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.note = hint_label(EXPLANATION)
        self.captions.hints.append(self.note)
        for label in (self.info, self.note):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        form = QGridLayout()
        form.addWidget(QLabel("Layer"), 0, 0)
        form.addWidget(self.layer_combo, 0, 1, 1, 2)
        form.addWidget(QLabel("Unit"), 1, 0)
        form.addWidget(self.unit_spin, 1, 1)
        form.addWidget(self.unit_count, 1, 2)
        form.setColumnStretch(2, 1)
        dream_row = QHBoxLayout()
        dream_row.addWidget(self.dream_button)
        dream_row.addStretch(1)
        controls = QVBoxLayout()
        controls.setSpacing(6)
        controls.addLayout(form)
        controls.addLayout(dream_row)
        controls.addWidget(self.busy)
        controls.addWidget(self.info)
        controls.addStretch(1)
        controls.addWidget(self.note)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setMinimumSize(160, 160)
        self.picture_plot, self.picture = digit_plot()
        self.graphics.addItem(self.picture_plot)
        self.captions.views.append(self.graphics)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls, 1)
        layout.addWidget(self.graphics, 1)

        self.layer_combo.currentIndexChanged.connect(self._layer_changed)
        self.dream_button.clicked.connect(self.start_dream)
        self.captions.apply()
        self.captions.set_title(self.picture_plot, "pick a unit and press Dream")

    # ----- choices -----------------------------------------------------------------------
    def reload(self) -> None:
        """A different model: its layers, and no picture of the old one's units."""
        self.job.abandon()
        self.busy.hide()
        self.dream = None
        self.picture.clear()
        self.info.clear()
        self.captions.set_title(self.picture_plot, "pick a unit and press Dream")
        s = self.session
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self._units.clear()
        reason = None
        if s.loaded is not None and s.view_model is not None:
            classes = len(s.loaded.class_names)
            self.layer_combo.addItem(f"{OUTPUT} ({classes} classes)", None)
            self._units[None] = classes
            hidden, reason = dreamable_layers(s)
            for info in hidden:
                n = info.output_shape[1]
                what = "channels" if len(info.output_shape) > 2 else "units"
                self.layer_combo.addItem(f"{info.name} ({info.type}, {n} {what})", info.name)
                self._units[info.name] = n
        self.layer_combo.blockSignals(False)
        self.note.setText(reason or EXPLANATION)
        self._layer_changed()

    def current_layer(self) -> str | None:
        return self.layer_combo.currentData()

    def set_unit(self, layer: str | None, unit: int) -> None:
        """Choose ``unit`` of ``layer`` (None: an output class)."""
        self.layer_combo.setCurrentIndex(self.layer_combo.findData(layer))
        self.unit_spin.setValue(unit)

    def _layer_changed(self) -> None:
        n = self._units.get(self.current_layer(), 0)
        self.unit_spin.setRange(0, max(0, n - 1))
        kind = "class" if self.current_layer() is None else "unit"
        self.unit_count.setText(f"of 0\u2013{n - 1}" if n else "")
        self.unit_spin.setToolTip(f"Which {kind} to picture")
        self.update_buttons()

    def update_buttons(self) -> None:
        s = self.session
        ready = s.loaded is not None and s.view_model is not None and self.layer_combo.count()
        self.dream_button.setEnabled(bool(ready) and not self.job.busy)

    def outdated(self) -> None:
        """The weights changed: a picture shown (or being made) is of the old ones."""
        self._moved = True
        if self.dream is not None and not self.job.busy:
            self.info.setText(self._info_text(self.dream) + f"<br><i>{OUTDATED}</i>")

    # ----- dreaming ----------------------------------------------------------------------
    def start_dream(self) -> None:
        """Picture the chosen unit, in the background."""
        s = self.session
        if s.loaded is None or s.view_model is None or self.job.busy:
            return
        layer, unit = self.current_layer(), self.unit_spin.value()
        try:
            model = _own_copy(s.view_model)  # the job's own (hooks, eval mode)
        except Exception as exc:  # noqa: BLE001 - some foreign modules cannot be copied
            self.info.setText(f"This model cannot be copied for dreaming: {exc}")
            return
        shown = None if s.current_input is None else s.current_input.image
        input_shape = tuple(s.loaded.input_shape)
        self._moved = False
        self.job.start(
            lambda: run_dream(model, layer, unit, input_shape, shown), self._dreamt, self._failed
        )
        self.busy.show()
        self.info.setText(f"Dreaming of {self._unit_name(layer, unit)}\u2026")
        self.update_buttons()

    def _dreamt(self, dream: Dream) -> None:
        self.busy.hide()
        self.dream = dream
        show_digit(self.picture, dream.picture)
        self.captions.set_title(self.picture_plot, f"what {self._unit_name(dream)} wants to see")
        text = self._info_text(dream)
        self.info.setText(text + (f"<br><i>{OUTDATED}</i>" if self._moved else ""))
        self.update_buttons()

    def _failed(self, message: str) -> None:
        self.busy.hide()
        self.info.setText(f"Dreaming failed: {message}")
        self.update_buttons()

    # ----- words -------------------------------------------------------------------------
    def _unit_name(self, layer: Any, unit: int | None = None) -> str:
        if isinstance(layer, Dream):
            layer, unit = layer.layer, layer.unit
        if layer is None:
            names = list(self.session.loaded.class_names) if self.session.loaded else []
            return f"class {class_name(names, unit)}"
        channels = self.layer_combo.itemText(self.layer_combo.findData(layer)).endswith("channels)")
        return f"{layer} {'channel' if channels else 'unit'} {unit}"

    def _info_text(self, dream: Dream) -> str:
        loaded = self.session.loaded
        names = [escape(n) for n in loaded.class_names] if loaded else []  # rich text
        value = "score" if dream.layer is None else "value"
        text = f"Its {value} on this picture: <b>{dream.reached:.3g}</b>"
        if dream.on_input is not None:
            text += f"; on the current input: {dream.on_input:.3g}"
        return text + f".<br>The model reads the picture as {answer(names, dream.probabilities)}."

    def apply_palette(self) -> None:
        self.captions.apply()
