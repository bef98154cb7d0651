"""Strokes are drawn at once, at most 60 frames a second, on the real app window."""

from __future__ import annotations

import time

from PySide6.QtCore import QPoint, Qt

from nnviz.qt.frame_rate import FrameRate


def test_frames_come_at_most_at_the_rate_on_average():
    rate = FrameRate(60.0, burst=2.0)
    drawn, now = 0, 0.0
    while now < 1.0:  # a 500 Hz stream of requests for one second
        if rate.wait(now) == 0.0:
            rate.take(now)
            drawn += 1
        now += 0.002
    assert 60 <= drawn <= 62  # the rate, plus the burst the bucket starts with


def test_a_late_frame_does_not_push_the_next_one_back():
    rate = FrameRate(60.0)
    rate.take(0.0)
    rate.take(0.010)  # drawn late: the second frame of the burst
    assert rate.wait(0.012) > 0  # a third this soon waits...
    assert rate.wait(0.0245) == 0.0  # ...but not a whole frame after the late one


def test_each_move_of_a_50_hz_stroke_is_drawn_before_the_move_returns(window, qtbot):
    """As a mouse sends them: every 20 ms. The first move of a stroke waited for a frame
    slot when frames had to be a fixed 1/60 s apart."""
    canvas_panel = window.panels["canvas"]
    canvas = canvas_panel.canvas
    qtbot.waitExposed(window)
    activations = window.panels["activations"]
    for stroke in range(3):
        canvas.clear()
        x = canvas.width() // 3 + 20 * stroke
        qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(x, canvas.height() // 5))
        for i in range(1, 6):
            qtbot.wait(20)
            start = time.perf_counter()
            y = canvas.height() // 5 + i * canvas.height() // 10
            qtbot.mouseMove(canvas, QPoint(x, y))
            assert canvas_panel.drawing_is_current()
            assert canvas_panel.last_redraw >= start, (stroke, i)
            if activations.is_shown():
                assert activations.last_redraw >= start, (stroke, i)
        qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(x, y))
