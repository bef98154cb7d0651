"""The weights and receptive-fields panels, offscreen, on the real sample models and MNIST.

What is drawn must be the model's own numbers: the heatmap is the layer's weight
matrix from ``view_model.state_dict()``, the strip its bias, each receptive-field tile
a unit's 784 weights as 28 x 28, and signed data always gets levels (-m, m).
"""

from __future__ import annotations

import importlib.resources
import json
import time

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, Qt
from torch import nn

from nnviz.core.dense import dense_layers, image_reading_layer
from nnviz.core.modelfile import load_model
from nnviz.core.snapshot import Snapshot
from nnviz.core.training import TrainConfig, Trainer
from nnviz.qt.panels.receptive_fields import NEEDS_DENSE, ReceptiveFieldsPanel
from nnviz.qt.panels.weights import ALL_LAYERS, WeightsPanel
from nnviz.state import Session

pytestmark = pytest.mark.usefixtures("row_major_images")


def sample(name: str) -> str:
    return str(importlib.resources.files("nnviz.sample_models") / f"{name}.nnviz")


def export(model: nn.Module, path) -> str:
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (torch.zeros(2, 1, 28, 28),), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Where to load each model from: two samples, an exported .pt2, a model with no dense layer."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    conv_only = nn.Sequential(nn.Conv2d(1, 10, 28), nn.Flatten())  # 10 class scores, no Linear
    return {
        "lenet": sample("lenet"),
        "mlp-3b1b": sample("mlp-3b1b"),
        "pt2": export(load_model(sample("mlp-3b1b")).module, root / "mlp-3b1b.pt2"),
        "conv-only": export(conv_only.eval(), root / "conv-only.pt2"),
    }


def session_for(source: str, data) -> Session:
    s = Session()
    s.set_model(load_model(source))
    s.set_data(data, "mnist")
    s.set_input(data.test.images[0] / 255.0, int(data.test.labels[0]), "test")
    return s


def show(qtbot, panel):
    qtbot.addWidget(panel)
    panel.resize(900, 520)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.refresh()
    return panel


@pytest.fixture
def open_panel(qtbot, models, data):
    """open_panel(PanelClass, model name) -> a shown, drawn panel on a fresh Session."""
    panels = []

    def make(cls, name):
        panels.append(show(qtbot, cls(session_for(models[name], data))))
        return panels[-1]

    yield make
    for p in panels:
        p.close_panel()


def state(panel) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in panel.session.view_model.state_dict().items()}


def publish_scaled(session: Session, scale: float) -> dict[str, np.ndarray]:
    """Publish a snapshot whose weights are the current ones times ``scale``, as a trainer would."""
    weights = {k: v.numpy() * np.float32(scale) for k, v in session.view_model.state_dict().items()}
    session.publish(Snapshot(1, 0, 1, weights, "running"), [])
    return weights


def draw_now(panel) -> None:
    """Redraw past the ~5 Hz throttle, as the frame timer would a moment later."""
    panel._drawn_at = -np.inf
    panel.mark_stale()
    assert panel.refresh()


def sym(a: np.ndarray, *more: np.ndarray) -> float:
    return max(float(np.abs(x).max()) for x in (a, *more))


# ----- the weights panel ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "layers"),
    [
        ("lenet", ["fc1", "output"]),
        ("mlp-3b1b", ["fc1", "fc2", "output"]),
        ("pt2", ["fc1", "fc2", "output"]),
    ],
)
def test_heatmap_and_bias_strip_are_the_layers_weights(open_panel, name, layers):
    panel = open_panel(WeightsPanel, name)
    assert [x.name for x in panel.layers] == layers
    assert not panel.refresh()  # one draw was enough
    sd = state(panel)
    for index, layer in enumerate(layers):
        panel.layer_choice.setCurrentIndex(index)
        assert panel.refresh() == (index > 0)  # choosing another layer redraws at once
        w, b = sd[f"{layer}.weight"], sd[f"{layer}.bias"]
        np.testing.assert_array_equal(panel.image.image, w)
        np.testing.assert_array_equal(panel.bias_image.image[:, 0], b)
        m = sym(w, b)
        assert panel.levels() == pytest.approx((-m, m))
        assert tuple(panel.image.levels) == pytest.approx((-m, m))  # the image, not just the bar
        assert tuple(panel.bias_image.levels) == pytest.approx((-m, m))
    assert panel.image.autoDownsample
    assert panel._stack.currentWidget() is panel.graphics


def test_all_layers_stacked_with_their_names(open_panel):
    panel = open_panel(WeightsPanel, "mlp-3b1b")
    panel.layer_choice.setCurrentText(ALL_LAYERS)
    panel.refresh()
    sd, image, row = state(panel), panel.image.image, 0
    assert image.shape == (16 + 2 + 16 + 2 + 10, 784)
    for layer in ("fc1", "fc2", "output"):
        w = sd[f"{layer}.weight"]
        np.testing.assert_array_equal(image[row : row + len(w), : w.shape[1]], w)
        assert np.isnan(image[row : row + len(w), w.shape[1] :]).all()  # transparent padding
        np.testing.assert_array_equal(
            panel.bias_image.image[row : row + len(w), 0], sd[f"{layer}.bias"]
        )
        row += len(w) + 2
    m = max(float(np.abs(v).max()) for v in sd.values())
    assert panel.levels() == pytest.approx((-m, m))
    ticks = panel.plot.getAxis("left")._tickLevels[0]
    assert [label for _, label in ticks] == ["fc1", "fc2", "output"]


def test_hover_names_layer_row_column_and_value(open_panel, qtbot):
    panel = open_panel(WeightsPanel, "mlp-3b1b")
    w, b = state(panel)["fc1.weight"], state(panel)["fc1.bias"]
    text = panel.text_at(417.5, 3.5)  # image coordinates: column 417, row 3
    assert text.startswith("fc1")
    assert "output unit (row) 3 " in text and "input (column) 417 " in text
    assert "pixel (row 14, col 25)" in text  # fc1 reads the image: 417 = 14 * 28 + 25
    assert f"weight {w[3, 417]:+.4g}" in text
    assert panel.bias_text_at(3.2) == f"fc1   output unit (row) 3   bias {b[3]:+.4g}"
    assert panel.text_at(784.5, 3.5) == "" and panel.text_at(10, 16.5) == ""
    panel.layer_choice.setCurrentIndex(1)
    panel.refresh()
    assert "pixel" not in panel.text_at(5.5, 2.5)  # fc2's inputs are units, not pixels
    # A real hover: the scene's mouse position goes through the item's own mapping.
    panel.layer_choice.setCurrentIndex(0)
    panel.refresh()

    def hovered():  # re-sent until the view has settled its geometry after the redraw
        panel.graphics.scene().sigMouseMoved.emit(panel.image.mapToScene(QPointF(417.5, 3.5)))
        return panel.readout.text() == text

    qtbot.waitUntil(hovered, timeout=3000)


def test_fixed_scale_keeps_levels_and_auto_follows_new_weights(open_panel):
    panel = open_panel(WeightsPanel, "mlp-3b1b")
    before = panel.levels()
    panel.fixed_scale.setChecked(True)
    new = publish_scaled(panel.session, 2.0)
    assert panel.stale
    draw_now(panel)
    np.testing.assert_array_equal(panel.image.image, new["fc1.weight"])  # new weights shown
    assert panel.levels() == before  # on the old scale
    panel.auto_scale.setChecked(True)  # back to auto: fitted at once
    panel.refresh()
    m = sym(new["fc1.weight"], new["fc1.bias"])
    assert panel.levels() == pytest.approx((-m, m)) and m > before[1] * 1.9
    publish_scaled(panel.session, 0.25)
    draw_now(panel)
    assert panel.levels() == pytest.approx((-m / 4, m / 4))


def test_dragging_the_colour_bar_fixes_the_scale(open_panel):
    panel = open_panel(WeightsPanel, "lenet")
    assert panel.auto_scale.isChecked()
    panel.colour_bar.setLevels((-0.1, 0.1))
    panel.colour_bar.sigLevelsChanged.emit(panel.colour_bar)  # what a drag of its handles sends
    assert panel.fixed_scale.isChecked()
    publish_scaled(panel.session, 3.0)
    draw_now(panel)
    assert panel.levels() == pytest.approx((-0.1, 0.1))


def test_zoom_survives_new_weights_until_reset(open_panel):
    panel = open_panel(WeightsPanel, "mlp-3b1b")
    full = panel.plot.vb.viewRange()
    panel.plot.vb.setRange(xRange=(300, 420), yRange=(2, 7), padding=0)
    zoomed = panel.plot.vb.viewRange()
    publish_scaled(panel.session, 1.5)
    draw_now(panel)
    assert panel.plot.vb.viewRange() == zoomed
    for row in (2.5, 6.5):  # the bias strip's rows stay beside the matrix's
        on_matrix = panel.image.mapToScene(QPointF(0, row)).y()
        assert panel.bias_image.mapToScene(QPointF(0, row)).y() == pytest.approx(on_matrix)
    panel.reset_view()
    np.testing.assert_allclose(panel.plot.vb.viewRange(), full)


def test_live_updates_are_throttled_to_about_five_a_second(open_panel, data, qtbot):
    panel = open_panel(WeightsPanel, "mlp-3b1b")
    trainer = Trainer(panel.session.train_model, data, TrainConfig(batch_size=50, epochs=1))
    trainer.run()
    panel.session.publish(trainer.latest_snapshot(), trainer.poll())
    panel.refresh()  # just after the first draw: too soon
    assert panel.stale
    trained = state(panel)["fc1.weight"]
    assert not np.array_equal(panel.image.image, trained)
    qtbot.wait(int(panel.min_interval_s * 1000) + 20)
    panel.refresh()
    assert not panel.stale
    np.testing.assert_array_equal(panel.image.image, trained)


def test_a_model_without_dense_layers_says_so(open_panel):
    panel = open_panel(WeightsPanel, "conv-only")
    assert panel._stack.currentWidget() is panel.message
    assert "Dense layers only: this model has none" in panel.message.text()
    assert not panel.controls.isVisible()  # no layer to choose, nothing to scale
    assert panel.layer_choice.count() == 0


def test_loading_another_model_shows_its_layers(open_panel, models):
    panel = open_panel(WeightsPanel, "lenet")
    panel.session.set_model(load_model(models["mlp-3b1b"]))
    panel.refresh()
    np.testing.assert_array_equal(panel.image.image, state(panel)["fc1.weight"])
    assert panel.image.image.shape == (16, 784)


def test_a_large_matrix_stays_cheap_and_whole(qtbot, data, tmp_path):
    """PyTorch's classic MNIST net: 64 x 12 x 12 = 9216 features into a dense layer of 128."""
    spec = {
        "name": "pytorch-example",
        "layers": [
            {"type": "conv", "channels": 32, "kernel": 3, "activation": "relu"},
            {"type": "conv", "channels": 64, "kernel": 3, "activation": "relu"},
            {"type": "pool", "kernel": 2},
            {"type": "dense", "units": 128, "activation": "relu"},
        ],
    }
    (tmp_path / "big.json").write_text(json.dumps(spec))
    panel = show(qtbot, WeightsPanel(session_for(str(tmp_path / "big.json"), data)))
    w = state(panel)["fc1.weight"]
    assert w.shape == (128, 9216)
    np.testing.assert_array_equal(panel.image.image, w)
    panel.grab()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        draw_now(panel)
        panel.grab()  # the (downsampled) render happens on paint
        times.append(time.perf_counter() - start)
    assert min(times) < 0.1
    assert panel.image._lastDownsample[0] > 1  # zoomed out: averaged columns
    panel.close_panel()


# ----- the receptive fields panel ------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp-3b1b", "pt2"])
def test_each_tile_is_a_units_weights_as_an_image(open_panel, name):
    panel = open_panel(ReceptiveFieldsPanel, name)
    w = state(panel)["fc1.weight"]
    assert panel.layer.name == "fc1" and panel.mosaic.image.shape == (4 * 30, 4 * 30)
    limits = np.abs(w).max(axis=1)
    for k in range(16):  # scaled per unit (the default): tile k is unit k over its max |weight|
        np.testing.assert_allclose(panel.tile(k), w[k].reshape(28, 28) / limits[k], rtol=1e-6)
    assert tuple(panel.mosaic.levels) == (-1.0, 1.0)
    panel.per_layer.setChecked(True)
    panel.refresh()
    for k in range(16):
        np.testing.assert_array_equal(panel.tile(k), w[k].reshape(28, 28))
        r, c = panel.tile_origin(k)
        np.testing.assert_array_equal(
            panel.mosaic.image[r : r + 28, c : c + 28], w[k].reshape(28, 28)
        )
    m = float(np.abs(w).max())
    assert tuple(panel.mosaic.levels) == pytest.approx((-m, m))
    assert (
        np.isnan(panel.mosaic.image[28:30]).all() and np.isnan(panel.mosaic.image[:, 28:30]).all()
    )


def test_selecting_a_unit_shows_it_large_and_tells_listeners(open_panel, qtbot):
    panel = open_panel(ReceptiveFieldsPanel, "mlp-3b1b")
    w, b = state(panel)["fc1.weight"], state(panel)["fc1.bias"]
    with qtbot.waitSignal(panel.unit_selected) as sig:
        panel.select_unit(7)
    assert sig.args == ["fc1", 7]
    np.testing.assert_array_equal(panel.unit_image.image, w[7].reshape(28, 28))
    m = float(np.abs(w[7]).max())
    assert panel.colour_bar.levels() == pytest.approx((-m, m))
    assert tuple(panel.unit_image.levels) == pytest.approx((-m, m))
    assert panel.unit_title.text == f"fc1 unit 7   bias {b[7]:+.3g}"
    r, c = panel.tile_origin(7)
    assert panel.highlight.rect().center() == QPointF(c + 14, r + 14)
    assert panel.unit_at(c + 3.2, r + 27.9) == 7 and panel.unit_at(c + 28.5, r) is None
    assert panel.text_at(c + 25.5, r + 14.5) == (
        f"fc1 unit 7   pixel (row 14, col 25)   weight {w[7, 14 * 28 + 25]:+.4g}"
    )


def test_a_real_click_on_a_tile_selects_its_unit(open_panel, qtbot):
    panel = open_panel(ReceptiveFieldsPanel, "mlp-3b1b")
    settled = []  # the view's place on screen, the same two looks in a row
    qtbot.waitUntil(
        lambda: settled.append(panel.mosaic.sceneBoundingRect()) or settled[-2:] == settled[-1:] * 2
    )
    r, c = panel.tile_origin(5)
    scene_pos = panel.mosaic.mapToScene(QPointF(c + 14, r + 14))
    at = panel.graphics.mapFromScene(scene_pos)
    with qtbot.waitSignal(panel.unit_selected, timeout=2000) as sig:
        qtbot.mouseClick(panel.graphics.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert sig.args == ["fc1", 5]
    np.testing.assert_array_equal(
        panel.unit_image.image, state(panel)["fc1.weight"][5].reshape(28, 28)
    )


def test_receptive_fields_follow_training_and_keep_the_selection(open_panel):
    panel = open_panel(ReceptiveFieldsPanel, "mlp-3b1b")
    panel.select_unit(3)
    panel.per_layer.setChecked(True)
    new = publish_scaled(panel.session, -1.0)
    draw_now(panel)
    np.testing.assert_array_equal(panel.tile(3), new["fc1.weight"][3].reshape(28, 28))
    np.testing.assert_array_equal(panel.unit_image.image, new["fc1.weight"][3].reshape(28, 28))
    assert panel.selected == 3


@pytest.mark.parametrize("name", ["lenet", "conv-only"])
def test_cnns_get_a_plain_message(open_panel, name):
    panel = open_panel(ReceptiveFieldsPanel, name)
    assert panel.layer is None
    assert panel._stack.currentWidget() is panel.message
    assert panel.message.text() == NEEDS_DENSE
    assert not panel.controls.isVisible()


def test_the_image_reading_layer_is_found_by_position_not_size(models):
    lenet, pt2 = load_model(models["lenet"]).module, load_model(models["pt2"]).module
    assert [x.name for x in dense_layers(lenet)] == ["fc1", "output"]
    assert image_reading_layer(lenet, (1, 28, 28)) is None
    assert image_reading_layer(pt2, (1, 28, 28)).name == "fc1"
    # 16 x 7 x 7 = 784 features after convolutions: the right size, but not pixels.
    cnn = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(784, 10)
    )
    assert dense_layers(cnn)[0].in_features == 784
    assert image_reading_layer(cnn, (1, 28, 28)) is None


# ----- how they look ---------------------------------------------------------------------------
def _colours(panel) -> np.ndarray:
    img = panel.grab().toImage().convertToFormat(panel.grab().toImage().Format.Format_RGB888)
    ptr = img.constBits()
    arr = np.frombuffer(ptr, np.uint8, img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())
    return arr[:, : img.width() * 3].reshape(img.height(), img.width(), 3).astype(int)


@pytest.mark.parametrize("name", ["lenet", "mlp-3b1b", "pt2"])
def test_both_panels_render(open_panel, name, tmp_path):
    weights = open_panel(WeightsPanel, name)
    fields = open_panel(ReceptiveFieldsPanel, name)
    for panel in (weights, fields):
        panel.grab().save(str(tmp_path / f"{type(panel).__name__}-{name}.png"))
    assert weights.controls.isVisible() and fields.controls.isVisible() == (name != "lenet")
    # Both in the default signed colours: blue for negative, orange for positive.
    for panel, least in ((weights, 100), (fields, 500)):
        if panel is fields and name == "lenet":
            continue  # a CNN: the receptive fields panel shows a message
        rgb = _colours(panel)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        assert ((b - r > 60) & (b - g > 40)).sum() > least  # negative weights: blue
        assert ((r - b > 60) & (r - g > 40)).sum() > least  # positive weights: orange
