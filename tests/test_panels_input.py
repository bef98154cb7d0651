"""The input, activations and summary panels, offscreen, on real models and real MNIST digits."""

from __future__ import annotations

import importlib.resources
import json

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPalette
from PySide6.QtWidgets import QApplication

from nnviz.core.data import DataSplits
from nnviz.core.inspect import summarize
from nnviz.core.modelfile import load_model
from nnviz.core.training import TrainConfig, Trainer
from nnviz.qt.panels.activations import CELL_PX, ActivationsPanel, layers_to_show, unit_values
from nnviz.qt.panels.input import InputPanel
from nnviz.qt.panels.prediction_bars import HIGHLIGHT
from nnviz.qt.panels.summary import SummaryPanel
from nnviz.state import Session

SAMPLES = importlib.resources.files("nnviz.sample_models")

pytestmark = pytest.mark.usefixtures("row_major_images")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The trained lenet sample, exported with a dynamic batch and saved as a .pt2."""
    module = load_model(str(SAMPLES / "lenet.nnviz")).module
    batch = torch.export.Dim("batch", min=1, max=1024)
    ep = torch.export.export(module, (torch.zeros(2, 1, 28, 28),), dynamic_shapes=({0: batch},))
    path = tmp_path_factory.mktemp("export") / "lenet.pt2"
    torch.export.save(ep, path)
    return str(path)


def _source(name, exported):
    if name == "export":
        return exported
    return str(SAMPLES / f"{name}.nnviz")


def _session(source, data, with_input=True):
    s = Session()
    s.set_model(load_model(source))
    s.set_data(data, "mnist")
    if with_input:
        s.set_input(data.test.images[0] / 255.0, int(data.test.labels[0]), "test")
    return s


def _show(qtbot, panel, size=(420, 640)):
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    panel.refresh()
    return panel


# ----- the input panel -------------------------------------------------------------------


def test_first_test_digit_becomes_the_input_when_none_is_set(qtbot, data):
    s = _session(str(SAMPLES / "lenet.nnviz"), data, with_input=False)
    panel = _show(qtbot, InputPanel(s), (300, 480))
    assert s.current_input is not None
    np.testing.assert_allclose(s.current_input.image, data.test.images[0] / 255.0, rtol=1e-6)
    assert s.current_input.label == data.test.labels[0]
    assert s.current_input.description == "MNIST test #0"
    assert panel.split.currentText() == "test"
    assert panel.true_label.text() == f"True label: {data.test.labels[0]}"
    # The picture: each of the 28x28 pixels a square of its grey on black.
    picture = panel.digit.grab().toImage()
    side = picture.width() / 28
    assert picture.height() == picture.width() >= 28 * 5
    shown = np.array(
        [
            [
                picture.pixelColor(int((c + 0.5) * side), int((r + 0.5) * side)).red()
                for c in range(28)
            ]
            for r in range(28)
        ]
    )
    np.testing.assert_array_equal(shown, data.test.images[0])
    panel.close_panel()


def test_input_set_before_the_model_loads_is_kept_and_model_load_fills_a_missing_one(qtbot, data):
    s = Session()
    panel = _show(qtbot, InputPanel(s), (300, 480))
    assert s.current_input is None and "No input" in panel.description.text()
    s.set_model(load_model("mlp-3b1b"))
    assert s.current_input is None  # no data yet: nothing to pick
    s.set_data(data, "mnist")
    assert s.current_input.description == "MNIST test #0"
    drawing = np.zeros((28, 28), np.float32)
    s.set_input(drawing, None, "your drawing")
    s.set_model(load_model("lenet"))
    assert s.current_input.description == "your drawing"  # someone else's input stays
    panel.refresh()
    assert panel.true_label.text() == "True label: unknown"
    assert panel.description.text() == "your drawing"
    panel.close_panel()


def test_arrows_random_and_keys_change_the_current_input(qtbot, data):
    s = _session(str(SAMPLES / "lenet.nnviz"), data, with_input=False)
    panel = _show(qtbot, InputPanel(s), (300, 480))
    qtbot.mouseClick(panel.next, Qt.MouseButton.LeftButton)
    assert s.current_input.description == "MNIST test #1"
    np.testing.assert_allclose(s.current_input.image, data.test.images[1] / 255.0, rtol=1e-6)
    panel.refresh()
    assert panel.true_label.text() == f"True label: {data.test.labels[1]}"
    qtbot.mouseClick(panel.previous, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.previous, Qt.MouseButton.LeftButton)  # wraps to the last
    assert s.current_input.description == f"MNIST test #{len(data.test) - 1}"
    panel.setFocus()
    qtbot.keyClick(panel, Qt.Key.Key_Right)
    assert panel.index.value() == 0
    qtbot.keyClick(panel.random, Qt.Key.Key_Right)  # the focus on a button: still steps
    assert panel.index.value() == 1
    qtbot.keyClick(panel, Qt.Key.Key_Left)
    assert panel.index.value() == 0
    panel.rng = np.random.default_rng(1)
    seen = set()
    for _ in range(5):
        before = s.current_input
        qtbot.mouseClick(panel.random, Qt.MouseButton.LeftButton)
        assert s.current_input is not before and panel.index.value() != 0
        i = panel.index.value()
        seen.add(i)
        assert s.current_input.label == data.test.labels[i]
        panel.refresh()
        assert panel.true_label.text() == f"True label: {data.test.labels[i]}"
        assert panel.description.text() == f"MNIST test #{i}"
        panel.index.setValue(0)
    assert len(seen) > 1
    panel.close_panel()


def test_prediction_text_is_the_argmax_of_the_probabilities(qtbot, data):
    s = _session(str(SAMPLES / "lenet.nnviz"), data, with_input=False)
    panel = _show(qtbot, InputPanel(s), (300, 480))
    wrong = 0
    for i in range(40):
        panel.pick(i)
        panel.refresh()
        probs = s.probabilities()
        top = int(np.argmax(probs))
        text = panel.prediction.text()
        assert f"<b>{top}</b> ({probs[top]:.1%})" in text
        right = top == data.test.labels[i]
        assert ("right" in text) == right and ("wrong" in text) == (not right)
        wrong += not right
    assert wrong <= 2  # the trained lenet gets ~99% of the test set right
    panel.close_panel()


def test_a_new_prediction_repaints_its_line_and_relays_out_nothing(qtbot, data):
    from PySide6.QtCore import QObject

    from nnviz.qt.panels.input import RIGHT_COLOUR

    s = _session(str(SAMPLES / "lenet.nnviz"), data, with_input=False)
    panel = _show(qtbot, InputPanel(s), (300, 480))
    panel.pick(0)
    panel.refresh()
    runs = panel.prediction.runs()
    assert (f"{data.test.labels[0]}", True, None) in runs  # the class, in bold
    assert ("✓ right", False, RIGHT_COLOUR) in runs  # the verdict, in green

    class Requests(QObject):
        seen = 0

        def eventFilter(self, watched, event):  # noqa: N802 (Qt)
            # Asked of the panel itself: its layout, then the dock's and the window's.
            self.seen += event.type() == QEvent.Type.LayoutRequest and watched is panel
            return False

    panel.pick(1)  # the first change of a spin box's width may lay it out once
    panel.refresh()
    qtbot.wait(10)
    requests = Requests()
    QApplication.instance().installEventFilter(requests)
    try:
        for i in range(2, 6):  # new digits, new descriptions and predictions
            panel.pick(i)
            panel.refresh()
            qtbot.wait(10)
    finally:
        QApplication.instance().removeEventFilter(requests)
    assert requests.seen == 0
    assert panel.description.text() == "MNIST test #5"
    panel.close_panel()


def test_the_prediction_follows_training_live(qtbot, data):
    s = _session("mlp-3b1b", data, with_input=False)  # untrained: a near-uniform guess
    panel = _show(qtbot, InputPanel(s), (300, 480))
    before = panel.predicted()
    trainer = Trainer(s.train_model, data, TrainConfig(batch_size=32, epochs=3, lr=0.05))
    trainer.run()
    s.publish(trainer.latest_snapshot(), [])
    assert panel.stale
    panel.refresh()
    after = panel.predicted()
    assert after != before
    assert after == (int(np.argmax(s.probabilities())), float(np.max(s.probabilities())))
    assert f"({after[1]:.1%})" in panel.prediction.text()
    panel.close_panel()


def test_data_without_a_test_split_picks_from_validation(qtbot, data):
    no_test = DataSplits(data.train, data.val, None, data.source, data.classes)
    s = Session()
    s.set_model(load_model("lenet"))
    s.set_data(no_test, "mnist")
    panel = _show(qtbot, InputPanel(s), (300, 480))
    assert [panel.split.itemText(i) for i in range(panel.split.count())] == [
        "validation",
        "train",
    ]
    assert s.current_input.description == "MNIST validation #0"
    np.testing.assert_allclose(s.current_input.image, data.val.images[0] / 255.0, rtol=1e-6)
    panel.split.setCurrentIndex(1)
    assert s.current_input.description == "MNIST train #0"
    assert panel.count.text() == f"of {len(data.train):,}"
    panel.close_panel()


# ----- the activations panel -------------------------------------------------------------


def test_lenet_shows_activations_channel_means_and_dense_units(qtbot, data):
    s = _session(str(SAMPLES / "lenet.nnviz"), data)
    panel = _show(qtbot, ActivationsPanel(s))
    acts = s.activations()
    shown = panel.shown_values()
    assert list(shown) == ["relu1", "relu2", "relu3"]
    for name in ("relu1", "relu2"):  # conv: each channel's mean over its map
        np.testing.assert_allclose(shown[name], acts[name][0].mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_array_equal(shown["relu3"], acts["relu3"][0])
    # The image shows the same numbers, one CELL_PX block per unit, 16 to a row, each in
    # the colour its value has on the levels, the gaps transparent.
    relu3 = next(strip for strip in panel.strips if strip.layer.name == "relu3")
    assert (relu3.rows, relu3.cols) == (4, 16)
    assert relu3.levels == (0.0, float(acts["relu3"].max()))  # ReLU: zero is unlit
    colours = relu3.colours
    assert colours.dtype == np.uint8 and colours.shape == (4 * CELL_PX, 16 * CELL_PX, 4)
    cells = colours[::CELL_PX, ::CELL_PX].reshape(-1, 4)
    index = np.clip(acts["relu3"][0] * (256.0 / relu3.levels[1]), 0, 255).astype(int)
    np.testing.assert_array_equal(cells, panel._positive_lut[index])
    brightest, dead = int(np.argmax(acts["relu3"][0])), int(np.argmin(acts["relu3"][0]))
    np.testing.assert_array_equal(cells[brightest], panel._positive_lut[255])
    assert acts["relu3"][0][dead] == 0.0
    np.testing.assert_array_equal(cells[dead], panel._positive_lut[0])
    assert (colours[CELL_PX - 1, :, 3] == 0).all()
    # And painted: the middle of each of those cells on screen has its colour.
    screen = panel.cells.grab().toImage()
    for unit in (brightest, dead):
        row, col = divmod(unit, 16)
        centre = panel.cells.to_widget(
            QPointF(relu3.rect.left() + col + 0.4, relu3.rect.top() + row + 0.4)
        )
        painted = screen.pixelColor(centre.toPoint())
        assert (painted.red(), painted.green(), painted.blue()) == tuple(cells[unit][:3])
    panel.close_panel()


def test_probability_bars_sum_to_one_and_the_top_class_is_highlighted(qtbot, data):
    s = _session(str(SAMPLES / "lenet.nnviz"), data)
    panel = _show(qtbot, ActivationsPanel(s))
    probs = s.probabilities()
    shown = panel.bars.probabilities
    np.testing.assert_allclose(shown, probs, rtol=1e-6)
    assert shown.sum() == pytest.approx(1.0, abs=1e-5)
    top = int(np.argmax(probs))
    assert panel.top_class() == top == panel.bars.top_class()
    labels = panel.bars.labels()
    assert labels[top].startswith(f"{probs[top]:.1%}")
    label = s.current_input.label
    assert panel.bars.true_class == label and labels[label].endswith(", the true label")
    assert panel.bars.classes == [str(i) for i in range(10)]
    # Painted: the top class's row holds the highlight colour, no other row does.
    image = panel.bars.grab().toImage()
    row = (panel.bars.height() - 12) / 10
    lit = [
        any(
            image.pixelColor(x, int(6 + (i + 0.5) * row)) == HIGHLIGHT for x in range(image.width())
        )
        for i in range(10)
    ]
    assert lit == [i == top for i in range(10)]
    panel.close_panel()


def test_changing_the_input_changes_the_values_shown(qtbot, data):
    s = _session(str(SAMPLES / "mlp-3b1b.nnviz"), data)
    panel = _show(qtbot, ActivationsPanel(s))
    first = {k: v.copy() for k, v in panel.shown_values().items()}
    assert list(first) == ["sigmoid1", "sigmoid2"]
    strip = panel.strips[0]
    assert strip.levels == (0.0, 1.0)  # a sigmoid's fixed range
    s.set_input(data.test.images[1] / 255.0, int(data.test.labels[1]), "test #1")
    assert panel.refresh()
    now = panel.shown_values()
    acts = s.activations()
    for name in first:
        assert not np.allclose(now[name], first[name])
        np.testing.assert_array_equal(now[name], acts[name][0])
    np.testing.assert_allclose(panel.bars.probabilities, s.probabilities(), rtol=1e-6)
    assert panel.top_class() == int(np.argmax(s.probabilities())) == data.test.labels[1]
    panel.close_panel()


def test_hover_names_the_layer_unit_and_value_and_a_click_emits_the_unit(qtbot, data):
    s = _session(str(SAMPLES / "lenet.nnviz"), data)
    panel = _show(qtbot, ActivationsPanel(s))
    strip = next(strip for strip in panel.strips if strip.layer.name == "relu3")
    centre = QPointF(strip.rect.left() + 5.5, strip.rect.top() + 2.5)  # row 2, column 5
    assert panel.cell_at(centre) == ("relu3", 37)
    text = panel.hover_text(centre)
    assert text == f"relu3 (ReLU) unit 37: {s.activations()['relu3'][0, 37]:.4g}"
    conv = panel.strips[0]
    corner = QPointF(conv.rect.left() + 2.5, conv.rect.top() + 0.5)
    assert "relu1 (ReLU) channel 2:" in panel.describe(*panel.cell_at(corner))
    row = (panel.bars.height() - 12) / 10
    bar_point = QPointF(40, 6 + 3.5 * row)
    assert panel.bar_text(bar_point) == f"class 3: probability {s.probabilities()[3]:.2%}"
    move = QMouseEvent(
        QEvent.Type.MouseMove,
        bar_point,
        panel.bars.mapToGlobal(bar_point),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(panel.bars, move)  # a hover: QTest moves only with a button down
    assert panel.readout.text().startswith("class 3: probability")
    where = panel.cells.to_widget(centre).toPoint()
    hover = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(where),
        panel.cells.mapToGlobal(QPointF(where)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(panel.cells, hover)
    assert panel.readout.text() == text
    with qtbot.waitSignal(panel.unit_clicked) as clicked:
        qtbot.mouseClick(panel.cells, Qt.MouseButton.LeftButton, pos=where)
    assert clicked.args == ["relu3", 37]
    panel.close_panel()


def test_a_custom_model_without_activation_functions_shows_signed_outputs(qtbot, data, tmp_path):
    spec = {
        "name": "linear",
        "layers": [
            {"type": "conv", "channels": 4, "kernel": 3, "activation": "none"},
            {"type": "pool"},
            {"type": "dense", "units": 20, "activation": "none"},
            {"type": "dropout", "p": 0.5},
        ],
    }
    path = tmp_path / "linear.json"
    path.write_text(json.dumps(spec))
    s = Session()
    s.set_model(load_model(str(path)))
    s.set_data(data, "mnist")
    panel = _show(qtbot, InputPanel(s), (300, 480))  # sets the first test digit
    activations = _show(qtbot, ActivationsPanel(s))
    assert [strip.layer.name for strip in activations.strips] == ["conv1", "fc1"]
    acts = s.activations()
    shown = activations.shown_values()
    np.testing.assert_allclose(shown["conv1"], acts["conv1"][0].mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_array_equal(shown["fc1"], acts["fc1"][0])
    for strip in activations.strips:
        values = shown[strip.layer.name]
        m = float(np.abs(values).max())
        if values.min() < 0:
            assert strip.levels == (-m, m)  # signed: symmetric about zero, diverging colours
            assert strip.lut is activations._signed_lut
    assert shown["fc1"].min() < 0 < shown["fc1"].max()
    panel.close_panel()
    activations.close_panel()


def test_a_model_with_no_hidden_layers_says_so_and_shows_its_output(qtbot, data, tmp_path):
    path = tmp_path / "softmax-regression.json"
    path.write_text(json.dumps({"name": "softmax regression", "layers": []}))
    s = _session(str(path), data)
    panel = _show(qtbot, ActivationsPanel(s))
    assert panel.strips == []
    assert "No hidden layers" in panel.cells.message
    np.testing.assert_allclose(panel.bars.probabilities, s.probabilities(), rtol=1e-6)
    panel.close_panel()


def test_dark_palette_changes_background_and_unlit_cells(qtbot, data):
    s = _session(str(SAMPLES / "lenet.nnviz"), data)
    panel = _show(qtbot, ActivationsPanel(s))
    light_off = panel._positive_lut[0, :3].copy()  # RGB, without the alpha
    dark = QPalette(panel.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor(30, 30, 34))
    dark.setColor(QPalette.ColorRole.WindowText, QColor(225, 225, 228))
    panel.setPalette(dark)
    assert panel.refresh()  # a new theme is taken at the next redraw
    assert panel.cells.grab().toImage().pixelColor(1, 1) == QColor(30, 30, 34)
    off = panel._positive_lut[0, :3]
    assert off.mean() < 80 < light_off.mean()  # an unlit cell stays dark on dark
    assert panel.strips[0].lut is panel._positive_lut
    assert panel.refresh()
    assert panel.bars.text_colour == QColor(225, 225, 228)
    assert panel.bars.grab().toImage().pixelColor(1, 1) == QColor(30, 30, 34)
    panel.close_panel()


def test_layer_choice_skips_repeats_and_shows_activations(data):
    cnn = summarize(load_model("cnn").module)
    assert [layer.name for layer in layers_to_show(cnn.layers)] == [f"relu{i}" for i in range(1, 6)]
    out = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    np.testing.assert_allclose(unit_values(out), [5.5, 17.5])


def test_training_updates_the_activations_live(qtbot, data):
    s = _session("mlp-3b1b", data)
    panel = _show(qtbot, ActivationsPanel(s))
    before = panel.shown_values()["sigmoid1"].copy()
    items = [strip.image for strip in panel.strips]
    painted = panel.cells.grab().toImage()
    trainer = Trainer(s.train_model, data, TrainConfig(batch_size=32, epochs=1))
    trainer.run()
    s.publish(trainer.latest_snapshot(), [])
    assert panel.refresh()
    after = panel.shown_values()["sigmoid1"]
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(after, s.activations()["sigmoid1"][0])
    assert [strip.image for strip in panel.strips] == items  # reused, not rebuilt
    assert panel.cells.grab().toImage() != painted  # and the new values are on screen
    panel.close_panel()


def test_empty_states_say_what_to_do(qtbot):
    s = Session()
    panel = _show(qtbot, ActivationsPanel(s))
    assert "Load a model" in panel.empty_label.text() and panel.empty_label.isVisible()
    s.set_model(load_model("lenet"))
    panel.refresh()
    assert "Pick an input" in panel.empty_label.text()
    panel.close_panel()


# ----- the summary panel -----------------------------------------------------------------


def test_summary_table_matches_summarize_with_totals(qtbot, data):
    s = _session(str(SAMPLES / "mlp-3b1b.nnviz"), data)
    panel = _show(qtbot, SummaryPanel(s))
    expected = summarize(s.loaded.program or s.loaded.module, s.loaded.input_shape)
    rows = panel.rows()
    assert rows[:-1] == [
        (layer.name, layer.type, str(layer.output_shape), f"{layer.params:,}")
        for layer in expected.layers
    ]
    assert rows[-1] == ("Total", "", "", "13,002")
    assert expected.total_params == 13_002
    assert sum(layer.params for layer in expected.layers) == 13_002
    built = panel.table.item(0, 0)
    trainer = Trainer(s.train_model, data, TrainConfig(batch_size=64, epochs=1))
    s.publish(trainer.latest_snapshot(), [])
    panel.refresh(force=True)
    assert panel.table.item(0, 0) is built  # new weights, same table
    s.set_model(load_model("lenet"))
    panel.refresh()
    assert panel.rows()[-1] == ("Total", "", "", "28,886")
    panel.close_panel()


# ----- every panel, every kind of model ---------------------------------------------------


@pytest.mark.parametrize("model", ["lenet", "mlp-3b1b", "export"])
@pytest.mark.parametrize("panel_type", [InputPanel, ActivationsPanel, SummaryPanel])
def test_each_panel_renders_each_model(qtbot, data, exported, tmp_path, model, panel_type):
    s = _session(_source(model, exported), data)
    panel = _show(qtbot, panel_type(s))
    png = tmp_path / f"{panel_type.__name__}-{model}.png"
    assert panel.grab().save(str(png))
    image = panel.grab().toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, 600, 7)}
    assert len(colours) > 5  # something was drawn, not a blank panel
    if panel_type is ActivationsPanel:
        names = [strip.layer.name for strip in panel.strips]
        assert names == (
            ["sigmoid1", "sigmoid2"] if model == "mlp-3b1b" else ["relu1", "relu2", "relu3"]
        )
        assert panel.top_class() == int(np.argmax(s.probabilities()))
    if panel_type is SummaryPanel:
        assert panel.table.rowCount() == len(s.activations()) + 1
    panel.close_panel()
