"""The network diagram, offscreen, on the trained sample MLP and real MNIST digits."""

from __future__ import annotations

import importlib.resources
import json
import time

import numpy as np
import pyqtgraph as pg
import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QPalette

from nnviz.core.modelfile import load_model
from nnviz.core.snapshot import Snapshot, frozen_copy
from nnviz.qt.panels.diagram import CNN_MESSAGE, EDGE_REBUILD_S, NetworkDiagramPanel
from nnviz.qt.panels.diagram_layout import MAX_SHOWN
from nnviz.state import Session

SAMPLE = importlib.resources.files("nnviz.sample_models") / "mlp-3b1b.nnviz"
DENSE = {"fc1": "sigmoid1", "fc2": "sigmoid2"}  # dense layer -> the activation that lights it
PAIRS = [("input", "fc1"), ("fc1", "fc2"), ("fc2", "output")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The sample MLP exported to .pt2 with a dynamic batch dimension."""
    model = load_model(str(SAMPLE)).module
    batch = torch.export.Dim("batch", min=1, max=1024)
    ep = torch.export.export(model, (torch.zeros(2, 1, 28, 28),), dynamic_shapes=({0: batch},))
    path = tmp_path_factory.mktemp("pt2") / "mlp-3b1b.pt2"
    torch.export.save(ep, path)
    return path


@pytest.fixture
def make_panel(qtbot, data):
    pg.setConfigOptions(imageAxisOrder="row-major")
    panels = []

    def make(source=SAMPLE, index=0, size=(700, 560)):
        s = Session()
        s.set_model(load_model(str(source)))
        s.set_data(data, "mnist")
        s.set_input(data.test.images[index] / 255, int(data.test.labels[index]), "test")
        panel = NetworkDiagramPanel(s)
        qtbot.addWidget(panel)
        panel.resize(*size)
        panel.show()
        qtbot.waitExposed(panel)
        assert panel.refresh()
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.close_panel()


def _weights(panel, layer):
    return panel.session.view_model.state_dict()[f"{layer}.weight"].numpy()


def _curve_points(items):
    return sum(len(item.lines()) for item in items)


def _check_top_k(panel, k):
    edges = panel.drawn_edges()
    assert list(edges) == PAIRS
    for src_layer, dst_layer in PAIRS:
        w = np.abs(_weights(panel, dst_layer))
        pairs = edges[(src_layer, dst_layer)]
        assert len(pairs) == w.shape[0] * k
        # The edges sit in few curve items, two points per edge.
        assert len(panel.edge_items[(src_layer, dst_layer)]) == 6
        assert _curve_points(panel.edge_items[(src_layer, dst_layer)]) == 2 * len(pairs)
        for target in range(w.shape[0]):
            sources = pairs[pairs[:, 1] == target, 0]
            assert len(set(sources.tolist())) == k
            rest = np.delete(w[target], sources)
            assert w[target, sources].min() >= rest.max()  # exactly the k largest |w|


def test_draws_the_k_strongest_incoming_edges_of_every_neuron(make_panel):
    panel = make_panel()
    assert panel.is_dense() and panel.top_k == 3
    _check_top_k(panel, 3)


def test_changing_k_changes_the_edges_at_once(make_panel):
    panel = make_panel()
    panel.top_k = 7
    assert panel.top_k_box.value() == 7
    assert panel.refresh()  # not held back by the weights' throttle: the user asked
    _check_top_k(panel, 7)
    assert sum(len(e) for e in panel.drawn_edges().values()) == 7 * (16 + 16 + 10)
    panel.top_k_box.setValue(1)
    panel.refresh()
    _check_top_k(panel, 1)


def test_brightness_is_the_activation_of_each_neuron(make_panel):
    panel = make_panel()
    acts = panel.session.activations()
    shown = panel.values_shown()
    for layer, act in DENSE.items():
        np.testing.assert_array_equal(shown[layer], acts[act][0])
    np.testing.assert_allclose(shown["output"], panel.session.probabilities())
    # The fills drawn: the text colour mixed into the background by the value.
    pal = panel.palette()
    bg = np.array(pal.color(QPalette.ColorRole.Base).getRgb()[:3], float)
    fg = np.array(pal.color(QPalette.ColorRole.WindowText).getRgb()[:3], float)
    values = np.concatenate([shown["fc1"], shown["fc2"], shown["output"]])
    drawn = np.array([b.color().getRgb()[:3] for b in panel.neurons.data["brush"]], float)
    np.testing.assert_allclose(drawn, bg + values[:, None] * (fg - bg), atol=1.5)


def test_the_most_probable_class_is_ringed_and_labelled(make_panel, data):
    panel = make_panel(index=0)
    probs = panel.session.probabilities()
    top = int(np.argmax(probs))
    assert top == int(data.test.labels[0])  # the trained sample reads this 7
    assert panel.top_class() == top
    ring = panel.top_ring.getData()
    expected = panel.neuron_position("output", top)
    assert (ring[0][0], ring[1][0]) == (expected.x(), expected.y())
    label = panel.class_labels[top]
    assert label.toPlainText() == f"{top}  {probs[top]:.0%}"
    assert panel.class_labels[(top + 1) % 10].toPlainText() == str((top + 1) % 10)


def test_hover_text_names_layer_index_and_value(make_panel):
    panel = make_panel()
    acts = panel.session.activations()
    text = panel.hover_text("fc2", 5)
    assert text == f"fc2 neuron 5: sigmoid2 = {acts['sigmoid2'][0, 5]:.3f}"
    p = panel.session.probabilities()
    assert panel.hover_text("output", 7) == f"output neuron 7, class 7: probability {p[7]:.1%}"
    image = panel.session.current_input.image
    assert panel.hover_text("input", 28 * 14 + 3).endswith(
        f"(row 14, column 3): {image[14, 3]:.3f}"
    )


def _widget_point(panel, layer, index):
    scene = panel.view.mapViewToScene(panel.neuron_position(layer, index))
    where = panel.graphics.mapFromScene(scene)
    return QPoint(where.x(), where.y())


def test_hovering_a_neuron_highlights_its_edges_and_a_click_selects_it(make_panel, qtbot):
    panel = make_panel()
    point = _widget_point(panel, "fc2", 5)
    qtbot.mouseMove(panel.graphics.viewport(), point)
    qtbot.waitUntil(lambda: panel.readout.text().startswith("fc2 neuron 5"), timeout=2000)
    assert panel.readout.text() == panel.hover_text("fc2", 5)
    assert _curve_points(panel.highlight) == 2 * 3  # its 3 incoming edges on top
    assert all(item.opacity() < 0.5 for item in panel.edge_items[("fc1", "fc2")])
    with qtbot.waitSignal(panel.neuron_selected, timeout=2000) as signal:
        qtbot.mouseClick(panel.graphics.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert signal.args == ["fc2", 5]
    panel.clear_highlight()
    assert _curve_points(panel.highlight) == 0 and panel.readout.text() == ""
    assert all(item.opacity() == 1.0 for item in panel.edge_items[("fc1", "fc2")])


def test_a_new_digit_changes_brightness_but_not_edges(make_panel, data):
    panel = make_panel(index=0)
    edges = panel.drawn_edges()
    before = panel.values_shown()
    curves = [item.lines() for item in panel.edge_items[("input", "fc1")]]
    panel.session.set_input(data.test.images[1] / 255, int(data.test.labels[1]), "test #1")
    assert panel.refresh()
    after = panel.values_shown()
    assert not np.array_equal(before["fc1"], after["fc1"])
    np.testing.assert_array_equal(after["fc1"], panel.session.activations()["sigmoid1"][0])
    assert panel.top_class() == int(data.test.labels[1])
    for pair in PAIRS:
        np.testing.assert_array_equal(panel.drawn_edges()[pair], edges[pair])
    for item, x in zip(panel.edge_items[("input", "fc1")], curves, strict=True):
        np.testing.assert_array_equal(item.lines(), x)


def test_new_weights_redraw_the_edges_at_most_five_times_a_second(make_panel, qtbot):
    panel = make_panel()
    state = panel.session.view_model.state_dict()
    flipped = {k: frozen_copy(-v if k == "fc2.weight" else v) for k, v in state.items()}
    before = panel.drawn_edges()[("fc1", "fc2")]
    snapshot = Snapshot(step=1, epoch=0, optimizer_step=1, weights=flipped, status="running")
    panel.session.publish(snapshot, [])
    assert panel.refresh()
    # Brightness follows at once; the edges wait out EDGE_REBUILD_S since the last draw.
    np.testing.assert_array_equal(
        panel.values_shown()["fc2"], panel.session.activations()["sigmoid2"][0]
    )
    assert panel.stale
    qtbot.wait(int(EDGE_REBUILD_S * 1000) + 30)
    assert panel.refresh()
    # Same |w|, so the same edges, with the colours swapped.
    np.testing.assert_array_equal(panel.drawn_edges()[("fc1", "fc2")], before)
    positive, negative = panel.edge_items[("fc1", "fc2")][:3], panel.edge_items[("fc1", "fc2")][3:]
    w = _weights(panel, "fc2")
    src, dst = before[:, 0], before[:, 1]
    assert _curve_points(positive) == 2 * int((w[dst, src] >= 0).sum())
    assert _curve_points(negative) == 2 * int((w[dst, src] < 0).sum())
    assert not panel.stale and not panel.refresh()


def test_a_cnn_gets_a_plain_message(make_panel):
    panel = make_panel("lenet")
    assert not panel.is_dense()
    assert panel.message.isVisible() and panel.message.text() == CNN_MESSAGE
    assert not panel.graphics.isVisible() and not panel.top_k_box.isVisible()
    assert panel.drawn_edges() == {}
    panel.grab().save("/tmp/diagram-lenet.png")


def test_without_a_digit_the_neurons_stay_dark(qtbot):
    s = Session()
    s.set_model(load_model(str(SAMPLE)))
    panel = NetworkDiagramPanel(s)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.refresh()
    assert all(not v.any() for v in panel.values_shown().values())
    assert panel.top_class() is None and len(panel.drawn_edges()) == 3
    panel.close_panel()


def test_no_model_says_so(qtbot):
    panel = NetworkDiagramPanel(Session())
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh()
    assert "Load a model" in panel.message.text() and panel.message.isVisible()
    panel.close_panel()


def test_an_exported_pt2_model_draws_the_same_diagram(make_panel, exported):
    panel = make_panel(exported, size=(420, 700))
    assert panel.session.loaded.kind == "export"
    reference = make_panel()
    for pair in PAIRS:
        np.testing.assert_array_equal(panel.drawn_edges()[pair], reference.drawn_edges()[pair])
    for layer, values in reference.values_shown().items():
        np.testing.assert_allclose(panel.values_shown()[layer], values, rtol=1e-5, atol=1e-7)
    _check_top_k(panel, 3)
    # In a narrow dock the class labels still fit (the view leaves them room in pixels).
    top = panel.class_labels[panel.top_class()]  # the longest: "7  100%"
    right = panel.view.mapViewToScene(top.pos()).x() + top.textItem.boundingRect().width()
    assert right <= panel.graphics.viewport().width()
    panel.grab().save("/tmp/diagram-export.png")


def test_a_model_switch_rebuilds_the_diagram(make_panel):
    panel = make_panel()
    panel.session.set_model(load_model("lenet"))
    panel.refresh()
    assert not panel.is_dense() and panel.edge_items == {} and panel.class_labels == []
    panel.session.set_model(load_model(str(SAMPLE)))
    assert panel.refresh()
    _check_top_k(panel, 3)
    assert len(panel.view.addedItems) == len({id(i) for i in panel.view.addedItems})


def test_a_wide_layer_shows_its_first_neurons_and_how_many_more(make_panel, tmp_path):
    spec = {
        "name": "wide",
        "layers": [{"type": "dense", "units": 200}, {"type": "dense", "units": 32}],
    }
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(spec))
    panel = make_panel(path)
    fc1 = panel.diagram.column("fc1")
    assert fc1.units == 200 and len(fc1.y) == MAX_SHOWN
    assert f"+ {200 - MAX_SHOWN} more" in [c.toPlainText() for c in panel.captions]
    edges = panel.drawn_edges()
    assert len(edges[("input", "fc1")]) == MAX_SHOWN * 3
    assert edges[("fc1", "fc2")][:, 0].max() < MAX_SHOWN  # from drawn neurons only
    np.testing.assert_array_equal(
        panel.values_shown()["fc1"], panel.session.activations()["relu1"][0, :MAX_SHOWN]
    )
    panel.grab().save("/tmp/diagram-wide.png")


def test_dark_palette_lights_neurons_in_a_light_colour(make_panel):
    panel = make_panel()
    dark = QPalette(panel.palette())
    for role, colour in (
        (QPalette.ColorRole.Base, QColor(30, 30, 34)),
        (QPalette.ColorRole.Window, QColor(42, 42, 46)),
        (QPalette.ColorRole.WindowText, QColor(225, 225, 228)),
        (QPalette.ColorRole.Text, QColor(225, 225, 228)),
        (QPalette.ColorRole.Button, QColor(42, 42, 46)),
        (QPalette.ColorRole.ButtonText, QColor(225, 225, 228)),
    ):
        dark.setColor(role, colour)
    panel.setPalette(dark)
    assert panel.refresh()
    assert panel.graphics.backgroundBrush().color() == QColor(30, 30, 34)
    top = len(panel.neurons.data) - 10 + panel.top_class()
    assert panel.neurons.data["brush"][top].color().lightness() > 200  # p ~ 1: bright
    _check_top_k(panel, 3)
    panel.grab().save("/tmp/diagram-mlp-3b1b-dark.png")


def test_redraw_costs(make_panel, data):
    """Time a new digit (brushes only) and new weights (edges too) on the sample MLPs."""
    for source in (SAMPLE, SAMPLE.with_name("mlp.nnviz")):
        panel = make_panel(source)
        panel.grab().save(f"/tmp/diagram-{source.name.removesuffix('.nnviz')}.png")
        inputs, weights = [], []
        for i in range(1, 21):
            panel.session.set_input(data.test.images[i] / 255, None, "t")
            panel.session.activations()  # shared by all panels: not this panel's cost
            t0 = time.perf_counter()
            panel.refresh()
            inputs.append(time.perf_counter() - t0)
            panel._edges_at = -1.0  # as if EDGE_REBUILD_S had passed
            panel._weights_changed()
            t0 = time.perf_counter()
            panel.refresh()
            weights.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        panel.grab()
        paint = time.perf_counter() - t0
        ms = 1000 * np.median(inputs), 1000 * np.median(weights), 1000 * paint
        name = source.name
        print(f"\n{name}: digit {ms[0]:.2f} ms, weights {ms[1]:.2f} ms, paint {ms[2]:.1f} ms")
        assert ms[0] < 10 and ms[1] < 20
