"""The ten probability bars: what they paint, read back from the widget's pixels."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

from nnviz.qt.panels.prediction_bars import HIGHLIGHT, PredictionBars


def _orange_rows(bars: PredictionBars) -> dict[int, int]:
    """Per class row, how many pixels along its middle line are the highlight colour."""
    image = bars.grab().toImage()
    n = len(bars.classes)
    row = (bars.height() - 12) / n
    out = {}
    for i in range(n):
        y = int(6 + (i + 0.5) * row)
        out[i] = sum(image.pixelColor(x, y) == HIGHLIGHT for x in range(bars.width()))
    return out


def test_the_top_class_is_a_long_orange_bar_and_labelled(qtbot):
    bars = PredictionBars()
    qtbot.addWidget(bars)
    bars.resize(300, 250)
    probs = np.full(10, 0.01, np.float32)
    probs[7] = 0.91
    bars.show_probabilities(probs)
    assert bars.top_class() == 7
    orange = _orange_rows(bars)
    assert orange[7] > 150  # most of the width, less the names and the label room
    assert all(orange[i] == 0 for i in range(10) if i != 7)
    labels = bars.labels()
    assert labels[7] == "91.0%" and labels[0] == "1.0%"


def test_a_message_replaces_the_bars(qtbot):
    bars = PredictionBars()
    qtbot.addWidget(bars)
    bars.resize(300, 250)
    bars.show_probabilities(np.eye(10, dtype=np.float32)[3])
    bars.show_message("no ink")
    assert bars.top_class() is None and bars.message == "no ink"
    assert not any(_orange_rows(bars).values())
    assert all(text == "" for text in bars.labels())


def test_other_class_names_and_the_zero_labels(qtbot):
    bars = PredictionBars()
    qtbot.addWidget(bars)
    bars.resize(300, 200)
    bars.set_classes(["cat", "dog", "fish"])
    bars.show_probabilities(np.array([0.0, 0.25, 0.75], np.float32))
    assert bars.labels() == ["", "25.0%", "75.0%"]  # 0.0% is left out
    assert _orange_rows(bars)[2] > 100
    assert bars.grab().toImage().pixelColor(1, 1) == QColor(bars.background)
