"""Freed memory goes back to the system after a model switch (glibc's malloc_trim)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from nnviz.core.memory import give_back_freed_memory


def _resident_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_memory_leaves_the_process():
    # 3,000 arrays of 48 KB come from the heap (not mmap); one kept at the end pins the
    # top, so glibc cannot shrink the heap by itself when the rest are freed.
    arrays = [np.ones(12_000, np.float32) for _ in range(3_000)]
    keep = np.ones(12_000, np.float32)
    del arrays
    before = _resident_mb()
    assert give_back_freed_memory()
    assert _resident_mb() < before - 60  # of the ~140 MB freed
    assert keep.sum() == 12_000


def test_a_model_switch_gives_memory_back_once_the_views_have_redrawn(window, qtbot):
    from nnviz.core.modelfile import load_model
    from nnviz.qt import main_window

    calls = []
    window._give_back_memory.timeout.connect(lambda: calls.append(True))
    window.session.set_model(load_model("mlp", seed=0))
    assert window._give_back_memory.isActive() and not calls
    assert window._give_back_memory.interval() == main_window.GIVE_BACK_MEMORY_MS
    qtbot.waitUntil(lambda: bool(calls), timeout=main_window.GIVE_BACK_MEMORY_MS + 2000)
