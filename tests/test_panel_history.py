"""The history panel, offscreen, on the real lenet sample trained on real MNIST digits:
the slider at step s shows the weights saved at step s, in every panel."""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QStyle, QStyleOptionSlider

from nnviz.core.checkpoint import save_checkpoint
from nnviz.qt.main_window import app_settings
from nnviz.qt.panels.filters import FiltersPanel
from nnviz.qt.panels.history import BUDGET_SETTING, MAX_BUDGET_MB, HistoryPanel
from nnviz.qt.runner import TrainingRunner
from nnviz.state import Session

pytestmark = pytest.mark.usefixtures("row_major_images")

LENET = str(files("nnviz.sample_models") / "lenet.nnviz")


@pytest.fixture
def shown(show_panel):
    """Put a panel on screen at the left column's size, drawn once: ``shown(HistoryPanel, s)``."""
    return functools.partial(show_panel, size=(320, 420))


def _assert_view_holds(session, weights):
    for key, value in session.view_model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), weights[key], err_msg=key)


def _filters_show(panel, weights):
    conv1 = weights["conv1.weight"]
    for o in range(conv1.shape[0]):
        np.testing.assert_array_equal(
            panel._mosaic.tile(*divmod(o, panel._mosaic.cols)), conv1[o, 0]
        )


def _handle_centre(slider) -> QPoint:
    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    rect = slider.style().subControlRect(
        QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, slider
    )
    return rect.center()


def _x_of(slider, index) -> int:
    """The x of the handle's centre with the slider at position ``index``."""
    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    handle = slider.style().subControlRect(
        QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, slider
    )
    span = slider.width() - handle.width()
    return (
        QStyle.sliderPositionFromValue(slider.minimum(), slider.maximum(), index, span)
        + handle.width() // 2
    )


def test_the_history_slider_at_step_s_shows_the_weights_saved_at_step_s(
    shown, open_session, data, qtbot, train_and_publish
):
    s = open_session(LENET, data)
    history = shown(HistoryPanel, s)
    filters = shown(FiltersPanel, s)
    start = s.history.last_step
    published = train_and_publish(s, data, steps=40, every=10)
    assert history.refresh()
    steps = [start, start + 10, start + 20, start + 30, start + 40]
    assert s.weight_history.steps() == steps
    assert history.slider.maximum() == 4 and history.slider.value() == 4  # live: the end
    assert history.live_button.isChecked()
    assert "5 snapshots" in history.position.text()

    # Every position but the last (live) shows exactly the weights saved at its step.
    for index in (3, 0, 2, 1):
        history.show_position(index)
        qtbot.waitUntil(lambda index=index: s.viewing_step == steps[index], timeout=2000)
        saved = s.weight_history.at(steps[index])
        _assert_view_holds(s, saved)
        if steps[index] in published:
            _assert_view_holds(s, published[steps[index]])
        assert filters.stale
        assert filters.refresh()
        _filters_show(filters, saved)
        assert history.refresh()
        assert f"step {steps[index]:,}" in history.position.text()
        assert not history.live_button.isChecked()
    assert s.view_model is not s.train_model


def test_keys_and_a_mouse_drag_move_through_the_run(
    shown, open_session, data, qtbot, train_and_publish
):
    s = open_session(LENET, data)
    history = shown(HistoryPanel, s)
    start = s.history.last_step
    train_and_publish(s, data, steps=60, every=10)
    history.refresh()
    steps = s.weight_history.steps()
    assert len(steps) == 7
    seen = []
    s.view_step_changed.connect(seen.append)

    history.slider.setFocus()
    qtbot.keyClick(history.slider, Qt.Key.Key_Left)
    assert s.viewing_step == start + 50
    qtbot.keyClick(history.slider, Qt.Key.Key_Home)
    qtbot.waitUntil(lambda: s.viewing_step == start, timeout=2000)

    # A fast drag from the start to position 5: at most one step shown per frame, and
    # the views end on the step the handle was let go at.
    seen.clear()
    slider = history.slider
    qtbot.mousePress(slider, Qt.MouseButton.LeftButton, pos=_handle_centre(slider))
    y = _handle_centre(slider).y()
    for index in range(1, 6):
        qtbot.mouseMove(slider, QPoint(_x_of(slider, index), y))
    qtbot.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=QPoint(_x_of(slider, 5), y))
    assert slider.value() == 5
    qtbot.waitUntil(lambda: s.viewing_step == steps[5], timeout=2000)
    assert len(seen) < 5  # coalesced: not one show per position passed
    _assert_view_holds(s, s.weight_history.at(steps[5]))


def test_live_returns_to_the_newest_and_training_goes_on_recording(
    shown, open_session, data, qtbot, train_and_publish
):
    s = open_session(LENET, data)
    history = shown(HistoryPanel, s)
    start = s.history.last_step
    train_and_publish(s, data, steps=20, every=10)
    history.refresh()
    history.show_position(0)
    qtbot.waitUntil(lambda: s.viewing_step == start, timeout=2000)

    later = train_and_publish(
        s, data, steps=10, every=10
    )  # training goes on while the past is shown
    assert s.viewing_step == start
    _assert_view_holds(s, s.weight_history.at(start))
    assert history.refresh()
    assert history.slider.maximum() == 3 and history.slider.value() == 0
    assert f"from step {start + 30:,}" in history.note.text()

    qtbot.mouseClick(history.live_button, Qt.MouseButton.LeftButton)
    assert s.viewing_step is None
    _assert_view_holds(s, later[start + 30])
    assert history.refresh()
    assert history.slider.value() == 3 and history.live_button.isChecked()


def test_play_advances_through_every_snapshot_and_stops_live_at_the_end(
    shown, open_session, data, qtbot, train_and_publish
):
    s = open_session(LENET, data)
    history = shown(HistoryPanel, s)
    train_and_publish(s, data, steps=30, every=10)
    history.refresh()
    steps = s.weight_history.steps()
    seen = []
    s.view_step_changed.connect(seen.append)

    qtbot.mouseClick(history.play_button, Qt.MouseButton.LeftButton)  # at the end: from the start
    assert history.playing and history.play_button.text() == "Pause"
    assert seen == [steps[0]]
    qtbot.waitUntil(lambda: not history.playing, timeout=3000)
    assert seen == [*steps[:-1], None]  # each stored step in turn, then live
    assert history.play_button.text() == "Play"
    _assert_view_holds(s, s.weight_history.at(steps[-1]))


def test_save_with_history_and_reopen_restores_the_steps(
    shown, open_session, data, qtbot, tmp_path, train_and_publish
):
    s = open_session(LENET, data)
    history = shown(HistoryPanel, s)
    train_and_publish(s, data, steps=30, every=10)
    history.refresh()
    steps = s.weight_history.steps()
    assert not history.save_box.isChecked()
    qtbot.mouseClick(history.save_box, Qt.MouseButton.LeftButton)
    assert s.save_history
    history.show_position(1)  # Save writes the newest weights whatever is being viewed
    qtbot.waitUntil(lambda: s.viewing_step == steps[1], timeout=2000)
    path = tmp_path / "lenet-run.nnviz"
    save_checkpoint(path, s.to_checkpoint())

    reopened = open_session(str(path), data)
    _assert_view_holds(reopened, s.weight_history.at(steps[-1]))
    panel = shown(HistoryPanel, reopened)
    assert reopened.weight_history.steps() == steps
    assert panel.slider.maximum() == len(steps) - 1 and panel.save_box.isChecked()
    panel.show_position(1)
    qtbot.waitUntil(lambda: reopened.viewing_step == steps[1], timeout=2000)
    _assert_view_holds(reopened, s.weight_history.at(steps[1]))


def test_the_budget_box_thins_the_history_and_shows_the_memory(
    shown, open_session, data, train_and_publish
):
    s = open_session(LENET, data)
    history = shown(HistoryPanel, s)
    train_and_publish(s, data, steps=30, every=2)
    history.refresh()
    per_snapshot = s.weight_history.bytes_used // 16
    assert len(s.weight_history) == 16
    assert history.budget.text() == "256 MB"
    history.budget.setValue(1)  # 1 MB: room for 8 lenet snapshots
    assert s.weight_history.budget_bytes == 1_000_000
    assert len(s.weight_history) == 1_000_000 // per_snapshot
    assert s.weight_history.bytes_used <= 1_000_000
    assert history.refresh()
    assert history.kept.text() == f"{s.weight_history.bytes_used / 1e6:.1f} MB of"
    assert history.slider.maximum() == len(s.weight_history) - 1


def test_starting_training_while_viewing_the_past_trains_on_from_the_newest(
    shown, open_session, data, qtbot, train_and_publish
):
    s = open_session(LENET, data)
    history = shown(HistoryPanel, s)
    start = s.history.last_step
    train_and_publish(s, data, steps=20, every=10)
    history.refresh()
    newest = s.weight_history.at(start + 20)
    history.show_position(0)
    qtbot.waitUntil(lambda: s.viewing_step == start, timeout=2000)

    runner = TrainingRunner(s)
    runner.start(paused=True)
    try:
        assert s.viewing_step is None
        for key, value in s.train_model.state_dict().items():
            np.testing.assert_array_equal(value.numpy(), newest[key], err_msg=key)
    finally:
        assert runner.stop()
    assert history.refresh()
    assert history.live_button.isChecked()


def test_without_a_trainable_model_the_panel_says_why(shown, open_session, data, tmp_path):
    empty = shown(HistoryPanel, Session())
    assert empty.position.text() == "No model loaded"
    assert not empty.slider.isEnabled() and not empty.play_button.isEnabled()

    fresh = shown(HistoryPanel, open_session("lenet", data))
    assert "1 snapshot" in fresh.position.text() and "step 0" in fresh.position.text()
    assert "Train the model" in fresh.note.text()
    assert not fresh.slider.isEnabled()


def test_the_budget_set_is_remembered_for_the_next_run(shown, open_session, data):
    first = shown(HistoryPanel, open_session(LENET, data))
    assert first.budget.value() == 256  # nothing stored yet: the default
    first.budget.setValue(512)
    settings = app_settings()
    settings.sync()  # on disk, for the next start of the app
    assert "budget_mb=512" in Path(settings.fileName()).read_text(encoding="utf-8")

    s = open_session(LENET, data)  # the next run: a new Session and a new panel
    again = shown(HistoryPanel, s)
    assert again.budget.value() == 512
    assert s.weight_history.budget_bytes == 512_000_000


@pytest.mark.parametrize(
    ("stored", "expected_mb"),
    [("lots", 256), ("", 256), ("12.5", 256), (["1", "2"], 256), ("0", 1), (10**9, MAX_BUDGET_MB)],
)
def test_a_bad_stored_budget_falls_back_or_is_clamped(
    shown, open_session, data, stored, expected_mb
):
    app_settings().setValue(BUDGET_SETTING, stored)  # e.g. a hand-edited settings file
    s = open_session(LENET, data)
    errors = []
    s.error.connect(errors.append)
    panel = shown(HistoryPanel, s)
    assert panel.budget.value() == expected_mb
    assert s.weight_history.budget_bytes == expected_mb * 1_000_000
    assert errors == []
