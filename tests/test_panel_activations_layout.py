"""The activations panel shares its height by what each part needs, and the output bars'
labels never overlap, even for many classes in a short dock."""

from __future__ import annotations

import importlib.resources
import string

import numpy as np
import pytest

from nnviz.core.modelfile import LoadedModel
from nnviz.core.models import ArchSpec, build_model
from nnviz.qt.panels.activations import USABLE_CELL_PX, ActivationsPanel
from nnviz.qt.panels.prediction_bars import MARGIN, ROOMY_ROW_PX, PredictionBars

SAMPLES = importlib.resources.files("nnviz.sample_models")
LETTERS = list(string.ascii_uppercase)  # 26 classes, as an EMNIST letters model has


def letters_model() -> LoadedModel:
    """A real 26-class MLP on 28x28 images (untrained: its probabilities spread out)."""
    spec = ArchSpec(
        name="letters",
        layers=[{"type": "dense", "units": 32, "activation": "relu"}],
        num_classes=26,
    )
    return LoadedModel(build_model(spec, seed=0), "spec", None, spec, class_names=LETTERS)


def assert_apart(centres: list[float], height: float) -> None:
    """Lines of text ``height`` tall centred at ``centres`` do not overlap."""
    centres = sorted(centres)
    for a, b in zip(centres, centres[1:], strict=False):
        assert b - a >= height - 1e-6, (a, b, height)


def assert_labels_apart(bars: PredictionBars) -> None:
    row, text = bars.row_height(), bars.text_height()
    named = bars.named_classes()
    assert named and named[0] == 0
    assert_apart([MARGIN + (i + 0.5) * row for i in named], text)
    placed = bars.placed_labels()
    assert_apart([MARGIN + (i + 0.5) * row for i, _ in placed], text)
    assert bars.top_class() in [i for i, _ in placed]  # the pick is always labelled
    bars.grab()  # and it paints


@pytest.mark.parametrize("name", ["lenet", "mlp-3b1b"])
@pytest.mark.parametrize("size", [(500, 300), (420, 640), (600, 400)])
def test_the_height_goes_where_it_is_needed(show_panel, open_session, data, name, size):
    panel = show_panel(ActivationsPanel, open_session(str(SAMPLES / f"{name}.nnviz"), data), size)
    cells, bars = panel.cells, panel.bars
    # Every hidden layer's cells at a usable size: the output bars took 60% of the
    # panel and left lenet's strips 3 px rows.
    assert cells.scale >= USABLE_CELL_PX
    # The bars no taller than roomy rows need, and at least a few pixels a class.
    assert bars.height() <= bars.height_for(max(ROOMY_ROW_PX, bars.text_height() + 2)) + 1
    assert bars.row_height() >= 5
    # The strips drawn whole, above the bars.
    last = cells.strips[-1].rect
    assert cells.to_widget(last.bottomRight()).y() <= cells.height() + 1
    assert_labels_apart(bars)


def test_lenet_at_600_by_400_shares_the_height(show_panel, open_session, data):
    panel = show_panel(ActivationsPanel, open_session(str(SAMPLES / "lenet.nnviz"), data))
    panel.resize(600, 400)
    panel.refresh(force=True)
    # Both parts have room: every class named, and cells far above the minimum.
    assert panel.bars.named_classes() == list(range(10))
    assert panel.cells.scale >= 16
    assert panel.bars.height() < 0.5 * panel.height()


@pytest.mark.parametrize("size", [(500, 300), (420, 640), (600, 900)])
def test_many_class_labels_never_overlap(show_panel, open_session, data, size):
    panel = show_panel(ActivationsPanel, open_session(letters_model(), data), size)
    bars = panel.bars
    assert bars.classes == LETTERS and len(bars.probabilities) == 26
    # An untrained model: every probability near 1/26, none of them "0.0%".
    assert sum(bool(text) for text in bars.labels()) == 26
    assert_labels_apart(bars)
    if size[1] < 640:
        assert len(bars.named_classes()) < 26  # every k-th name where rows are short
    assert panel.cells.scale >= USABLE_CELL_PX


@pytest.mark.parametrize("height", [120, 200, 400, 700])
def test_prediction_bars_alone_place_labels_apart(qtbot, height):
    bars = PredictionBars()
    qtbot.addWidget(bars)
    bars.resize(300, height)
    bars.show()
    qtbot.waitExposed(bars)
    probs = np.exp(np.linspace(0, 2, 26)).astype(np.float32)
    bars.show_prediction(LETTERS, probs / probs.sum())
    bars.true_class = 3
    assert_labels_apart(bars)
    placed = dict(bars.placed_labels())
    assert 3 in placed and placed[3].endswith("the true label")
    if height >= bars.height_for(bars.text_height()):
        assert bars.named_classes() == list(range(26))  # room for all: all named
