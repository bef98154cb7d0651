"""Regression test for PySide6 6.12.0 on CPython 3.11 (shared/design/PITFALLS.md): it
dropped a reference to None on every void call and to True on every emit, which kills
a live pyqtgraph panel within seconds ("Fatal Python error: none_dealloc")."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel


class _Emitter(QObject):
    changed = Signal(bool)


def test_void_calls_and_emits_keep_refcounts(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    emitter = _Emitter()
    received = []
    emitter.changed.connect(received.append)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(2000):
        label.setText("x")
        label.update()
        emitter.changed.emit(True)
    assert len(received) == 2000
    # Other threads may add references; a leak shows as a fall of about 2,000.
    assert sys.getrefcount(None) >= none_before - 100
    assert sys.getrefcount(True) >= true_before - 100
