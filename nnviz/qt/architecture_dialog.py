"""The architecture editor: build a network layer by layer and watch its size and shapes.

Every edit re-checks the spec with the core's ``validate`` and counts its parameters
by building it on PyTorch's "meta" device, which allocates and initialises nothing:
about 2 ms at any size, where ``count_params`` took 12 s and 3 GB for an 800-million
parameter model that takes three clicks to make here. So edits need no debounce.
"""

from __future__ import annotations

import copy
import math
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QFont, QPalette, QValidator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import SpecError
from nnviz.core.models import ACTIVATIONS, PRESETS, ArchSpec, build_model, validate

LAYER_CHOICES = [  # (type, what the learner sees, tooltip), in the core's LAYER_TYPES order
    ("dense", "Dense", "Fully connected: every neuron weighs every value of the layer before it"),
    ("conv", "Convolution", "Small filters slide over the image, each making a feature map"),
    ("pool", "Pooling", "Shrinks each feature map, keeping one value per window"),
    ("dropout", "Dropout", "Zeroes a random share of values while training; it has no weights"),
]
ACTIVATION_NAMES = {
    "sigmoid": ("Sigmoid", "Squashes any sum into 0..1: smooth, but slow to learn when saturated"),
    "tanh": ("Tanh", "Squashes any sum into -1..1, centred on zero"),
    "relu": ("ReLU", "Keeps positive sums and turns negative ones into 0: fast to train"),
    "relu6": ("ReLU6", "ReLU capped at 6"),
    "elu": ("ELU", "Like ReLU, but negative sums curve smoothly down towards -1"),
    "leaky_relu": ("Leaky ReLU", "Like ReLU, but negative sums keep a small slope (0.01)"),
    "gelu": ("GELU", "A smooth ReLU, as used in transformers"),
    "none": ("None (linear)", "The weighted sum is passed on as it is"),
}
ACTIVATION_CHOICES = [(k, *ACTIVATION_NAMES.get(k, (k, k))) for k in (*ACTIVATIONS, "none")]
POOL_CHOICES = [
    ("max", "max", "Keep the largest value in each window"),
    ("avg", "average", "Keep the average of each window"),
]
DEFAULTS: dict[str, dict[str, Any]] = {
    "dense": {"type": "dense", "units": 32, "activation": "relu"},
    "conv": {"type": "conv", "channels": 16, "kernel": 3, "padding": "same", "activation": "relu"},
    "pool": {"type": "pool", "kernel": 2, "mode": "max"},
    "dropout": {"type": "dropout", "p": 0.25},
}
COLUMNS = (
    ("Layer", "What this layer does"),
    ("Neurons / filters", "Dense: how many neurons. Convolution: how many filters (feature maps)"),
    ("Kernel", "Width and height of the window a filter or pooling step looks at"),
    ("Padding", "Zeros added around the image so filters reach its edges: 'same size' keeps "
     "the width and height, 'none' shrinks them by the kernel size minus one"),
    ("Activation", "The squashing function applied to each neuron's weighted sum"),
    ("Pooling", "Keep the largest value in each window (max) or their average"),
    ("Drop rate", "Share of values zeroed at random while training"),
    ("Output", "The shape of what this layer hands on: channels×height×width, or a count"),
)  # fmt: skip
COL_TYPE, COL_SIZE, COL_KERNEL, COL_PADDING = range(4)
COL_ACTIVATION, COL_POOL, COL_DROP, COL_OUTPUT = range(4, 8)
SPEC_FILTER = "Architecture specs (*.json)"


def format_shape(shape: tuple[int, ...]) -> str:
    """``(6, 28, 28)`` -> ``"6×28×28"``."""
    return "×".join(str(s) for s in shape)


def layer_shapes(layers: list[dict[str, Any]], input_shape: tuple[int, ...]) -> list[tuple]:
    """The output shape of each layer of a validated (normalised) layer list."""
    shape, out = tuple(input_shape), []
    for layer in layers:
        if layer["type"] == "conv":
            k, s, p = layer["kernel"], layer["stride"], layer["padding"]
            shape = (layer["channels"], *((n + 2 * p - k) // s + 1 for n in shape[1:]))
        elif layer["type"] == "pool":
            shape = (shape[0], *(n // layer["kernel"] for n in shape[1:]))
        elif layer["type"] == "dense":
            shape = (layer["units"],)
        out.append(shape)
    return out


def shape_flow(spec: ArchSpec, shapes: list[tuple]) -> str:
    """``1×28×28 → 784 → 128 → 10``: the input, each change of shape, the flatten, the output."""
    flow = [tuple(spec.input_shape)]
    for shape in [*shapes, (spec.num_classes,)]:
        if len(shape) == 1 and len(flow[-1]) > 1:  # dense layers see the image flattened
            flow.append((math.prod(flow[-1]),))
        if shape != flow[-1]:
            flow.append(shape)
    return " → ".join(format_shape(s) for s in flow)


def _editable(spec: ArchSpec) -> list[dict[str, Any]]:
    """The layers with every field explicit; a padding that keeps the size is called "same"."""
    try:
        layers: list[Any] = validate(spec)
    except SpecError:  # edit it as it is; the live check will say what is wrong
        layers = spec.layers
    out = []
    for layer in layers:
        layer = layer if isinstance(layer, dict) else {}
        full = {**DEFAULTS.get(layer.get("type"), DEFAULTS["dense"]), **copy.deepcopy(layer)}
        k = full.get("kernel")
        if full["type"] == "conv" and isinstance(k, int) and k % 2 and full["padding"] == k // 2:
            full["padding"] = "same"
        out.append(full)
    return out


def _combo(choices: list[tuple[Any, str, str]], current: object, tip: str) -> QComboBox:
    combo = QComboBox()
    for data, text, item_tip in choices:
        combo.addItem(text, data)
        combo.setItemData(combo.count() - 1, item_tip, Qt.ItemDataRole.ToolTipRole)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    combo.setToolTip(tip)
    return combo


def _button(text: str, tip: str, slot: Callable[[], object]) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.clicked.connect(slot)
    return button


def _label(tip: str = "") -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setToolTip(tip)
    return label


class KernelSpinBox(QSpinBox):
    """A square window size, shown as ``3×3``; typing ``5`` means 5×5."""

    def textFromValue(self, value: int) -> str:  # noqa: N802
        return f"{value}×{value}"

    def valueFromText(self, text: str) -> int:  # noqa: N802
        match = re.match(r"\s*(\d+)", text)
        return int(match[1]) if match else self.value()

    def validate(self, text: str, pos: int) -> QValidator.State:
        match = re.fullmatch(r"\s*(\d*)\s*(?:[×x*]\s*\d*)?\s*", text)
        if not match:
            return QValidator.State.Invalid
        ok = match[1] and self.minimum() <= int(match[1]) <= self.maximum()
        return QValidator.State.Acceptable if ok else QValidator.State.Intermediate


class ArchitectureDialog(QDialog):
    """Design a network: pick layers, see its parameter count and shapes as you edit."""

    def __init__(self, spec: ArchSpec | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Design a network")
        start = copy.deepcopy(spec if spec is not None else PRESETS["mlp"])
        self._layers: list[dict[str, Any]] = []
        self._described: tuple[str, list[dict[str, Any]]] = ("", [])

        self.name_edit = QLineEdit(start.name)
        self.name_edit.setToolTip("A name for this network, shown in the title and summaries")
        presets = [(key, key, preset.description) for key, preset in PRESETS.items()]
        self.preset_combo = _combo(presets, None, "Replace the layers with a ready-made network")
        self.preset_combo.setPlaceholderText("choose a preset")
        self.preset_combo.activated.connect(self._on_preset_chosen)
        top = QHBoxLayout()
        for widget in (QLabel("Name:"), self.name_edit, QLabel("Start from:"), self.preset_combo):
            top.addWidget(widget, stretch=int(widget is self.name_edit))

        self.about_label = _label()
        self.table = QTableWidget(0, len(COLUMNS))
        for col, (title, tip) in enumerate(COLUMNS):
            self.table.setHorizontalHeaderItem(col, item := QTableWidgetItem(title))
            item.setToolTip(tip)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(32)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.add_button = _button("Add layer", "Add a layer below the selected one", self._add)
        self.remove_button = _button("Remove", "Remove the selected layer", self._remove)
        self.up_button = _button("Move up", "Move it nearer the input", lambda: self._move(-1))
        self.down_button = _button("Move down", "Move it nearer the output", lambda: self._move(1))
        row_buttons = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.up_button, self.down_button):
            row_buttons.addWidget(button)
        row_buttons.addStretch(1)

        self.params_label = _label("Weights and biases the network learns, all counted")
        font = QFont(self.params_label.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.params_label.setFont(font)
        self.flow_label = _label("How the shape of the data changes from input to output")
        self.flow_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label, self.file_label = _label(), _label()

        self.load_button = _button("Load spec…", "Open layers saved as JSON", self._ask_load)
        self.save_button = _button("Save spec…", "Save these layers as JSON", self._ask_save)
        ok_cancel = QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        self.buttons = QDialogButtonBox(ok_cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        for widget in (self.load_button, self.save_button, self.buttons):
            bottom.addWidget(widget, stretch=int(widget is self.buttons))

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.about_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(row_buttons)
        for label in (self.params_label, self.flow_label, self.error_label, self.file_label):
            layout.addWidget(label)
        layout.addLayout(bottom)
        self.resize(900, 560)
        self._set_spec(start)

    # -- the spec ---------------------------------------------------------------------------

    def spec(self) -> ArchSpec:
        """The architecture as edited so far (see ``is_valid`` before building it)."""
        description, described = self._described
        return ArchSpec(
            layers=copy.deepcopy(self._layers),
            input_shape=self._input_shape,
            num_classes=self._num_classes,
            name=self.name_edit.text().strip() or "custom",
            description=description if self._layers == described else "",
        )

    def is_valid(self) -> bool:
        """Whether the layers make a network that can be built (OK is enabled)."""
        return self.ok_button.isEnabled()

    def accept(self) -> None:
        """Close with OK, but never with a network that cannot be built."""
        if self.is_valid():
            super().accept()

    def _set_spec(self, spec: ArchSpec) -> None:
        self.name_edit.setText(spec.name)
        self._input_shape, self._num_classes = spec.input_shape, spec.num_classes
        self._layers = _editable(spec)
        self._described = (spec.description, copy.deepcopy(self._layers))
        self.about_label.setText(
            f"The input is a {format_shape(spec.input_shape)} image. After your layers comes an "
            f"output layer of {spec.num_classes} neurons, one score per class."
        )
        preset = PRESETS.get(spec.name)
        same = preset is not None and _editable(preset) == self._layers
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(spec.name) if same else -1)
        self._rebuild_table()

    def _on_preset_chosen(self, index: int) -> None:
        self._set_spec(PRESETS[self.preset_combo.itemData(index)])

    def _refresh(self) -> None:
        """Check the spec and show its parameter count and shapes, or what is wrong."""
        spec, error, shapes = self.spec(), "", []
        try:
            shapes = layer_shapes(validate(spec), spec.input_shape)
            with torch.device("meta"):
                params = sum(p.numel() for p in build_model(spec).parameters())
        except SpecError as exc:
            error = f"This network cannot be built: {exc}"
        for row in range(self.table.rowCount()):
            item = QTableWidgetItem("" if error else format_shape(shapes[row]))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            self.table.setItem(row, COL_OUTPUT, item)
        self.params_label.setText("? parameters" if error else f"{params:,} parameters")
        self.flow_label.setText("" if error else shape_flow(spec, shapes))
        self.flow_label.setVisible(not error)
        self._show_message(self.error_label, error)
        self.ok_button.setEnabled(not error)
        self.save_button.setEnabled(not error)

    def _show_message(self, label: QLabel, text: str, problem: bool = True) -> None:
        dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
        colour = QColor("#ff7b72" if dark else "#c62828")
        label.setStyleSheet(f"color: {colour.name()};" if problem else "")
        label.setText(text)
        label.setVisible(bool(text))

    # -- the table --------------------------------------------------------------------------

    def _rebuild_table(self, select: int = -1) -> None:
        self.table.setRowCount(0)
        self.table.setRowCount(len(self._layers))
        for row, layer in enumerate(self._layers):
            self._place(row, COL_TYPE, _combo(LAYER_CHOICES, layer["type"], COLUMNS[0][1]), layer)
            self._fill_row(row, layer)
        self.table.resizeColumnsToContents()
        if 0 <= select < len(self._layers):
            self.table.selectRow(select)
        self._update_buttons()
        self._refresh()

    def _fill_row(self, row: int, layer: dict[str, Any]) -> None:
        """Put an editor in each field the layer's type has; leave the rest empty."""
        for col in range(COL_SIZE, COL_OUTPUT):
            if (old := self.table.cellWidget(row, col)) is not None:
                old.hide()  # removeCellWidget only schedules its deletion; it would still show
                self.table.removeCellWidget(row, col)
        kind, tips = layer["type"], dict(COLUMNS)
        if kind in ("dense", "conv"):
            key = "units" if kind == "dense" else "channels"
            spin = QSpinBox(minimum=1, maximum=max(65536, layer[key]), value=layer[key])
            spin.setToolTip(tips["Neurons / filters"])
            self._place(row, COL_SIZE, spin, layer, key)
            combo = _combo(ACTIVATION_CHOICES, layer["activation"], tips["Activation"])
            self._place(row, COL_ACTIVATION, combo, layer, "activation")
        if kind in ("conv", "pool"):
            spin = KernelSpinBox(minimum=1, maximum=max(28, layer["kernel"]), value=layer["kernel"])
            spin.setToolTip(tips["Kernel"])
            self._place(row, COL_KERNEL, spin, layer, "kernel")
        if kind == "conv":
            pads = [("same", "same size", "Keep the width and height"), (0, "none", "Shrink")]
            if layer["padding"] not in ("same", 0):
                pads.append((layer["padding"], f"{layer['padding']} px", "Zeros added per side"))
            combo = _combo(pads, layer["padding"], tips["Padding"])
            self._place(row, COL_PADDING, combo, layer, "padding")
        if kind == "pool":
            combo = _combo(POOL_CHOICES, layer["mode"], tips["Pooling"])
            self._place(row, COL_POOL, combo, layer, "mode")
        if kind == "dropout":
            spin = QDoubleSpinBox(decimals=2, maximum=0.95, singleStep=0.05, value=layer["p"])
            spin.setToolTip(tips["Drop rate"])
            self._place(row, COL_DROP, spin, layer, "p")

    def _place(
        self, row: int, col: int, editor: QWidget, layer: dict[str, Any], key: str = "type"
    ) -> None:
        """Put an editor of ``layer[key]`` in a cell; focusing it selects its row."""
        if isinstance(editor, QComboBox):
            editor.currentIndexChanged.connect(
                lambda _i: self._edit(layer, key, editor.currentData())
            )
        else:
            editor.valueChanged.connect(lambda value: self._edit(layer, key, value))
        editor.installEventFilter(self)
        self.table.setCellWidget(row, col, editor)

    def _edit(self, layer: dict[str, Any], key: str, value: object) -> None:
        if key == "type":  # a new type starts from its defaults, keeping the activation
            new = copy.deepcopy(DEFAULTS[value])
            if "activation" in new and "activation" in layer:
                new["activation"] = layer["activation"]
            layer.clear()
            layer.update(new)
            row = next(i for i, candidate in enumerate(self._layers) if candidate is layer)
            self._fill_row(row, layer)
            self.table.selectRow(row)
        else:
            layer[key] = value
        self._refresh()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """Focusing a field in the table selects the layer it belongs to."""
        if event.type() == QEvent.Type.FocusIn:
            for row in range(self.table.rowCount()):
                cells = (self.table.cellWidget(row, col) for col in range(COL_OUTPUT))
                if any(cell is watched for cell in cells) and row != self._selected_row():
                    self.table.selectRow(row)
        return super().eventFilter(watched, event)

    def _selected_row(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def _update_buttons(self) -> None:
        row = self._selected_row()
        self.remove_button.setEnabled(row >= 0)
        self.up_button.setEnabled(row > 0)
        self.down_button.setEnabled(0 <= row < len(self._layers) - 1)

    def _add(self) -> None:
        """A new layer below the selected one, of the same type (so it fits there)."""
        row = self._selected_row()
        kind = self._layers[row]["type"] if row >= 0 else "dense"
        at = row + 1 if row >= 0 else len(self._layers)
        self._layers.insert(at, copy.deepcopy(DEFAULTS[kind]))
        self._rebuild_table(at)

    def _remove(self) -> None:
        row = self._selected_row()
        if row >= 0:
            del self._layers[row]
            self._rebuild_table(min(row, len(self._layers) - 1))

    def _move(self, step: int) -> None:
        row, layers = self._selected_row(), self._layers
        if row >= 0 and 0 <= row + step < len(layers):
            layers[row], layers[row + step] = layers[row + step], layers[row]
            self._rebuild_table(row + step)

    # -- files ------------------------------------------------------------------------------

    def _ask_save(self) -> None:
        name = f"{self.spec().name}.json"
        path, _ = QFileDialog.getSaveFileName(self, "Save architecture", name, SPEC_FILTER)
        if path:
            self.save_spec(path if path.lower().endswith(".json") else f"{path}.json")

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load architecture", "", SPEC_FILTER)
        if path:
            self.load_spec(path)

    def save_spec(self, path: str | Path) -> bool:
        """Write the spec as JSON, atomically; a failure is shown in the dialog."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            with open(tmp, "x", encoding="utf-8") as f:  # "x": a new file, with the umask's mode
                f.write(self.spec().to_json() + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self._show_message(self.file_label, f"Could not save {path.name}: {exc.strerror}")
            return False
        self._show_message(self.file_label, f"Saved {path}", problem=False)
        return True

    def load_spec(self, path: str | Path) -> bool:
        """Replace the layers with a JSON spec; a problem is shown in the dialog, not raised."""
        path = Path(path)
        try:
            spec = ArchSpec.from_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problem = exc.strerror or str(exc)
        except (SpecError, ValueError, TypeError) as exc:  # bad JSON, or numbers that are not
            problem = str(exc)
        else:
            self._set_spec(spec)
            self._show_message(self.file_label, f"Loaded {path}", problem=False)
            return True
        self._show_message(self.file_label, f"Could not load {path.name}: {problem}")
        return False
