"""The distributions and layer health panels, offscreen, fed real statistics from real
training runs on real MNIST digits through a Session."""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import math

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage, QPainter, QPalette

from nnviz.core.modelfile import load_model
from nnviz.core.models import ArchSpec
from nnviz.core.snapshot import LayerStats
from nnviz.qt.panels.bands import MEDIAN, BandHistory, floored_histogram
from nnviz.qt.panels.distributions import DistributionsPanel
from nnviz.qt.panels.layer_health import LayerHealthPanel, warning_background
from nnviz.state import RUNNING, Session

SAMPLES = importlib.resources.files("nnviz.sample_models")
DEEP_SIGMOID = ArchSpec(
    name="deep-sigmoid",
    layers=[{"type": "dense", "units": 32, "activation": "sigmoid"}] * 6,
)


def _sample(name):
    return load_model(str(SAMPLES / f"{name}.nnviz"))


@pytest.fixture
def train(train_steps):
    """``train(session, steps, **config)``: real steps of the session's model, statistics
    after each, published on the session as the runner would; returns the LayerStats."""

    def run(session, steps, **config):
        model, history = session.train_model, session.history
        trainer = train_steps(model, session.data, steps, history=history, **config)
        events = trainer.poll()
        session.publish(trainer.latest_snapshot(), events)
        return [e for e in events if isinstance(e, LayerStats)]

    return run


@pytest.fixture
def deep_sigmoid(tmp_path):
    """A fresh 6-layer sigmoid MLP, opened from a spec file as the app opens one."""
    path = tmp_path / "deep-sigmoid.json"
    path.write_text(DEEP_SIGMOID.to_json(), encoding="utf-8")
    return load_model(path, seed=0)


@pytest.fixture
def shown(show_panel):
    """Put a panel on screen, drawn once: ``shown(DistributionsPanel, session)``."""
    return functools.partial(show_panel, size=(900, 600))


def _path_ys(item):
    path = item.path()
    return np.array([path.elementAt(i).y for i in range(path.elementCount())])


def _bars(item):
    """(counts, bin edges) of a histogram drawn by ``bands.histogram_path``."""
    path = item.path()
    points = np.array(
        [(path.elementAt(i).x, path.elementAt(i).y) for i in range(path.elementCount())]
    )
    # From (0, bottom) up each bar's two corners to (0, top), then closed back to the start.
    bars = points[1:-2:2]
    return bars[:, 0], np.append(bars[:, 1], points[-3, 1])


def _screen_y(plot, value):
    """Where a value of a plot's y axis is drawn, in the scene's pixels."""
    return plot.vb.mapViewToScene(QPointF(0.0, value)).y()


def _entries(session, layer):
    return dict(session.train_model.named_modules())[layer].weight.numel()


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
PANELS = [DistributionsPanel, LayerHealthPanel]


@pytest.mark.parametrize("panel_type", PANELS)
def test_a_trained_sample_says_its_file_holds_no_statistics(shown, open_session, data, panel_type):
    # lenet ships trained (98% on the test digits), but with no statistics in the file:
    # "train the model" would be wrong.
    s = open_session(_sample("lenet"), data, index=None)
    panel = shown(panel_type, s)  # drawn once
    assert panel.empty_label.isVisible()
    assert panel.empty_label.text() == (
        "No statistics recorded in this file: they arrive with the first training steps"
    )


@pytest.mark.parametrize("panel_type", PANELS)
@pytest.mark.parametrize("kind", ["pt2", "torchscript"])
def test_a_view_only_model_says_it_cannot_be_trained(
    shown, open_session, data, exported_lenet, tmp_path, panel_type, kind
):
    path = exported_lenet
    if kind == "torchscript":
        module = _sample("lenet").module
        path = str(tmp_path / "lenet.ts")
        torch.jit.save(torch.jit.trace(module, torch.zeros(1, 1, 28, 28)), path)
    s = open_session(path, data, index=None)
    assert not s.trainable
    panel = shown(panel_type, s)
    assert panel.empty_label.text() == (
        "A view-only model (opened without its architecture) cannot be trained, so there "
        "are no training statistics"
    )


@pytest.mark.parametrize("panel_type", PANELS)
def test_while_training_starts_the_panels_say_statistics_are_coming(
    shown, open_session, data, train, panel_type
):
    s = open_session(deep_sigmoid_spec(), data, index=None)  # new: no file behind it
    panel = shown(panel_type, s)
    assert panel.empty_label.text() == (
        "No statistics yet: they arrive with the first training steps"
    )
    s.set_status(RUNNING)  # Train pressed; the first statistics are a moment away
    assert panel.refresh()
    assert panel.empty_label.text() == "Statistics arrive after the first steps"
    assert panel.empty_label.isVisible()
    train(s, steps=2)
    assert panel.refresh()
    assert not panel.empty_label.isVisible()  # the statistics, not a message


def test_without_a_model_the_panels_say_to_load_one(qtbot):
    for panel_type in PANELS:
        panel = panel_type(Session())
        qtbot.addWidget(panel)
        panel.show()
        qtbot.waitExposed(panel)
        assert panel.refresh()
        assert panel.empty_label.text().startswith("Load a model to see")
        panel.close_panel()


def deep_sigmoid_spec():
    """A new, untrained model built from a spec (as File > New makes one)."""
    from nnviz.core.modelfile import LoadedModel
    from nnviz.core.models import build_model

    return LoadedModel(build_model(DEEP_SIGMOID, seed=0), "spec", None, DEEP_SIGMOID)


def _step_labels(axis):
    """The step labels an axis draws: (left, right, text), left to right."""
    picture = QImage(10, 10, QImage.Format.Format_ARGB32)
    with QPainter(picture) as painter:
        _, _, texts = axis.generateDrawSpecs(painter)
    return sorted((rect.left(), rect.right(), text) for rect, _, text in texts)


@pytest.mark.parametrize("last_step", [11_000, 110_000, 1_100_000])
def test_step_labels_never_run_together(show_panel, open_session, data, train, last_step):
    s = open_session(_sample("mlp-3b1b"), data, index=None)
    panel = show_panel(DistributionsPanel, s, size=(420, 600))  # plots about 100 px wide
    stats = train(s, steps=4)
    # Real statistics, as a long run reports them: 41 points up to ``last_step``.
    later = [dataclasses.replace(stats[i % 4], step=i * last_step // 40) for i in range(41)]
    s.publish(None, later)
    assert panel.refresh()
    panel.grab()  # laid out and painted, as on screen
    for plot in (panel.rows[-1].weights_plot, panel.rows[-1].gradients_plot):
        axis = plot.getAxis("bottom")
        labels = _step_labels(axis)
        assert labels, "the steps are labelled"
        # Short (5k, 110k, 1M), and each clear of the next: 5000, 10000 and 15000 under
        # a plot 100 px wide ran into "500010000150000".
        assert all(len(text) <= 4 and text[-1] in "0123456789kM" for _, _, text in labels)
        for (_, right, _), (left, _, _) in zip(labels, labels[1:], strict=False):
            assert left - right >= 4
        assert labels[-1][1] <= axis.width() + 20  # the last one on the axis


# ----- distributions ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp-3b1b", "lenet"])
def test_distribution_bands_are_the_reported_percentiles(shown, open_session, data, train, name):
    s = open_session(_sample(name), data, index=None)
    panel = shown(DistributionsPanel, s)
    stats = train(s, steps=12)
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
        assert not row.weight_histogram.path().isEmpty()
        # Beside the |gradient| bands, the histogram of log10|gradient| now on the same
        # axis: from the floor to the outer band's top, every gradient entry counted.
        record = stats[-1].layers[i]
        counts, edges = _bars(row.gradient_histogram)
        assert len(counts) and counts.sum() == pytest.approx(_entries(s, row.name), rel=1e-5)
        assert edges[0] >= math.log10(floor) - 1e-9
        assert edges[-1] == pytest.approx(math.log10(record.gradient_size_bands[-1]))
        assert edges[-1] == pytest.approx(_path_ys(row.gradients.fills[0])[len(steps) - 1])
        assert np.all(np.diff(edges) >= 0)
        for value in (edges[0], edges[-1]):  # the same height on screen as in the bands
            assert _screen_y(row.gradient_histogram_plot, value) == pytest.approx(
                _screen_y(row.gradients_plot, value), abs=0.5
            )
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


def test_vanishing_gradients_sit_decades_below_on_the_shared_log_scale(
    shown, open_session, data, train, deep_sigmoid
):
    s = open_session(deep_sigmoid, data, index=None)
    panel = shown(DistributionsPanel, s)
    stats = train(s, steps=5, optimizer="sgd")
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
    # The histogram beside them turns signed too, over the same values.
    counts, edges = _bars(first.gradient_histogram)
    record = stats[-1].layers[0]
    np.testing.assert_allclose(counts, record.gradient_histogram)
    assert (edges[0], edges[-1]) == pytest.approx(record.gradient_range)
    assert counts.sum() == pytest.approx(_entries(s, "fc1"), rel=1e-5)
    for value in (lo, hi):
        assert _screen_y(first.gradient_histogram_plot, value) == pytest.approx(
            _screen_y(first.gradients_plot, value), abs=0.5
        )


def test_sizes_under_the_log_scales_floor_are_drawn_on_it(open_session, data, train):
    s = open_session(_sample("mlp-3b1b"), data, index=None)
    fc1 = train(s, steps=3)[-1].layers[0]
    # Pixels at a digit's edge are 0 in every image of a batch: their weights get no
    # gradient, and zeros have no place on a log scale but the floor.
    assert fc1.gradient_zeros > 0
    counts, edges = floored_histogram(
        fc1.gradient_size_histogram, fc1.gradient_size_range, fc1.gradient_zeros, -30.0
    )
    assert edges[0] == -30.0 and counts[0] == fc1.gradient_zeros  # a bar on the floor
    assert counts[1] == 0 and edges[2] == pytest.approx(fc1.gradient_size_range[0])
    lo, hi = fc1.gradient_size_range
    for floor in (lo - 1.0, lo, (lo + hi) / 2, hi, hi + 1.0):
        counts, edges = floored_histogram(
            fc1.gradient_size_histogram, fc1.gradient_size_range, fc1.gradient_zeros, floor
        )
        assert edges[0] == floor and np.all(np.diff(edges) >= 0)
        # Nothing is lost: what lies under the floor is counted on it.
        assert counts.sum() == pytest.approx(784 * 16, rel=1e-5)
        assert counts[0] >= fc1.gradient_zeros


def test_a_long_run_is_thinned_to_a_bounded_history(open_session, data, train):
    s = open_session(_sample("mlp-3b1b"), data, index=None)
    real = train(s, steps=3)
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
def test_health_table_shows_each_layers_latest_figures(shown, open_session, data, train, name):
    s = open_session(_sample(name), data, index=None)
    panel = shown(LayerHealthPanel, s, size=(600, 300))
    stats = train(s, steps=8)
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


def test_health_table_marks_a_vanishing_layer_in_the_warning_colour(
    shown, open_session, data, train, deep_sigmoid
):
    s = open_session(deep_sigmoid, data, index=None)
    panel = shown(LayerHealthPanel, s, size=(600, 300))
    train(s, steps=5, optimizer="sgd")
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


def test_rows_are_laid_out_when_a_model_opens_and_kept_when_training_starts(
    shown, open_session, data, train
):
    # Building a row costs four pyqtgraph plots (~80 ms): it happens when the model is
    # opened, not when its first statistics arrive in the middle of training.
    s = open_session(_sample("lenet"), data, index=None)
    panel = shown(DistributionsPanel, s)
    assert [row.name for row in panel.rows] == ["conv1", "conv2", "fc1", "output"]
    built = list(panel.rows)
    train(s, 3)
    assert panel.refresh()
    assert panel.rows == built and panel.history.names == [row.name for row in built]
    # Another model with fewer layers keeps the rows it can and renames them.
    s.set_model(_sample("mlp-3b1b"))
    assert panel.refresh()
    assert [row.name for row in panel.rows] == ["fc1", "fc2", "output"]
    assert panel.rows == built[:3]
    axis = panel.rows[-1].weights_plot.getAxis("bottom")
    assert axis.style["showValues"] and axis.labelText == "step"
    assert not panel.rows[0].weights_plot.getAxis("bottom").style["showValues"]
