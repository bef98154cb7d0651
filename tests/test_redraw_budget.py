"""The GUI thread's budget for following training that runs flat out."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nnviz.qt.redraw_budget import RedrawBudget


def test_overspending_waits_until_the_share_has_paid_it_back():
    budget = RedrawBudget(share=0.1, burst_s=0.05)
    assert budget.allow(0.0, 0.0, limited=True)
    # 40 ms of CPU in 100 ms of wall time: 10 ms earned, 40 spent, 20 left.
    assert budget.allow(0.1, 0.04, limited=True)
    assert budget.credit == pytest.approx(0.02)
    # 60 ms more in the next 100 ms: 30 ms in debt, no redraws.
    assert not budget.allow(0.2, 0.10, limited=True)
    assert budget.credit == pytest.approx(-0.03)
    # Idle (no CPU used) for 200 ms pays back 20 ms: still in debt; 300 ms is enough.
    assert not budget.allow(0.4, 0.10, limited=True)
    assert budget.allow(0.5, 0.10, limited=True)


def test_credit_and_debt_are_both_bounded():
    budget = RedrawBudget(share=0.1, burst_s=0.05)
    budget.allow(0.0, 0.0, limited=True)
    budget.allow(100.0, 0.0, limited=True)  # a long idle time saves no more than a burst
    assert budget.credit == pytest.approx(0.05)
    # A one-off half second (a model load rebuilding every panel) owes one burst, not 0.45 s.
    assert not budget.allow(100.5, 0.5, limited=True)
    assert budget.credit == pytest.approx(-0.05)
    assert budget.allow(101.1, 0.5, limited=True)


def test_no_limit_unless_training_runs_flat_out():
    budget = RedrawBudget(share=0.1, burst_s=0.05)
    budget.allow(0.0, 0.0, limited=True)
    assert not budget.allow(0.1, 1.0, limited=True)
    assert budget.allow(0.2, 2.0, limited=False)  # paused: the views may use what they need
    assert budget.credit == pytest.approx(0.05)


def test_views_wait_while_over_budget_and_follow_once_paused(window, qtbot):
    loss = window.panels["loss"]
    window.train()
    qtbot.waitUntil(lambda: window.runner.flat_out, timeout=5000)
    # A budget that earns nothing, primed as if the GUI thread had just used 10 s of CPU:
    # it stays a full second in debt.
    window.redraw_budget = RedrawBudget(share=0.0, burst_s=1.0)
    window.redraw_budget.allow(time.perf_counter(), time.thread_time() - 10.0, limited=True)
    window.refresh_panels()
    assert window.redraw_budget.credit == -1.0
    qtbot.waitUntil(lambda: loss.point_count() > 20 and loss.stale, timeout=10000)
    drawn = loss.last_redraw
    qtbot.wait(300)  # nine frame ticks
    assert loss.last_redraw == drawn and loss.stale

    window.pause()
    assert not window.runner.flat_out
    qtbot.waitUntil(lambda: loss.last_redraw > drawn, timeout=2000)


def test_a_watchable_pace_is_not_flat_out(window, qtbot):
    window.session.config.steps_per_second = 20
    window.train()
    qtbot.waitUntil(lambda: window.runner.active, timeout=5000)
    assert not window.runner.flat_out
    window.runner.set_pace(None)
    qtbot.waitUntil(lambda: window.runner.flat_out, timeout=5000)


def test_views_that_follow_training_wait_while_a_person_draws(window, qtbot):
    from nnviz.qt.main_window import HANDS_ON_S

    loss = window.panels["loss"]
    window.refresh_panels()
    loss.mark_stale()
    window.panels["canvas"].canvas.set_ink(np.ones((280, 280), np.float32) * 0.5)
    assert time.perf_counter() - window._last_prompt < HANDS_ON_S  # the drawing was shown
    drawn = loss.last_redraw
    window.refresh_panels()
    assert loss.stale and loss.last_redraw == drawn  # held back during the stroke
    qtbot.wait(round(HANDS_ON_S * 1000) + 50)
    window.refresh_panels()
    assert not loss.stale and loss.last_redraw > drawn


def test_training_news_waits_while_a_person_draws(window, qtbot):
    window.train()
    qtbot.waitUntil(lambda: (window.session.snapshot or None) is not None, timeout=10000)
    first = window.session.snapshot
    qtbot.waitUntil(lambda: window.session.snapshot is not first, timeout=5000)  # 3 a second
    window.runner.hold(1.0)
    # ... and the trainer leaves out the layer statistics nothing would show meanwhile.
    assert window.runner.trainer._stats_wait_until > time.perf_counter() + 0.5
    held = window.session.snapshot
    qtbot.wait(700)  # two snapshots' time: none is taken in
    assert window.session.snapshot is held
    qtbot.waitUntil(lambda: window.session.snapshot is not held, timeout=3000)
    assert window.session.snapshot.step > held.step
