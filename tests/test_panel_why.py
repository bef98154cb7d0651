"""The Why panel (saliency and Grad-CAM), offscreen, on the sample models and real MNIST."""

from __future__ import annotations

import copy
import functools
import importlib.resources

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from nnviz.core.explain import default_cam_layer, grad_cam, saliency
from nnviz.core.modelfile import load_model
from nnviz.core.training import TrainConfig, Trainer
from nnviz.qt.panels.feature_maps import FeatureMapsPanel
from nnviz.qt.panels.overlay import heat_colours, signed_colours
from nnviz.qt.panels.why import NO_CONV, NO_INPUT, WhyPanel

pytestmark = pytest.mark.usefixtures("row_major_images", "one_torch_thread")

SAMPLES = importlib.resources.files("nnviz.sample_models")
LENET, MLP_3B1B = str(SAMPLES / "lenet.nnviz"), str(SAMPLES / "mlp-3b1b.nnviz")
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def shown(show_panel):
    """Put a Why panel on screen at the dock's size; closed after the test."""
    return functools.partial(show_panel, WhyPanel)


def _predicted(session):
    return int(np.argmax(session.probabilities()))


def test_saliency_explains_the_predicted_class_then_the_one_picked(shown, open_session, data):
    s = open_session(LENET, data)
    panel = shown(s)
    image, predicted = s.current_input.image, _predicted(s)
    assert predicted == data.test.labels[0]  # the sample reads MNIST test #0 right
    assert panel.class_choice.currentText() == f"predicted ({predicted})"
    assert panel.target == predicted
    np.testing.assert_array_equal(panel.shown_saliency, saliency(s.view_model, image, predicted))
    assert panel.saliency_card.title.text() == f"Saliency for {predicted}"
    assert f"changes the score for {predicted} the most" in panel.saliency_card.caption.text()
    # The heat lies over the digit, strongest where the gradient is largest.
    overlay = panel.saliency_card.overlay.image
    np.testing.assert_array_equal(overlay, heat_colours(panel.shown_saliency, 0.75))
    peak = np.unravel_index(np.argmax(panel.shown_saliency), image.shape)
    assert overlay[peak][3] == round(0.75 * 255)
    np.testing.assert_array_equal(panel.input_card.image.image, image)

    # "Which pixels pushed towards 3?": each class is listed with its probability.
    probabilities = s.probabilities()
    three = panel.class_choice.findData(3)
    assert panel.class_choice.itemText(three) == f"3  ({probabilities[3]:.1%})"
    panel.class_choice.setCurrentIndex(three)
    assert panel.target == 3
    expected = saliency(s.view_model, image, 3)
    np.testing.assert_array_equal(panel.shown_saliency, expected)
    assert not np.allclose(expected, saliency(s.view_model, image, predicted))
    assert panel.saliency_card.title.text() == "Saliency for 3"
    assert panel.cam_card.title.text() == "Grad-CAM for 3"
    np.testing.assert_array_equal(panel.shown_cam, grad_cam(s.view_model, image, 3))
    panel.choose_class(None)
    assert panel.target == predicted


def test_the_signed_toggle_shows_towards_and_away_in_the_signed_colours(
    shown, open_session, data, qtbot
):
    s = open_session(LENET, data, index=1)
    panel = shown(s)
    image, predicted = s.current_input.image, _predicted(s)
    qtbot.mouseClick(panel.signed, LEFT)
    assert panel.signed.isChecked()
    signed = saliency(s.view_model, image, predicted, signed=True)
    np.testing.assert_array_equal(panel.shown_saliency, signed)
    assert signed.min() < 0 < signed.max()
    overlay = panel.saliency_card.overlay.image
    np.testing.assert_array_equal(overlay, signed_colours(signed, 0.75))
    towards = overlay[np.unravel_index(np.argmax(signed), image.shape)]
    away = overlay[np.unravel_index(np.argmin(signed), image.shape)]
    assert towards[0] > towards[2] and away[2] > away[0]  # red up, blue down
    caption = panel.saliency_card.caption.text()
    assert f"pushes towards {predicted}" in caption and f"away from {predicted}" in caption
    from nnviz.qt import colours

    scheme = colours.current()  # the caption names the colours the overlay is drawn in
    assert f"<b>{scheme.positive_word}</b>" in caption
    assert f"<b>{scheme.negative_word}</b>" in caption
    qtbot.mouseClick(panel.signed, LEFT)
    np.testing.assert_array_equal(panel.shown_saliency, saliency(s.view_model, image, predicted))


def test_grad_cam_uses_the_last_conv_layer_or_the_one_picked(shown, open_session, data):
    s = open_session(LENET, data)
    panel = shown(s)
    image, predicted = s.current_input.image, _predicted(s)
    layers = [panel.layer_choice.itemData(i) for i in range(panel.layer_choice.count())]
    assert layers == ["conv1", "conv2", "relu2"]
    assert panel.cam_layer() == default_cam_layer(s.view_model) == "relu2"
    assert panel.layer_choice.currentText() == "relu2 (default)"
    cam = grad_cam(s.view_model, image, predicted, "relu2")
    np.testing.assert_array_equal(panel.shown_cam, cam)
    np.testing.assert_array_equal(panel.cam_card.overlay.image, heat_colours(cam, 0.75))
    assert "features of relu2 found evidence" in panel.cam_card.caption.text()
    panel.layer_choice.setCurrentIndex(0)
    np.testing.assert_array_equal(
        panel.shown_cam, grad_cam(s.view_model, image, predicted, "conv1")
    )
    assert "features of conv1" in panel.cam_card.caption.text()


def test_the_opacity_slider_recolours_without_recomputing(shown, open_session, data):
    s = open_session(LENET, data)
    panel = shown(s)
    maps = panel.shown_saliency
    panel.opacity.setValue(30)
    assert panel.shown_saliency is maps  # the same maps, only drawn lighter
    for card, values in ((panel.saliency_card, maps), (panel.cam_card, panel.shown_cam)):
        alpha = card.overlay.image[..., 3]
        assert alpha.max() == round(0.3 * 255)
        np.testing.assert_array_equal(card.overlay.image, heat_colours(values, 0.3))
    panel.opacity.setValue(0)
    assert not panel.saliency_card.overlay.image[..., 3].any()


def test_the_maps_follow_the_input_and_training(shown, open_session, data, show_digit):
    s = open_session(LENET, data)
    panel = shown(s)
    show_digit(s, data, 2)
    assert panel.stale and panel.refresh()
    image = s.current_input.image
    np.testing.assert_array_equal(panel.shown_saliency, saliency(s.view_model, image))
    np.testing.assert_array_equal(panel.shown_cam, grad_cam(s.view_model, image))
    assert panel.input_about.text() == "MNIST test #2"

    s = open_session("lenet", data)  # untrained: the weights move a lot in a few steps
    panel = shown(s)
    before = panel.shown_saliency.copy()
    trainer = Trainer(
        s.train_model, data, TrainConfig(batch_size=32, epochs=1, snapshot_interval_s=0.0)
    )
    for report in trainer.steps():
        if report.step == 20:
            break
    s.publish(trainer.latest_snapshot(), trainer.poll())
    assert panel.stale and panel.refresh()
    after = saliency(s.view_model, s.current_input.image, _predicted(s))
    np.testing.assert_array_equal(panel.shown_saliency, after)
    assert not np.allclose(before, after)


def test_switched_off_units_change_the_explained_model(shown, open_session, data):
    s = open_session(MLP_3B1B, data)
    panel = shown(s)
    before = panel.shown_saliency.copy()
    s.switch_off("fc1", 5)
    assert panel.stale and panel.refresh()
    # The same network with that unit's weights and bias zeroed gives 0 there too.
    cut = copy.deepcopy(s.view_model)
    with torch.no_grad():
        cut.fc1.weight[5] = 0
        cut.fc1.bias[5] = 0
    image = s.current_input.image
    with torch.no_grad():
        cut_predicted = int(cut(torch.from_numpy(image.copy()).reshape(1, 1, 28, 28)).argmax())
    assert panel.target == cut_predicted == _predicted(s)
    expected = saliency(cut, image, cut_predicted)
    np.testing.assert_allclose(panel.shown_saliency, expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(before, expected)
    assert "with 1 unit switched off" in panel.unit_note.text()
    # Nothing stays hooked on the views' model once the maps are drawn.
    assert all(not m._forward_hooks for m in s.view_model.modules())
    s.restore_all()
    panel.refresh()
    np.testing.assert_array_equal(panel.shown_saliency, before)
    assert panel.unit_note.text() == ""


def test_a_model_without_conv_layers_says_so_and_keeps_saliency(shown, open_session, data):
    s = open_session(MLP_3B1B, data)
    panel = shown(s)
    assert panel.cam_problem() == NO_CONV and panel.cam_layer() is None
    assert panel.cam_card.showing_note() and panel.cam_card.note.text() == NO_CONV
    assert not panel.layer_choice.isVisible()
    assert panel.shown_cam is None
    np.testing.assert_array_equal(
        panel.shown_saliency, saliency(s.view_model, s.current_input.image, _predicted(s))
    )
    # A conv model loaded afterwards gets its Grad-CAM back.
    s.set_model(load_model(LENET))
    panel.refresh()
    assert panel.cam_problem() is None and not panel.cam_card.showing_note()
    assert panel.layer_choice.isVisible() and panel.cam_layer() == "relu2"
    np.testing.assert_array_equal(
        panel.shown_cam, grad_cam(s.view_model, s.current_input.image, _predicted(s))
    )


class _SmallCnn(torch.nn.Module):
    """A user's own CNN (not a Sequential): its Grad-CAM is stretched over the input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.relu = torch.nn.ReLU()
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def _layer_choices(panel):
    return [panel.layer_choice.itemData(i) for i in range(panel.layer_choice.count())]


def test_a_torchscript_model_gets_grad_cam_on_the_layers_feature_maps_shows(
    show_panel, shown, open_session, data, tmp_path
):
    torch.manual_seed(0)
    module = _SmallCnn().eval()
    path = tmp_path / "small_cnn.pt"
    torch.jit.trace(module, torch.zeros(1, 1, 28, 28)).save(str(path))
    s = open_session(str(path), data)
    assert s.loaded.kind == "torchscript"
    panel = shown(s)
    maps = show_panel(FeatureMapsPanel, s)
    assert panel.cam_problem() is None and not panel.cam_card.showing_note()
    assert _layer_choices(panel) == ["conv", "relu"] and panel.cam_layer() == "relu"
    assert set(_layer_choices(panel)) <= set(maps.layer_names())  # the two views agree
    image, predicted = s.current_input.image, _predicted(s)
    # The same Grad-CAM as the module that was traced gives, read through hooks.
    for index, layer in enumerate(_layer_choices(panel)):
        panel.layer_choice.setCurrentIndex(index)
        expected = grad_cam(module, image, predicted, layer)
        assert expected.max() == 1.0
        np.testing.assert_allclose(panel.shown_cam, expected, atol=1e-5)
        assert f"features of {layer} found evidence" in panel.cam_card.caption.text()


def test_an_exported_model_gets_saliency_and_grad_cam(shown, open_session, data, exported_lenet):
    module = load_model(LENET).module  # what was exported: the reference
    s = open_session(exported_lenet, data)
    assert s.loaded.kind == "export"
    panel = shown(s)
    assert panel.cam_problem() is None and not panel.cam_card.showing_note()
    assert _layer_choices(panel) == ["conv1", "conv2", "relu2"]
    assert panel.cam_layer() == "relu2"
    image, predicted = s.current_input.image, _predicted(s)
    np.testing.assert_allclose(
        panel.shown_saliency, saliency(module, image, predicted), rtol=1e-4, atol=1e-6
    )
    # conv1's maps are as large as the input, so they line up without the layer
    # geometry that only a plain module gives; the deeper maps are stretched over it.
    panel.layer_choice.setCurrentIndex(0)
    np.testing.assert_allclose(
        panel.shown_cam, grad_cam(module, image, predicted, "conv1"), atol=1e-5
    )


def test_without_an_input_it_asks_for_one(shown, open_session, data, show_digit):
    s = open_session(LENET, data, index=None)
    panel = shown(s)
    assert panel.pages.currentWidget() is panel.message
    assert panel.message.text() == NO_INPUT
    show_digit(s, data, 0)
    assert panel.refresh()
    assert panel.pages.currentIndex() == 0 and panel.shown_saliency is not None


def test_dark_and_light_palettes(shown, open_session, data):
    s = open_session(LENET, data)
    panel = shown(s)
    for base in (QColor(30, 30, 34), QColor(250, 250, 250)):
        palette = QPalette(panel.palette())
        palette.setColor(QPalette.ColorRole.Base, base)
        panel.setPalette(palette)
        panel.refresh()
        for card in (panel.input_card, panel.saliency_card, panel.cam_card):
            assert card.graphics.backgroundBrush().color() == base
    assert not panel.grab().isNull()
