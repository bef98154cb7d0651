"""The loss panel, offscreen, fed real reports from a real Trainer on real MNIST digits."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from nnviz.core.data import load_splits
from nnviz.core.models import build_model, get_spec
from nnviz.core.snapshot import EpochReport, SettingChanged, StepReport
from nnviz.core.training import History, TrainConfig, Trainer
from nnviz.qt.panels.loss import LossPanel, ema
from nnviz.state import Session


@pytest.fixture
def data():
    return load_splits("mnist", n_val=100, limit=500)


def _trainer(data, history=None):
    model = build_model(get_spec("mlp-3b1b"), seed=0)
    return Trainer(model, data, TrainConfig(batch_size=32, epochs=2), history=history)


@pytest.fixture
def run(data):
    """A finished real run: (trainer, the events it reported)."""
    trainer = _trainer(data)
    trainer.run()
    return trainer, trainer.poll()


@pytest.fixture
def panel(qtbot):
    p = LossPanel(Session())
    qtbot.addWidget(p)
    p.resize(900, 400)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.close_panel()


def _xy(curve):
    """All the data a curve holds (getData gives only what survives clipping/downsampling)."""
    x, y = curve.getOriginalDataset()
    return (np.array([]), np.array([])) if x is None else (np.asarray(x), np.asarray(y))


def _tv(values):
    return float(np.abs(np.diff(values)).sum())


def test_raw_and_smoothed_curves_follow_real_training(panel, run):
    _, events = run
    steps = [e for e in events if isinstance(e, StepReport)]
    per_epoch = steps[0].batches_per_epoch
    assert len(steps) == 2 * per_epoch > 20
    panel.session.events_added.emit(events)
    assert panel.refresh()
    x, y = _xy(panel.raw_curve)
    assert x.tolist() == [e.step for e in steps]
    assert y.tolist() == [e.loss for e in steps]
    sx, sy = _xy(panel.smooth_curve)
    assert sx.tolist() == x.tolist() and len(sy) == len(y)
    assert sy[0] == pytest.approx(y[0])  # debiased: starts on the first point
    assert _tv(sy) < 0.7 * _tv(y)
    assert panel.point_count() == len(steps)
    assert not panel.empty_label.isVisible()
    assert not panel.refresh()  # nothing new: no redraw


def test_validation_and_accuracy_per_epoch_sit_at_the_epoch_steps(panel, run):
    _, events = run
    epochs = [e for e in events if isinstance(e, EpochReport)]
    assert len(epochs) == 2 and all(e.val_loss is not None for e in epochs)
    panel.session.events_added.emit(events)
    panel.refresh()
    vx, vy = _xy(panel.val_curve)
    assert vx.tolist() == [e.step for e in epochs]
    assert vy.tolist() == [e.val_loss for e in epochs]
    tx, ty = _xy(panel.train_epoch_curve)
    assert tx.tolist() == [e.step for e in epochs]
    assert ty.tolist() == pytest.approx([e.train_loss for e in epochs])
    ax, ay = _xy(panel.val_acc_curve)
    assert ax.tolist() == [e.step for e in epochs]
    assert ay.tolist() == pytest.approx([100 * e.val_accuracy for e in epochs])


def test_events_in_small_batches_draw_the_same_as_one_batch(panel, run, qtbot):
    _, events = run
    for i in range(0, len(events), 5):  # the runner publishes a few reports per frame
        panel.session.events_added.emit(events[i : i + 5])
        panel.refresh()
    whole = LossPanel(Session())
    qtbot.addWidget(whole)
    whole.session.events_added.emit(events)
    whole.refresh(force=True)
    assert _xy(panel.raw_curve)[1].tolist() == _xy(whole.raw_curve)[1].tolist()
    np.testing.assert_allclose(_xy(panel.smooth_curve)[1], _xy(whole.smooth_curve)[1])
    whole.close_panel()


def test_smoothing_control_recomputes_the_curve(panel, run):
    _, events = run
    panel.session.events_added.emit(events)
    panel.refresh()
    raw = _xy(panel.raw_curve)[1]
    panel.smoothing.setValue(0.0)
    assert panel.refresh()
    np.testing.assert_allclose(_xy(panel.smooth_curve)[1], raw)
    panel.smoothing.setValue(0.99)
    panel.refresh()
    assert _tv(_xy(panel.smooth_curve)[1]) < _tv(raw) * 0.5


def _tensorboard_ema(values, weight):
    out, last = [], 0.0
    for i, v in enumerate(values):
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight ** (i + 1)) if weight else v)
    return np.array(out)


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.9, 0.999])
def test_ema_matches_tensorboard_in_any_chunking(weight):
    values = np.random.default_rng(0).lognormal(size=10_000)
    expected = _tensorboard_ema(values, weight)
    out = np.empty_like(values)
    state = (0.0, 0)
    for a, b in ((0, 1), (1, 7), (7, 5000), (5000, 10_000)):
        state = ema(values[a:b], weight, out[a:b], *state)
    np.testing.assert_allclose(out, expected, rtol=1e-9)


def test_log_scale_toggle_sets_the_loss_axis_log_mode(panel, run):
    panel.session.events_added.emit(run[1])
    panel.refresh()
    vb = panel.loss_plot.getViewBox()
    assert vb.state["logMode"][1] is False
    panel.log_scale.setChecked(True)
    assert vb.state["logMode"][1] is True
    panel.set_log_scale(False)
    assert vb.state["logMode"][1] is False and not panel.log_scale.isChecked()


def test_a_learning_rate_change_is_marked_at_its_step(panel, data):
    trainer = _trainer(data)
    for report in trainer.steps():
        if report.step == 10:
            trainer.set_lr(0.01)
    events = trainer.poll()
    changes = [e for e in events if isinstance(e, SettingChanged)]
    assert [(c.step, c.name, c.value) for c in changes] == [(11, "lr", 0.01)]
    panel.session.events_added.emit(events)
    panel.refresh()
    assert len(panel.markers) == 1
    assert panel.markers[0].value() == 11
    assert panel.markers[0].label.format == "lr 0.01"
    panel.session.events_added.emit([SettingChanged(20, "weight_decay", 1e-4)])
    panel.refresh()
    assert [m.value() for m in panel.markers] == [11, 20]
    assert panel.markers[1].label.format == "wd 0.0001"


def test_model_loaded_restores_the_curves_from_the_history(panel, run):
    trainer, events = run
    panel.session.events_added.emit(events[:3])
    panel.refresh()
    history = History(trainer.history.to_dict())
    history.changes.append({"step": 5, "name": "lr", "value": 0.002})
    panel.session.history = history
    panel.session.model_loaded.emit()
    assert panel.refresh()
    x, y = _xy(panel.raw_curve)
    assert x.tolist() == history.step and y.tolist() == history.loss
    assert len(_xy(panel.smooth_curve)[1]) == len(history.loss)
    assert _xy(panel.val_curve)[1].tolist() == [e["val_loss"] for e in history.epochs]
    assert [m.value() for m in panel.markers] == [5]


def test_a_loaded_sample_model_shows_its_history_at_once(panel):
    from nnviz.core.modelfile import load_model
    from nnviz.qt.app import default_model_path

    panel.session.set_model(load_model(default_model_path()))
    history = panel.session.history
    assert len(history.step) > 1000
    panel.refresh()
    assert panel.point_count() == len(history.step)
    assert _xy(panel.raw_curve)[1].tolist() == history.loss
    assert len(_xy(panel.val_curve)[0]) == len(history.epochs)
    assert not panel.empty_label.isVisible()


def test_a_hidden_panel_buffers_but_does_not_redraw(panel, run):
    panel.hide()
    panel.session.events_added.emit(run[1])
    assert not panel.refresh()
    assert len(_xy(panel.raw_curve)[0]) == 0
    panel.show()
    assert panel.refresh()
    assert len(_xy(panel.raw_curve)[0]) == sum(isinstance(e, StepReport) for e in run[1])


def test_empty_state_invites_the_user_to_train(panel, run):
    panel.refresh()
    assert panel.empty_label.isVisible()
    assert "Press Train" in panel.empty_label.text()
    panel.session.events_added.emit(run[1])
    panel.refresh()
    assert not panel.empty_label.isVisible()


def test_hover_shows_step_loss_smoothed_and_nearest_epoch(panel, run, qtbot):
    _, events = run
    steps = [e for e in events if isinstance(e, StepReport)]
    epochs = [e for e in events if isinstance(e, EpochReport)]
    panel.session.events_added.emit(events)
    panel.refresh()
    text = panel.show_values_at(5.2)
    assert "step 5 " in text and f"loss {steps[4].loss:.4g}" in text
    assert "smoothed" in text and f"val loss {epochs[0].val_loss:.4g}" in text
    assert panel.crosshairs[0].value() == 5 and panel.crosshairs[0].isVisible()
    assert "epoch 2:" in panel.show_values_at(25)
    # A real mouse move over the plot reaches the readout through the rate-limited proxy.
    panel.readout.clear()
    vb = panel.loss_plot.getViewBox()
    scene_pos = vb.mapViewToScene(vb.viewRect().center())
    where = panel.graphics.mapFromScene(scene_pos)
    qtbot.mouseMove(panel.graphics.viewport(), QPoint(where.x(), where.y()))
    qtbot.waitUntil(lambda: "step" in panel.readout.text(), timeout=2000)


def test_dark_palette_changes_the_background(panel):
    dark = QPalette(panel.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor(30, 30, 34))
    dark.setColor(QPalette.ColorRole.WindowText, QColor(225, 225, 228))
    panel.setPalette(dark)
    assert panel.refresh()  # a new theme is taken at the next redraw
    assert panel.graphics.backgroundBrush().color() == QColor(30, 30, 34)
    assert panel.loss_plot.getAxis("left").textPen().color() == QColor(225, 225, 228)
    assert panel.smooth_curve.opts["pen"].color().lightness() > 150  # a light line on dark


def test_a_hundred_thousand_points_append_and_draw_in_well_under_a_second(panel):
    rng = np.random.default_rng(0)
    n = 100_000
    losses = 2.3 * np.exp(-np.arange(n) / 20_000) + rng.exponential(0.2, n)
    events = [
        StepReport(
            step=i + 1,
            epoch=i // 1000,
            batch=i % 1000 + 1,
            batches_per_epoch=1000,
            loss=float(v),
            accuracy=0.5,
            samples_per_s=1e4,
            lr=1e-3,
        )
        for i, v in enumerate(losses)
    ]
    events += [EpochReport(e, (e + 1) * 1000, 0.5, 0.9, 0.4, 0.95) for e in range(100)]
    t0 = time.perf_counter()
    panel.session.events_added.emit(events)
    assert panel.refresh()
    panel.grab()  # forces a paint
    elapsed = time.perf_counter() - t0
    print(f"\n100,000 points: append + redraw + paint {elapsed * 1000:.0f} ms")
    assert panel.point_count() == n
    assert len(_xy(panel.raw_curve)[0]) == n
    assert elapsed < 1.0
    # A live frame afterwards: 30 more points, one redraw and one paint.
    more = [StepReport(n + i + 1, 100, i + 1, 1000, 0.3, 0.5, 1e4, 1e-3) for i in range(30)]
    t0 = time.perf_counter()
    panel.session.events_added.emit(more)
    panel.refresh()
    panel.grab()
    print(f"100,030 points: one live frame {(time.perf_counter() - t0) * 1000:.1f} ms")


class _PaintCounter(QObject):
    """Counts the paint events a widget gets."""

    def __init__(self, widget):
        super().__init__()
        self.paints = 0
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


def _settle(qtbot):
    """Let every queued update and paint happen."""
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(20)


def _view_ranges(panel):
    return [panel.loss_plot.vb.viewRange(), panel.acc_plot.vb.viewRange()]


def test_a_redraw_without_a_range_change_paints_once_and_never_auto_ranges(
    panel, run, qtbot, monkeypatch
):
    _, events = run
    last_steps = [i for i, e in enumerate(events) if isinstance(e, StepReport)][-5:]
    panel.session.events_added.emit(events[: last_steps[0]])
    panel.refresh()
    _settle(qtbot)
    auto_ranged = []
    for plot in (panel.loss_plot, panel.acc_plot):
        assert plot.vb.state["autoRange"] == [False, False]
        monkeypatch.setattr(plot.vb, "updateAutoRange", lambda: auto_ranged.append(1))
    before = _view_ranges(panel)
    counter = _PaintCounter(panel.graphics.viewport())
    panel.session.events_added.emit(events[last_steps[0] :])
    assert panel.refresh()
    _settle(qtbot)
    assert _view_ranges(panel) == before  # the new points fell inside the ranges
    assert len(_xy(panel.raw_curve)[0]) == panel.point_count()
    assert counter.paints == 1
    assert auto_ranged == []


def test_the_step_axis_grows_in_chunks_and_the_loss_axis_refits_when_left(panel, run, qtbot):
    events = run[1]
    losses = [e.loss for e in events if isinstance(e, StepReport)]
    epoch_losses = [
        v for e in events if isinstance(e, EpochReport) for v in (e.train_loss, e.val_loss)
    ]
    panel.session.events_added.emit(events)
    panel.refresh()
    vb = panel.loss_plot.vb
    x0, x1 = vb.viewRange()[0]
    assert x0 < 0 < len(losses) < x1 == 100  # a short run fits the empty state's room
    y0, y1 = vb.viewRange()[1]
    lo, hi = min(losses + epoch_losses), max(losses + epoch_losses)
    assert lo - 0.2 * hi < y0 < lo and hi < y1 < 1.1 * hi  # the losses fill it, room below
    more = [StepReport(101 + i, 3, i + 1, 13, lo, 0.5, 1e4, 1e-3) for i in range(20)]
    panel.session.events_added.emit(more)
    panel.refresh()
    assert vb.viewRange()[0][1] == pytest.approx(1.5 * 120)  # left at step 101: 1.5x
    assert panel.acc_plot.vb.viewRange()[0] == vb.viewRange()[0]  # linked
    assert vb.viewRange()[1] == [y0, y1]  # the losses stayed inside: no refit
    panel.session.events_added.emit([StepReport(121, 3, 21, 13, 2 * y1, 0.5, 1e4, 1e-3)])
    panel.refresh()
    assert vb.viewRange()[1][1] > 2 * y1  # a spike above the range refits it
    assert vb.state["autoRange"] == [False, False]
    accuracies = [
        100 * v
        for e in events
        if isinstance(e, EpochReport)
        for v in (e.train_accuracy, e.val_accuracy)
    ]
    a0, a1 = panel.acc_plot.vb.viewRange()[1]
    assert a0 < min(accuracies) and max(accuracies) < a1 <= 102


def test_panning_stops_following_and_fit_or_a_double_click_fits_again(panel, run, qtbot):
    panel.session.events_added.emit(run[1])
    panel.refresh()
    vb = panel.loss_plot.vb
    vb.translateBy(x=40)  # what a mouse drag does
    vb.sigRangeChangedManually.emit([True, True])
    panned = vb.viewRange()
    panel.session.events_added.emit([StepReport(500, 3, 1, 13, 0.4, 0.5, 1e4, 1e-3)])
    panel.refresh()
    assert vb.viewRange() == panned  # the view stays where the user put it
    panel.fit_button.click()
    fitted = vb.viewRange()
    assert fitted[0][0] < 0 and fitted[0][1] == pytest.approx(1.02 * 500)
    assert fitted[1][0] < 0.4 < fitted[1][1]
    vb.translateBy(x=40, y=1)
    vb.sigRangeChangedManually.emit([True, True])
    viewport = panel.graphics.viewport()
    at = QPoint(viewport.width() // 2, viewport.height() // 3)
    # A real double-click: press, release, double-click, release (pyqtgraph's scene
    # reports the double click on the last release).
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=at)
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=at)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=at)
    assert vb.viewRange() == fitted
    assert vb.state["autoRange"] == [False, False]


def test_log_scale_refits_the_loss_axis_in_decades(panel, run):
    panel.session.events_added.emit(run[1])
    panel.refresh()
    losses = [e.loss for e in run[1] if isinstance(e, StepReport)]
    vb = panel.loss_plot.vb
    steps = vb.viewRange()[0]
    panel.log_scale.setChecked(True)
    y0, y1 = vb.viewRange()[1]
    assert y0 < np.log10(min(losses)) and np.log10(max(losses)) < y1 < 1
    assert vb.state["autoRange"] == [False, False]  # setLogMode had turned it back on
    assert vb.viewRange()[0] == steps  # and its last auto-range is undone
    panel.log_scale.setChecked(False)
    assert vb.viewRange()[1][0] < min(losses) and vb.viewRange()[1][1] > max(losses)


def test_a_redraw_and_its_paint_stay_cheap_with_many_points(panel, qtbot):
    rng = np.random.default_rng(0)
    n = 50_000
    losses = 2.3 * np.exp(-np.arange(n) / 10_000) + rng.exponential(0.2, n)
    panel.session.events_added.emit(
        [
            StepReport(i + 1, i // 1000, i % 1000 + 1, 1000, float(v), 0.5, 1e4, 1e-3)
            for i, v in enumerate(losses)
        ]
        + [EpochReport(e, (e + 1) * 1000, 0.5, 0.9, 0.4, 0.95) for e in range(50)]
    )
    panel.refresh()
    _settle(qtbot)
    counter = _PaintCounter(panel.graphics.viewport())
    frames, step, t0 = 20, n, time.perf_counter()
    for _ in range(frames):
        more = [StepReport(step + i + 1, 50, i + 1, 1000, 0.3, 0.5, 1e4, 1e-3) for i in range(30)]
        step += 30
        panel.session.events_added.emit(more)
        panel.refresh()
        QApplication.processEvents()  # the paint
        QApplication.processEvents()  # and a second one, if the first scheduled it
    per_frame = (time.perf_counter() - t0) / frames * 1000
    print(f"\n50,000+ points: a live frame (30 points, redraw + paint) {per_frame:.1f} ms")
    assert counter.paints == frames
    assert per_frame < 40  # about 5 ms here; it was 25-35 ms with auto-range


def test_the_step_the_history_slider_shows_is_marked_on_the_curve(qtbot, data, train_and_publish):
    from nnviz.core.modelfile import load_model

    s = Session()
    s.set_model(load_model("mlp-3b1b", seed=0))
    s.set_data(data, "mnist")
    panel = LossPanel(s)
    qtbot.addWidget(panel)
    panel.resize(900, 400)
    panel.show()
    qtbot.waitExposed(panel)
    train_and_publish(s, data, steps=40, every=5)
    assert not panel.viewed_step.isVisible()
    past = s.weight_history.steps()[2]
    s.show_step(past)
    assert panel.viewed_step.isVisible() and panel.viewed_step.value() == past == s.viewing_step
    s.show_live()
    assert not panel.viewed_step.isVisible()
    panel.close_panel()
