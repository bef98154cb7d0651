"""The architecture dialog, offscreen: real widgets, edited the way a person would."""

from __future__ import annotations

import json
import time

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFileDialog, QSpinBox

from nnviz.core.models import ACTIVATIONS, PRESETS, ArchSpec, build_model, count_params
from nnviz.qt.architecture_dialog import (
    ACTIVATION_CHOICES,
    COL_ACTIVATION,
    COL_DROP,
    COL_KERNEL,
    COL_OUTPUT,
    COL_POOL,
    COL_SIZE,
    COL_TYPE,
    ArchitectureDialog,
)


@pytest.fixture
def make_dialog(qtbot):
    def make(spec=None):
        dlg = ArchitectureDialog(spec)
        qtbot.addWidget(dlg)
        dlg.show()
        qtbot.waitExposed(dlg)
        return dlg

    return make


def _ok(dlg):
    return dlg.buttons.button(QDialogButtonBox.StandardButton.Ok)


def _choose(combo: QComboBox, text: str) -> None:
    """Pick an item with the keyboard, as a person can (this emits ``activated``)."""
    combo.setFocus()
    target = combo.findText(text)
    assert target >= 0, text
    QTest.keyClick(combo, Qt.Key.Key_Home)
    for _ in range(target):
        QTest.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentIndex() == target


def _cell(dlg, row, col):
    return dlg.table.cellWidget(row, col)


def _select_row(qtbot, dlg, row):
    """Click the row's output cell, as a person picks a layer."""
    rect = dlg.table.visualItemRect(dlg.table.item(row, COL_OUTPUT))
    qtbot.mouseClick(dlg.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert dlg.table.selectionModel().selectedRows()[0].row() == row


def test_default_dialog_shows_the_mlp(make_dialog):
    dlg = make_dialog()
    assert dlg.params_label.text() == "109,386 parameters"
    assert dlg.flow_label.text() == "1×28×28 → 784 → 128 → 64 → 10"
    assert dlg.preset_combo.currentText() == "mlp"
    assert dlg.table.rowCount() == 2
    assert _cell(dlg, 0, COL_SIZE).value() == 128
    assert dlg.table.item(1, COL_OUTPUT).text() == "64"
    assert _ok(dlg).isEnabled() and dlg.is_valid()
    assert dlg.error_label.isHidden()


def test_start_from_replaces_the_layers(make_dialog):
    dlg = make_dialog()
    _choose(dlg.preset_combo, "mlp-3b1b")
    assert dlg.params_label.text() == "13,002 parameters"
    assert dlg.name_edit.text() == "mlp-3b1b"
    assert [_cell(dlg, r, COL_ACTIVATION).currentData() for r in range(2)] == ["sigmoid"] * 2
    assert dlg.spec().description == PRESETS["mlp-3b1b"].description

    _choose(dlg.preset_combo, "lenet")
    assert dlg.params_label.text() == "28,886 parameters"
    assert (
        dlg.flow_label.text() == "1×28×28 → 6×28×28 → 6×14×14 → 16×10×10 → 16×5×5 → 400 → 64 → 10"
    )


def test_changing_units_updates_the_count(make_dialog, qtbot):
    dlg = make_dialog()
    spin = _cell(dlg, 0, COL_SIZE)
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, "50")
    assert spin.value() == 50
    spec = dlg.spec()
    assert spec.layers[0]["units"] == 50
    expected = count_params(spec)
    assert expected == 784 * 50 + 50 + 50 * 64 + 64 + 64 * 10 + 10
    assert dlg.params_label.text() == f"{expected:,} parameters"
    assert dlg.flow_label.text() == "1×28×28 → 784 → 50 → 64 → 10"
    # editing a layer's numbers means it is no longer the preset it started from
    assert dlg.spec().description == ""


def test_conv_after_dense_is_an_error_and_disables_ok(make_dialog, qtbot):
    dlg = make_dialog()
    _select_row(qtbot, dlg, 1)
    qtbot.mouseClick(dlg.add_button, Qt.MouseButton.LeftButton)
    assert dlg.table.rowCount() == 3
    _cell(dlg, 2, COL_TYPE).setCurrentIndex(_cell(dlg, 2, COL_TYPE).findData("conv"))
    assert "layer 3: a conv layer cannot follow a dense layer" in dlg.error_label.text()
    assert dlg.error_label.isVisible()
    assert dlg.error_label.palette().color(dlg.error_label.foregroundRole()).red() > 150
    assert not _ok(dlg).isEnabled() and not dlg.save_button.isEnabled()
    assert dlg.params_label.text() == "? parameters"
    QTest.keyClick(dlg, Qt.Key.Key_Return)  # Enter cannot slip past the disabled OK
    dlg.accept()
    assert dlg.isVisible() and dlg.result() != QDialog.DialogCode.Accepted

    # moving it to the top makes a valid CNN again
    _select_row(qtbot, dlg, 2)
    qtbot.mouseClick(dlg.up_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dlg.up_button, Qt.MouseButton.LeftButton)
    assert [layer["type"] for layer in dlg.spec().layers] == ["conv", "dense", "dense"]
    assert _ok(dlg).isEnabled() and dlg.error_label.isHidden()
    assert dlg.params_label.text() == f"{count_params(dlg.spec()):,} parameters"


def test_an_image_shrunk_to_nothing_is_an_error(make_dialog, qtbot):
    dlg = make_dialog(PRESETS["lenet"])
    kernel = _cell(dlg, 1, COL_KERNEL)  # the first pooling layer
    kernel.setValue(20)
    assert "shrinks the image to nothing" in dlg.error_label.text()
    assert not _ok(dlg).isEnabled()
    kernel.setValue(2)
    assert _ok(dlg).isEnabled()


def test_each_type_shows_only_its_fields(make_dialog):
    dlg = make_dialog()
    _cell(dlg, 0, COL_TYPE).setCurrentIndex(_cell(dlg, 0, COL_TYPE).findData("dropout"))
    assert isinstance(_cell(dlg, 0, COL_DROP).value(), float)
    assert _cell(dlg, 0, COL_SIZE) is None and _cell(dlg, 0, COL_ACTIVATION) is None
    assert dlg.spec().layers[0] == {"type": "dropout", "p": 0.25}
    assert dlg.flow_label.text() == "1×28×28 → 784 → 64 → 10"

    dropout = _cell(dlg, 0, COL_DROP)
    _cell(dlg, 0, COL_TYPE).setCurrentIndex(_cell(dlg, 0, COL_TYPE).findData("pool"))
    assert not dropout.isVisible()  # gone from the screen at once, not at the next idle
    assert _cell(dlg, 0, COL_POOL).currentData() == "max"
    assert _cell(dlg, 0, COL_KERNEL).text() == "2×2"
    assert _cell(dlg, 0, COL_DROP) is None
    assert dlg.table.item(0, COL_OUTPUT).text() == "1×14×14"
    assert dlg.params_label.text() == f"{count_params(dlg.spec()):,} parameters"


def test_every_activation_of_the_core_can_be_chosen():
    assert [key for key, _, _ in ACTIVATION_CHOICES] == [*ACTIVATIONS, "none"]
    assert all(tip for _, _, tip in ACTIVATION_CHOICES)


def test_remove_and_buttons_follow_the_selection(make_dialog, qtbot):
    dlg = make_dialog()
    dlg.table.clearSelection()
    assert not dlg.remove_button.isEnabled() and not dlg.up_button.isEnabled()
    _select_row(qtbot, dlg, 0)
    assert dlg.remove_button.isEnabled() and dlg.down_button.isEnabled()
    assert not dlg.up_button.isEnabled()
    qtbot.mouseClick(dlg.remove_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dlg.remove_button, Qt.MouseButton.LeftButton)
    assert dlg.table.rowCount() == 0
    # no hidden layers at all: the input goes straight to the 10 outputs
    assert dlg.params_label.text() == "7,850 parameters"
    assert dlg.flow_label.text() == "1×28×28 → 784 → 10"
    assert _ok(dlg).isEnabled()


def test_the_returned_spec_builds_a_model_that_runs(make_dialog, qtbot):
    dlg = make_dialog()
    _choose(dlg.preset_combo, "cnn")
    dlg.name_edit.setText("my cnn")
    qtbot.mouseClick(_ok(dlg), Qt.MouseButton.LeftButton)
    assert dlg.result() == QDialog.DialogCode.Accepted
    spec = dlg.spec()
    assert spec.name == "my cnn"
    model = build_model(spec, seed=0)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert count_params(spec) == count_params(PRESETS["cnn"])


@pytest.mark.parametrize("preset", list(PRESETS))
def test_shapes_shown_match_a_real_forward_pass(make_dialog, preset):
    dlg = make_dialog(PRESETS[preset])
    model = build_model(dlg.spec(), seed=0).eval()
    x, shapes = torch.zeros(1, 1, 28, 28), []
    for name, module in model.named_children():
        x = module(x)
        if name.startswith(("fc", "conv", "pool", "dropout")):
            shapes.append("×".join(str(n) for n in x.shape[1:]))
    assert [dlg.table.item(r, COL_OUTPUT).text() for r in range(dlg.table.rowCount())] == shapes
    assert dlg.params_label.text() == f"{count_params(PRESETS[preset]):,} parameters"


def test_a_huge_network_is_counted_without_building_it(make_dialog):
    dlg = make_dialog(PRESETS["lenet"])
    started = time.perf_counter()
    _cell(dlg, 0, COL_SIZE).setValue(512)  # 512 maps of 28x28 feed the second conv
    _cell(dlg, 2, COL_SIZE).setValue(1024)  # 1024 maps of 10x10 -> 25,600 inputs to fc1
    _cell(dlg, 4, COL_SIZE).setValue(65536)
    elapsed = time.perf_counter() - started
    conv1 = 1 * 512 * 25 + 512
    conv2 = 512 * 1024 * 25 + 1024
    fc1 = 1024 * 5 * 5 * 65536 + 65536
    out = 65536 * 10 + 10
    assert dlg.params_label.text() == f"{conv1 + conv2 + fc1 + out:,} parameters"
    assert elapsed < 2.0  # building it for real allocates 7 GB


def test_save_and_load_round_trip(make_dialog, qtbot, tmp_path, monkeypatch):
    dlg = make_dialog(PRESETS["lenet"])
    _cell(dlg, 0, COL_SIZE).setValue(8)
    dlg.name_edit.setText("wider lenet")
    target = tmp_path / "wider"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "Architecture specs")
    )
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    saved = tmp_path / "wider.json"
    assert [p.name for p in tmp_path.iterdir()] == ["wider.json"]  # no temp file left behind
    assert json.loads(saved.read_text())["name"] == "wider lenet"
    assert "Saved" in dlg.file_label.text()

    other = make_dialog()
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", lambda *a, **k: (str(saved), "Architecture specs")
    )
    qtbot.mouseClick(other.load_button, Qt.MouseButton.LeftButton)
    assert other.spec().to_dict() == dlg.spec().to_dict()
    assert other.name_edit.text() == "wider lenet"
    assert other.params_label.text() == dlg.params_label.text()
    assert other.preset_combo.currentIndex() == -1  # not a preset any more
    assert ArchSpec.from_json(saved.read_text()).layers == dlg.spec().layers


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "not valid JSON"),
        ('{"layers": [{"type": "dense", "units": 8}, {"type": "conv", "channels": 4}]}', "conv"),
        ('{"layers": [], "num_classes": "ten"}', "ten"),
        (None, "Could not load"),
    ],
)
def test_a_broken_file_is_reported_in_the_dialog(
    make_dialog, qtbot, tmp_path, monkeypatch, content, says
):
    dlg = make_dialog()
    path = tmp_path / "broken.json"
    if content is not None:
        path.write_text(content)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    qtbot.mouseClick(dlg.load_button, Qt.MouseButton.LeftButton)  # must not raise
    assert "Could not load broken.json" in dlg.file_label.text()
    assert says in dlg.file_label.text()
    assert dlg.file_label.isVisible()
    assert dlg.params_label.text() == "109,386 parameters"  # the layers are untouched
    assert _ok(dlg).isEnabled()


def test_a_failed_save_is_reported_in_the_dialog(make_dialog, tmp_path):
    dlg = make_dialog()
    assert not dlg.save_spec(tmp_path / "no such folder" / "x.json")
    assert "Could not save x.json" in dlg.file_label.text()
    assert list(tmp_path.iterdir()) == []


def test_kernel_field_reads_and_types_as_a_square(make_dialog):
    dlg = make_dialog(PRESETS["lenet"])
    kernel = _cell(dlg, 0, COL_KERNEL)
    assert isinstance(kernel, QSpinBox) and kernel.text() == "5×5"
    kernel.setFocus()
    kernel.selectAll()
    QTest.keyClicks(kernel, "3")
    assert kernel.value() == 3
    assert dlg.spec().layers[0]["kernel"] == 3
    assert dlg.table.item(0, COL_OUTPUT).text() == "6×28×28"  # "same" padding follows the kernel


def test_focusing_a_field_selects_its_layer(make_dialog, qtbot):
    dlg = make_dialog()
    dlg.activateWindow()
    qtbot.waitUntil(dlg.isActiveWindow)
    _cell(dlg, 1, COL_SIZE).setFocus()
    assert dlg.table.selectionModel().selectedRows()[0].row() == 1
    _cell(dlg, 0, COL_ACTIVATION).setFocus()
    assert dlg.table.selectionModel().selectedRows()[0].row() == 0
