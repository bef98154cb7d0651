"""The training runner in the app's window: a run that ends on its own frees the window."""

from __future__ import annotations

from nnviz.state import COMPLETED, FAILED, RUNNING


def _finish_one_epoch(window, qtbot):
    window.session.config.epochs = 1
    window.session.config.batch_size = 64  # 700 digits to train on: 11 steps
    window.train()
    qtbot.waitUntil(lambda: window.session.status == COMPLETED, timeout=20000)


def test_a_completed_run_gives_back_open_and_a_new_run_can_start(window, qtbot):
    _finish_one_epoch(window, qtbot)
    assert not window.runner.active
    assert window.act_open.isEnabled()
    assert window.act_custom.isEnabled()
    assert window.data_menu.menuAction().isEnabled()
    assert window.act_train.isEnabled() and window.act_train.text() == "&Train"
    assert not window.act_stop.isEnabled()
    trained = window.session.history.last_step
    window.session.config.epochs = 1000
    window.train()
    assert window.session.status == RUNNING and window.runner.active
    assert not window.act_open.isEnabled()
    qtbot.waitUntil(lambda: window.session.history.last_step > trained + 3, timeout=10000)


def test_a_failed_run_gives_back_open(window, qtbot):
    window.documents.new_from_preset("mlp")
    window.panels["training"].optimizer.setCurrentText("sgd")
    window.session.config.momentum = 0.0
    window.session.config.lr = 1e12  # the loss blows up within a few steps
    window.train()
    qtbot.waitUntil(lambda: window.session.status == FAILED, timeout=20000)
    assert not window.runner.active
    assert window.act_open.isEnabled() and window.act_custom.isEnabled()
