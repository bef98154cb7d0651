"""The suite's own qtbot (conftest.py) keeps every widget a test shows alive until teardown."""

from __future__ import annotations

import gc
import weakref

from PySide6.QtWidgets import QWidget


def test_a_shown_widget_held_only_by_a_cycle_outlives_the_test_body(qtbot):
    def show_one():
        widget = QWidget()
        widget.itself = widget  # a reference cycle, as a panel's own connections make one
        qtbot.addWidget(widget)
        widget.show()
        return weakref.ref(widget)

    shown = show_one()
    gc.collect()  # what pytest-qt's weak reference alone let free while the widget painted
    assert shown() is not None and shown().isVisible()
