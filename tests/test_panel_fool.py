"""The Fool it panel, offscreen, with real button clicks on the sample models and MNIST."""

from __future__ import annotations

import functools
import importlib.resources

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from nnviz.core.modelfile import load_model
from nnviz.core.training import TrainConfig, Trainer
from nnviz.qt.panels.fool import INVISIBLE, NO_INPUT, FoolPanel
from nnviz.qt.panels.mosaic import DIVERGING

pytestmark = pytest.mark.usefixtures("row_major_images", "one_torch_thread")

SAMPLES = importlib.resources.files("nnviz.sample_models")
LENET, MLP_3B1B = str(SAMPLES / "lenet.nnviz"), str(SAMPLES / "mlp-3b1b.nnviz")
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def shown(show_panel):
    """Put a Fool panel on screen at the dock's size; closed after the test."""
    return functools.partial(show_panel, FoolPanel)


def _answer(model, image):
    """The class a model gives one (28, 28) image, computed here with plain torch."""
    with torch.inference_mode():
        return int(
            model(torch.from_numpy(np.array(image, np.float32)).reshape(1, 1, 28, 28)).argmax()
        )


def _dimmed(panel):
    return [card.image.opacity() < 1 for card in panel.cards()]


def test_an_invisible_change_makes_the_network_say_something_else(shown, open_session, data, qtbot):
    s = open_session(MLP_3B1B, data)
    panel = shown(s)
    assert panel.original_card.image.image is not None  # the input waits to be fooled
    assert not panel.use_button.isVisible()
    qtbot.mouseClick(panel.fool_button, LEFT)
    r = panel.result
    original = s.current_input.image
    np.testing.assert_array_equal(r.original, original)
    # The network really answers differently on the changed digit.
    assert _answer(s.view_model, original) == r.original_class == data.test.labels[0]
    assert _answer(s.view_model, r.perturbed) == r.new_class != r.original_class
    # ... after a change too small to see.
    change = r.perturbed - original
    assert np.abs(change).max() <= r.epsilon + 1e-6 and r.epsilon <= INVISIBLE
    assert r.perturbed.min() >= 0 and r.perturbed.max() <= 1
    # Side by side: the original, the change amplified in diverging colours, the new digit.
    np.testing.assert_array_equal(panel.original_card.image.image, original)
    np.testing.assert_allclose(panel.change_card.image.image, change, atol=1e-6)
    assert panel.change_card.image.getColorMap().name == DIVERGING
    assert tuple(panel.change_card.image.levels) == pytest.approx((-r.epsilon, r.epsilon))
    np.testing.assert_array_equal(panel.perturbed_card.image.image, r.perturbed)
    p_now = r.new_probabilities[r.new_class]
    assert panel.perturbed_card.title.text() == f"Changed: {r.new_class} ({p_now:.0%})"
    assert panel.original_card.title.text().startswith(f"Original: {r.original_class} (")
    size = np.linalg.norm(change) / np.linalg.norm(original)
    caption = panel.change_card.caption.text()
    assert f"more than {r.epsilon:.3f}" in caption and f"{size:.1%} of the digit (L2)" in caption
    assert panel.verdict.text() == (
        f"The two digits look the same to you; the network now says <b>{r.new_class}</b>."
    )
    assert panel.use_button.isEnabled() and panel.again_button.isEnabled()
    assert not any(_dimmed(panel))


def test_the_perturbed_digit_becomes_every_views_input_and_can_be_fooled_again(
    shown, open_session, data, qtbot
):
    s = open_session(MLP_3B1B, data, index=3)
    panel = shown(s)
    qtbot.mouseClick(panel.fool_button, LEFT)
    first = panel.result
    assert first.fooled
    qtbot.mouseClick(panel.use_button, LEFT)
    current = s.current_input
    np.testing.assert_array_equal(current.image, first.perturbed)
    assert current.label == data.test.labels[3]  # still truly the same digit
    assert current.description == "perturbed MNIST test #3"
    assert int(np.argmax(s.probabilities())) == first.new_class  # what every view now says
    panel.refresh()
    assert all(_dimmed(panel)) and not panel.use_button.isEnabled()
    assert "now the input of every view" in panel.verdict.text()
    qtbot.mouseClick(panel.again_button, LEFT)
    second = panel.result
    np.testing.assert_array_equal(second.original, first.perturbed)
    assert second.original_class == first.new_class
    assert not any(_dimmed(panel)) and panel.stale_reason is None


def test_a_result_is_greyed_out_when_the_input_weights_or_units_change(
    shown, open_session, data, show_digit, qtbot
):
    s = open_session(MLP_3B1B, data)
    panel = shown(s)
    qtbot.mouseClick(panel.fool_button, LEFT)
    show_digit(s, data, 1)
    assert panel.refresh()
    assert panel.verdict.text() == "The input changed: press Fool the network again."
    assert all(_dimmed(panel)) and not panel.use_button.isEnabled()
    assert not panel.original_card.title.isEnabled()

    qtbot.mouseClick(panel.fool_button, LEFT)
    assert not any(_dimmed(panel)) and panel.use_button.isEnabled()
    trainer = Trainer(
        s.train_model, data, TrainConfig(batch_size=32, epochs=1, snapshot_interval_s=0.0)
    )
    for report in trainer.steps():
        if report.step == 3:
            break
    s.publish(trainer.latest_snapshot(), trainer.poll())
    assert panel.refresh()
    assert panel.verdict.text() == "The weights changed: press Fool the network again."

    qtbot.mouseClick(panel.fool_button, LEFT)
    s.switch_off("fc1", 2)
    assert panel.refresh()
    assert panel.verdict.text().startswith("The switched-off units changed")
    s.set_model(load_model(LENET))  # another model: nothing of the old result is left
    panel.refresh()
    assert panel.result is None and panel.change_card.showing_note()


def test_the_attack_sees_the_units_switched_off(shown, open_session, data, qtbot):
    s = open_session(MLP_3B1B, data)
    panel = shown(s)
    whole = s.probabilities()
    s.switch_off("fc1", 7)
    assert not np.allclose(whole, s.probabilities())
    qtbot.mouseClick(panel.fool_button, LEFT)
    r = panel.result
    np.testing.assert_allclose(r.original_probabilities, s.probabilities(), rtol=1e-5, atol=1e-7)
    assert all(not m._forward_hooks for m in s.view_model.modules())
    qtbot.mouseClick(panel.use_button, LEFT)
    assert int(np.argmax(s.probabilities())) == r.new_class


def test_a_small_cap_may_not_fool_a_cnn_and_a_larger_one_does(shown, open_session, data, qtbot):
    s = open_session(LENET, data)
    panel = shown(s)
    panel.max_change.setValue(0.02)
    qtbot.mouseClick(panel.fool_button, LEFT)
    r = panel.result
    assert not r.fooled and r.epsilon <= 0.02 + 1e-6
    assert "did not change the answer" in panel.verdict.text()
    assert "allow a larger change" in panel.verdict.text()
    assert not panel.use_button.isEnabled()
    assert _answer(s.view_model, r.perturbed) == r.original_class

    panel.max_change.setValue(0.3)
    qtbot.mouseClick(panel.again_button, LEFT)
    r = panel.result
    assert r.fooled and r.epsilon <= 0.3 + 1e-6
    assert _answer(s.view_model, r.perturbed) == r.new_class != r.original_class
    assert f"now says <b>{r.new_class}</b>" in panel.verdict.text()


def test_without_an_input_the_button_waits_for_one(shown, open_session, data, show_digit):
    s = open_session(MLP_3B1B, data, index=None)
    panel = shown(s)
    assert not panel.fool_button.isEnabled()
    assert panel.pages.currentWidget() is panel.message and panel.message.text() == NO_INPUT
    show_digit(s, data, 0)
    assert panel.refresh()
    assert panel.fool_button.isEnabled() and panel.pages.currentIndex() == 0
    np.testing.assert_array_equal(panel.original_card.image.image, s.current_input.image)
    assert not panel.grab().isNull()
