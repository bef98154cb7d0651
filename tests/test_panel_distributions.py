"""The distributions and layer health panels, offscreen, fed real statistics from real
training runs on real MNIST digits through a Session."""

from __future__ import annotations

import dataclasses
import importlib.resources

import numpy as np
import pytest
from PySide6.QtGui import QColor, QPalette

from nnviz.core.modelfile import load_model
from nnviz.core.models import ArchSpec
from nnviz.core.snapshot import LayerStats
from nnviz.core.training import TrainConfig, Trainer
from nnviz.qt.panels.bands import MEDIAN, BandHistory
from nnviz.qt.panels.distributions import DistributionsPanel
from nnviz.qt.panels.layer_health import LayerHealthPanel, warning_background
from nnviz.state import Session

SAMPLES = importlib.resources.files("nnviz.sample_models")
DEEP_SIGMOID = ArchSpec(
    name="deep-sigmoid",
    layers=[{"type": "dense", "units": 32, "activation": "sigmoid"}] * 6,
)


def _sample(name):
    return load_model(str(SAMPLES / f"{name}.nnviz"))


def _session(loaded, data):
    s = Session()
    s.set_model(loaded)
    s.set_data(data, "mnist")
    return s


def _train(session, steps, **config):
    """``steps`` real steps of the session's model, statistics after each, published on
    the session as the runner would; returns the LayerStats among them."""
    cfg = TrainConfig(**{"batch_size": 32, "epochs": 1, "stats_interval_s": 1e-9, **config})
    trainer = Trainer(session.train_model, session.data, cfg, history=session.history)
    run = trainer.steps()
    for _ in range(steps):
        next(run)
    trainer.stop()
    for _ in run:
        pass
    events = trainer.poll()
    session.publish(trainer.latest_snapshot(), events)
    return [e for e in events if isinstance(e, LayerStats)]


@pytest.fixture
def deep_sigmoid(tmp_path):
    """A fresh 6-layer sigmoid MLP, opened from a spec file as the app opens one."""
    path = tmp_path / "deep-sigmoid.json"
    path.write_text(DEEP_SIGMOID.to_json(), encoding="utf-8")
    return load_model(path, seed=0)


@pytest.fixture
def shown(qtbot):
    """Put a panel on screen: ``shown(DistributionsPanel, session)``; closed after the test."""
    panels = []

    def show(panel_type, session, size=(900, 600)):
        panel = panel_type(session)
        qtbot.addWidget(panel)
        panel.resize(*size)
        panel.show()
        qtbot.waitExposed(panel)
        panels.append(panel)
        return panel

    yield show
    for panel in panels:
        panel.close_panel()


def _path_ys(item):
    path = item.path()
    return np.array([path.elementAt(i).y for i in range(path.elementCount())])


def _dark(panel):
    pal = QPalette(panel.palette())
    for role, colour in (
        (QPalette.ColorRole.Base, QColor(30, 30, 30)),
        (QPalette.ColorRole.Window, QColor(45, 45, 45)),
        (QPalette.ColorRole.WindowText, QColor(230, 230, 230)),
        (QPalette.ColorRole.Text, QColor(230, 230, 230)),
    ):
        pal.setColor(role, colour)
    panel.setPalette(pal)


# ----- before training ----------------------------------------------------------------------
@pytest.mark.parametrize("panel_type", [DistributionsPanel, LayerHealthPanel])
def test_before_training_the_panels_say_what_to_do(shown, data, panel_type):
    panel = shown(panel_type, _session(_sample("lenet"), data))
    assert panel.refresh()
    assert panel.empty_label.isVisible()
    assert panel.empty_label.text().startswith("Train the model to see")


# ----- distributions ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp-3b1b", "lenet"])
def test_distribution_bands_are_the_reported_percentiles(shown, data, name):
    s = _session(_sample(name), data)
    panel = shown(DistributionsPanel, s)
    stats = _train(s, steps=12)
    assert len(stats) == 12
    assert panel.refresh()
    assert panel.scroll.isVisible() and not panel.empty_label.isVisible()
    names = [r.name for r in stats[-1].layers]
    assert [row.name for row in panel.rows] == names == panel.history.names
    steps = [e.step for e in stats]
    for i, row in enumerate(panel.rows):
        x, median = row.weights.median.getData()
        assert x.tolist() == steps
        assert median.tolist() == [e.layers[i].weight_bands[MEDIAN] for e in stats]
        # The outer band runs along the max over the steps and back along the min.
        ys = _path_ys(row.weights.fills[0])
        assert ys[: len(steps)].tolist() == [e.layers[i].weight_bands[-1] for e in stats]
        back = [e.layers[i].weight_bands[0] for e in reversed(stats)]
        assert ys[len(steps) : 2 * len(steps)].tolist() == back
        # |gradient| medians on the log scale, clamped at the plot's floor.
        _, g = row.gradients.median.getData()
        sizes = np.array([e.layers[i].gradient_size_bands[MEDIAN] for e in stats])
        floor = 10 ** row.gradients_plot.vb.viewRange()[1][0]
        np.testing.assert_allclose(g, np.log10(np.maximum(sizes, floor)), rtol=1e-9)
        assert not row.histogram.path().isEmpty()
        lo, hi = row.weights_plot.vb.viewRange()[1]
        assert lo <= min(e.layers[i].weight_bands[0] for e in stats)
        assert hi >= max(e.layers[i].weight_bands[-1] for e in stats)
        assert row.weights_plot.vb.viewRange()[0] == row.gradients_plot.vb.viewRange()[0]
    # Every gradient plot shares one log range, so the layers compare at a glance.
    assert len({tuple(row.gradients_plot.vb.viewRange()[1]) for row in panel.rows}) == 1
    text = panel.show_values_at(names[0], steps[3])
    assert f"{names[0]} at step {steps[3]:,}" in text
    assert f"{stats[3].layers[0].weight_bands[MEDIAN]:.3g}" in text
    assert panel.readout.text() == text
    assert not panel.refresh()  # nothing new: no redraw

    s.set_model(_sample(name))  # a model loaded: its statistics are not these
    assert panel.history.n == 0
    assert panel.refresh()
    assert panel.empty_label.isVisible() and not panel.scroll.isVisible()


def test_vanishing_gradients_sit_decades_below_on_the_shared_log_scale(shown, data, deep_sigmoid):
    s = _session(deep_sigmoid, data)
    panel = shown(DistributionsPanel, s)
    stats = _train(s, steps=5, optimizer="sgd")
    panel.refresh()
    first, last = panel.rows[0], panel.rows[-1]
    assert (first.name, last.name) == ("fc1", "output")
    # Medians of |gradient| in decades: the first layer's at least three below the last's.
    assert first.gradients.median.getData()[1][-1] < last.gradients.median.getData()[1][-1] - 3

    panel.log_scale.setChecked(False)  # signed gradients, each layer on its own scale
    assert panel.refresh()
    _, g = first.gradients.median.getData()
    assert g.tolist() == [e.layers[0].gradient_bands[MEDIAN] for e in stats]
    lo, hi = first.gradients_plot.vb.viewRange()[1]
    assert lo <= min(e.layers[0].gradient_bands[0] for e in stats)
    assert hi >= max(e.layers[0].gradient_bands[-1] for e in stats)
    assert hi - lo < 1e-3 < last.gradients_plot.vb.viewRange()[1][1]
    assert "log" not in first.gradients_plot.titleLabel.text


def test_a_long_run_is_thinned_to_a_bounded_history(data):
    s = _session(_sample("mlp-3b1b"), data)
    real = _train(s, steps=3)
    history = BandHistory(capacity=8)
    first = real[0].step
    for k in range(21):
        history.add(dataclasses.replace(real[k % 3], step=first + k))
    assert 4 <= history.n <= 8
    steps = history.steps
    assert np.all(np.diff(steps) > 0) and steps[-1] == first + 20
    assert history.weights(0)[-1].tolist() == list(real[20 % 3].layers[0].weight_bands)
    history.add(dataclasses.replace(real[0], step=first))  # a run that starts over
    assert history.n == 1 and history.steps.tolist() == [first]


# ----- layer health --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp-3b1b", "lenet"])
def test_health_table_shows_each_layers_latest_figures(shown, data, name):
    s = _session(_sample(name), data)
    panel = shown(LayerHealthPanel, s, size=(600, 300))
    stats = _train(s, steps=8)
    assert panel.refresh()
    assert not panel.empty_label.isVisible()
    latest = stats[-1]
    table = panel.table
    assert table.rowCount() == len(latest.layers)
    for row, record in enumerate(latest.layers):
        cells = [table.item(row, col).text().removeprefix("\u26a0 ") for col in range(4)]
        assert cells[0] == record.name
        dead = "\u2014" if record.dead_fraction is None else f"{record.dead_fraction:.0%}"
        assert cells[1:] == [dead, f"{record.gradient_norm:.3g}", f"{record.update_ratio:.1e}"]
    assert f"Step {latest.step:,}" in panel.summary.text()
    relus = [r.dead_fraction is not None for r in latest.layers]
    assert relus == ([False] * 3 if name == "mlp-3b1b" else [True, True, True, False])

    s.set_model(_sample(name))
    assert panel.refresh()
    assert panel.empty_label.isVisible() and panel.table.rowCount() == 0


def test_health_table_marks_a_vanishing_layer_in_the_warning_colour(shown, data, deep_sigmoid):
    s = _session(deep_sigmoid, data)
    panel = shown(LayerHealthPanel, s, size=(600, 300))
    _train(s, steps=5, optimizer="sgd")
    assert panel.refresh()
    light = warning_background(panel.palette())
    item = panel.table.item(0, 2)  # fc1's gradient norm
    assert panel.is_warning("fc1", "gradient_norm")
    assert item.background().color() == light
    assert item.text().startswith("\u26a0")  # marked without relying on colour
    assert "try ReLU instead of sigmoid" in item.toolTip()
    assert not panel.is_warning("output", "gradient_norm")
    assert panel.table.item(6, 2).toolTip().startswith("gradient norm")
    assert "fc1" in panel.summary.text() and "output" not in panel.summary.text()

    _dark(panel)  # a theme change: the warning colour is mixed into the new base
    assert panel.refresh(force=True)
    dark = warning_background(panel.palette())
    assert dark.lightness() < light.lightness()
    assert panel.table.item(0, 2).background().color() == dark
    assert panel.is_warning("fc1", "gradient_norm")
