"""The Teach & dream panel, offscreen, with real buttons, the bundled samples and real MNIST."""

from __future__ import annotations

import copy
import importlib.resources
import threading

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from nnviz.core.data import load_splits, to_tensor
from nnviz.core.dream import unit_activation, visualize_unit
from nnviz.core.errors import NnvizError
from nnviz.core.evaluate import evaluate, predict_probabilities
from nnviz.core.explain import class_probabilities
from nnviz.core.modelfile import load_model
from nnviz.core.snapshot import Snapshot, frozen_copy
from nnviz.qt.panels.filters import FiltersPanel
from nnviz.qt.panels.teach import TeachPanel
from nnviz.qt.panels.teach_nudge import OUTDATED
from nnviz.state import PAUSED, RUNNING, STOPPED, Session

pytestmark = pytest.mark.usefixtures("row_major_images")

SAMPLES = importlib.resources.files("nnviz.sample_models")
LENET = str(SAMPLES / "lenet.nnviz")
CLICK = Qt.MouseButton.LeftButton


@pytest.fixture(scope="module")
def mnist():
    """All of real MNIST: 55,000 digits to train on and the 10,000 test digits."""
    return load_splits("mnist", n_val=5000, seed=0)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _wait_until_taught(qtbot, panel):
    qtbot.waitUntil(lambda: not panel.lesson.job.busy, timeout=60_000)
    panel.refresh(force=True)


# ----- teach the mistake -------------------------------------------------------------------
def test_teaching_a_wrong_digit_makes_it_right_without_forgetting_and_undo_restores(
    qtbot, show_panel, open_session, mnist
):
    s = open_session(LENET, mnist, index=None)
    test = mnist.test
    predicted = predict_probabilities(s.view_model, to_tensor(test.images)).argmax(1)
    index = int(np.flatnonzero(predicted != test.labels)[0])  # the first real mistake
    label, wrong = int(test.labels[index]), int(predicted[index])
    s.set_input(test.images[index] / 255.0, label, f"MNIST test #{index}")
    panel = show_panel(TeachPanel, s)
    filters = show_panel(FiltersPanel, s, size=(420, 500))  # another view, to see it follow
    lesson = panel.lesson
    assert lesson.bars.top_class() == wrong and "wrong" in lesson.answer_label.text()
    assert lesson.label_combo.currentData() == label  # the true label, chosen for the person
    assert not lesson.undo_button.isEnabled()
    before, accuracy = _state(s.view_model), evaluate(s.view_model, test).accuracy
    changes = []
    s.snapshot_changed.connect(changes.append)

    qtbot.mouseClick(lesson.teach_button, CLICK)
    assert lesson.job.busy and not lesson.teach_button.isEnabled()  # off the GUI thread
    _wait_until_taught(qtbot, panel)

    assert int(np.argmax(s.probabilities())) == label
    assert lesson.bars.top_class() == label and "right" in lesson.answer_label.text()
    taught_accuracy = evaluate(s.view_model, test).accuracy
    assert accuracy - taught_accuracy <= 0.005, (index, accuracy, taught_accuracy)
    # Every holder of the weights has the taught ones: training goes on from them, the
    # history keeps them as the run's latest state, and Save would write them.
    taught = _state(s.view_model)
    assert not _same(taught, before) and _same(_state(s.train_model), taught)
    newest = s.weight_history.newest
    assert all(np.array_equal(newest.weights[k], frozen_copy(v)) for k, v in taught.items())
    assert len(changes) == 1 and changes[0] is s.snapshot and s.dirty
    outcome, steps = lesson.outcome.text(), lesson.lesson.result.steps
    assert f"after: <b>{label} (" in outcome and f"{steps} step" in outcome
    assert "test digits" in lesson.accuracy.text()
    assert filters.refresh()
    conv1 = taught["conv1.weight"].numpy()
    np.testing.assert_array_equal(filters._shown, conv1)

    assert lesson.undo_button.isEnabled()
    qtbot.mouseClick(lesson.undo_button, CLICK)
    assert _same(_state(s.view_model), before) and _same(_state(s.train_model), before)
    assert len(changes) == 2
    panel.refresh(force=True)
    assert int(np.argmax(s.probabilities())) == wrong and lesson.bars.top_class() == wrong
    assert evaluate(s.view_model, test).accuracy == accuracy
    assert filters.refresh()
    np.testing.assert_array_equal(filters._shown, before["conv1.weight"].numpy())
    assert not lesson.undo_button.isEnabled() and "Undone" in lesson.outcome.text()


def test_undo_is_withdrawn_once_training_moves_on_or_the_model_changes(
    qtbot, show_panel, open_session, data
):
    s = open_session(LENET, data)
    panel = show_panel(TeachPanel, s)
    lesson = panel.lesson
    wrong = (int(np.argmax(s.probabilities())) + 1) % 10
    lesson.label_combo.setCurrentIndex(wrong)  # teach it something it does not say
    qtbot.mouseClick(lesson.teach_button, CLICK)
    _wait_until_taught(qtbot, panel)
    assert lesson.undo_button.isEnabled()
    # The trainer's next snapshot: undoing now would throw its step away.
    weights = {k: frozen_copy(v) for k, v in s.view_model.state_dict().items()}
    s.publish(Snapshot(step=1, epoch=0, optimizer_step=1, weights=weights, status=STOPPED), [])
    panel.refresh(force=True)
    assert not lesson.undo_button.isEnabled()

    qtbot.mouseClick(lesson.teach_button, CLICK)  # the same answer again: nothing to teach
    _wait_until_taught(qtbot, panel)
    assert "nothing to teach" in lesson.outcome.text() and not lesson.undo_button.isEnabled()
    lesson.label_combo.setCurrentIndex((wrong + 1) % 10)
    qtbot.mouseClick(lesson.teach_button, CLICK)
    _wait_until_taught(qtbot, panel)
    assert lesson.undo_button.isEnabled()
    s.set_model(load_model(LENET))
    panel.refresh(force=True)
    assert not lesson.undo_button.isEnabled() and lesson.outcome.text() == ""


def test_teaching_waits_for_training_the_present_and_data(show_panel, open_session, data):
    s = open_session(LENET, data)
    panel = show_panel(TeachPanel, s)
    lesson = panel.lesson
    assert lesson.teach_button.isEnabled()
    for status in (RUNNING, PAUSED):  # paused: the trainer still holds the model
        s.set_status(status)
        panel.refresh(force=True)
        assert not lesson.teach_button.isEnabled()
        assert "stop training first" in lesson.note.text()
        with pytest.raises(NnvizError, match="stop training first"):
            s.set_weights(_state(s.view_model), "test")
    s.set_status(STOPPED)
    s.show_step(s.weight_history.steps()[-1])  # the History slider on a stored step
    panel.refresh(force=True)
    assert not lesson.teach_button.isEnabled() and "go back to the latest" in lesson.note.text()
    s.show_live()
    panel.refresh(force=True)
    assert lesson.teach_button.isEnabled()

    bare = Session()
    bare.set_model(load_model(LENET))
    bare.set_input(data.test.images[0] / 255.0, None, "your drawing")
    no_data = show_panel(TeachPanel, bare)
    assert not no_data.lesson.teach_button.isEnabled()
    assert "Load a data set" in no_data.lesson.note.text()


def test_the_right_answer_follows_the_input_and_the_model(qtbot, show_panel, open_session, data):
    s = open_session(LENET, data, index=0)
    panel = show_panel(TeachPanel, s)
    lesson = panel.lesson
    first = int(data.test.labels[0])
    assert lesson.label_combo.currentData() == first
    lesson.label_combo.setCurrentIndex((first + 1) % 10)  # the person says otherwise
    # A drawing: its class is not known, so no answer is chosen for it, and Teach waits.
    s.set_input(data.test.images[3] / 255.0, None, "your drawing")
    panel.refresh(force=True)
    assert lesson.label_combo.currentIndex() == -1 and lesson.label_combo.currentText() == ""
    assert not lesson.teach_button.isEnabled() and "Choose the right answer" in lesson.note.text()
    lesson.label_combo.setCurrentIndex(5)
    assert lesson.teach_button.isEnabled()
    # Pressed before the panel drew the new input: not taught with the old input's answer.
    s.set_input(data.test.images[4] / 255.0, None, "another drawing")
    qtbot.mouseClick(lesson.teach_button, CLICK)
    assert not lesson.job.busy and "Choose the right answer" in lesson.outcome.text()
    assert lesson.label_combo.currentIndex() == -1
    # A labelled digit, a different choice, then another model: its true class again.
    index = int(np.flatnonzero(data.test.labels != 5)[0])
    label = int(data.test.labels[index])
    s.set_input(data.test.images[index] / 255.0, label, f"MNIST test #{index}")
    panel.refresh(force=True)
    assert lesson.label_combo.currentData() == label
    lesson.label_combo.setCurrentIndex(5)
    s.set_model(load_model(str(SAMPLES / "mlp.nnviz")))
    panel.refresh(force=True)
    assert lesson.label_combo.currentData() == label


def test_nudge_pressed_before_the_panel_has_drawn(qtbot, open_session, data):
    s = open_session(LENET, data)
    panel = TeachPanel(s)
    qtbot.addWidget(panel)
    panel.tabs.setCurrentWidget(panel.nudge)
    panel.resize(740, 400)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.nudge.class_combo.count() == 0  # nothing drawn yet
    qtbot.mouseClick(panel.nudge.nudge_button, CLICK)
    ascent = panel.nudge.ascent
    assert ascent is not None and ascent.target == panel.nudge.class_combo.currentData()
    assert len(ascent.images) == 21 and "nudged toward" in panel.nudge.caption.text()
    panel.close_panel()


def test_set_weights_refuses_weights_that_do_not_fit(open_session, data):
    s = open_session(LENET, data)
    before = _state(s.view_model)
    wrong = {**before, "fc1.weight": torch.zeros(3, 3)}
    del wrong["conv1.bias"]
    with pytest.raises(NnvizError, match=r"missing conv1\.bias; wrong shape: fc1\.weight"):
        s.set_weights(wrong, "test")
    assert _same(_state(s.view_model), before) and not s.dirty


# ----- make it a ... ---------------------------------------------------------------------
def test_nudging_toward_a_class_raises_its_probability(qtbot, show_panel, open_session, data):
    s = open_session(LENET, data)
    panel = show_panel(TeachPanel, s)
    panel.tabs.setCurrentWidget(panel.nudge)
    nudge = panel.nudge
    start = s.probabilities()
    target = int(np.argsort(start)[-2])  # the runner-up: not what it says now
    nudge.class_combo.setCurrentIndex(target)
    qtbot.mouseClick(nudge.nudge_button, CLICK)

    ascent = nudge.ascent
    assert ascent.target == target and len(ascent.images) == 21
    assert ascent.probabilities[0] == pytest.approx(start[target], rel=1e-4)
    assert ascent.probabilities[-1] > 0.5 > ascent.probabilities[0]
    last = class_probabilities(s.view_model, ascent.images[-1])
    assert last[target] == pytest.approx(ascent.probabilities[-1], rel=1e-4)
    assert nudge.frames[0] == 0 and nudge.frames[-1] == 20 and len(nudge.frames) == 6
    for i, step in enumerate(nudge.frames):
        np.testing.assert_array_equal(nudge.filmstrip.frame(i), ascent.images[step])
        assert nudge.filmstrip.caption(i).startswith(f"step {step}\nP({target}) ")
    np.testing.assert_allclose(nudge.curve.getData()[1], ascent.probabilities)

    qtbot.mouseClick(nudge.use_button, CLICK)
    np.testing.assert_array_equal(s.current_input.image, ascent.images[-1])
    assert s.current_input.description == f"nudged toward {target}"
    assert int(np.argmax(s.probabilities())) == target
    assert OUTDATED not in nudge.caption.text()  # the input is the result: still current
    s.set_input(data.test.images[1] / 255.0, int(data.test.labels[1]), "#1")
    assert nudge.caption.text().endswith(OUTDATED)


# ----- what it wants to see --------------------------------------------------------------
def test_dreaming_pictures_a_unit_in_the_background(qtbot, show_panel, open_session, data):
    s = open_session(LENET, data)
    panel = show_panel(TeachPanel, s)
    panel.tabs.setCurrentWidget(panel.dreams)
    dreams = panel.dreams
    layers = [dreams.layer_combo.itemData(i) for i in range(dreams.layer_combo.count())]
    assert layers[0] is None and {"conv1", "fc1", "relu3"} <= set(layers)
    assert not {"pool1", "flatten", "output"} & set(layers)  # no repeats, classes come first
    dreams.set_unit("fc1", 3)
    assert dreams.unit_spin.maximum() == 63
    qtbot.mouseClick(dreams.dream_button, CLICK)
    assert dreams.job.busy and not dreams.dream_button.isEnabled()
    assert not dreams.busy.isHidden()
    qtbot.waitUntil(lambda: not dreams.job.busy, timeout=60_000)

    expected = visualize_unit(copy.deepcopy(s.view_model), "fc1", 3)
    np.testing.assert_array_equal(dreams.picture.image, expected)
    dream = dreams.dream
    on_digits = [unit_activation(s.view_model, data.test.images[i], "fc1", 3) for i in range(20)]
    assert dream.reached > max(on_digits)  # it wants this more than any real digit
    assert dream.on_input == pytest.approx(on_digits[0], rel=1e-4, abs=1e-5)
    assert dreams.busy.isHidden() and dreams.dream_button.isEnabled()
    assert "fc1 unit 3" in dreams.picture_plot.titleLabel.text

    dreams.set_unit(None, 3)
    qtbot.mouseClick(dreams.dream_button, CLICK)
    qtbot.waitUntil(lambda: not dreams.job.busy, timeout=60_000)
    assert int(np.argmax(dreams.dream.probabilities)) == 3  # it reads its dream of a 3 as a 3
    assert "class 3" in dreams.picture_plot.titleLabel.text


def test_closing_the_panel_mid_dream_leaves_no_thread(qtbot, show_panel, open_session, data):
    s = open_session(LENET, data)
    panel = show_panel(TeachPanel, s)
    before = set(threading.enumerate())
    panel.dreams.set_unit("conv2", 5)
    qtbot.mouseClick(panel.dreams.dream_button, CLICK)
    started = set(threading.enumerate()) - before
    assert started
    panel.close_panel()
    assert not any(t.is_alive() for t in started)
    qtbot.wait(100)  # a late poll would show the dropped picture
    assert panel.dreams.dream is None


def test_a_new_model_mid_dream_drops_the_old_dream_without_waiting(
    qtbot, show_panel, open_session, data
):
    s = open_session(LENET, data)
    panel = show_panel(TeachPanel, s)
    dreams = panel.dreams
    dreams.set_unit("conv2", 5)
    qtbot.mouseClick(dreams.dream_button, CLICK)
    assert dreams.job.busy
    s.set_model(load_model(str(SAMPLES / "mlp-3b1b.nnviz")))
    panel.refresh(force=True)
    assert not dreams.job.busy and dreams.dream_button.isEnabled()  # no wait for the old one
    assert dreams.layer_combo.findData("conv2") == -1 and dreams.layer_combo.findData("fc2") > 0
    dreams.set_unit("fc2", 1)
    qtbot.mouseClick(dreams.dream_button, CLICK)
    qtbot.waitUntil(lambda: not dreams.job.busy, timeout=60_000)
    assert (dreams.dream.layer, dreams.dream.unit) == ("fc2", 1)
    expected = visualize_unit(copy.deepcopy(s.view_model), "fc2", 1)
    np.testing.assert_array_equal(dreams.picture.image, expected)


# ----- foreign models and themes ---------------------------------------------------------
def test_a_foreign_model_is_nudged_and_dreamed_of_but_not_taught(
    qtbot, show_panel, open_session, data, exported_lenet
):
    s = open_session(exported_lenet, data)
    panel = show_panel(TeachPanel, s)
    assert not panel.lesson.teach_button.isEnabled()
    assert "foreign file" in panel.lesson.note.text()
    with pytest.raises(NnvizError, match="foreign file"):
        s.set_weights(_state(s.view_model), "test")
    assert panel.dreams.layer_combo.count() == 1  # the output classes only, and why
    assert ".pt2" in panel.dreams.note.text()

    target = int(np.argsort(s.probabilities())[-2])
    panel.nudge.class_combo.setCurrentIndex(target)
    qtbot.mouseClick(panel.nudge.nudge_button, CLICK)
    ascent = panel.nudge.ascent
    assert ascent.target == target and ascent.probabilities[-1] > 0.5 > ascent.probabilities[0]
    panel.dreams.set_unit(None, 3)
    qtbot.mouseClick(panel.dreams.dream_button, CLICK)
    qtbot.waitUntil(lambda: not panel.dreams.job.busy, timeout=60_000)
    assert panel.dreams.dream is not None, panel.dreams.info.text()
    assert int(np.argmax(panel.dreams.dream.probabilities)) == 3


def test_dark_palette_colours_captions_and_backgrounds(qtbot, show_panel, open_session, data):
    s = open_session(LENET, data)
    panel = show_panel(TeachPanel, s)
    qtbot.mouseClick(panel.nudge.nudge_button, CLICK)
    dark = QPalette(panel.palette())
    base, text = QColor(30, 30, 34), QColor(225, 225, 228)
    dark.setColor(QPalette.ColorRole.Base, base)
    dark.setColor(QPalette.ColorRole.WindowText, text)
    panel.setPalette(dark)
    assert panel.refresh()
    assert panel.nudge.graphics.backgroundBrush().color() == base
    assert panel.lesson.graphics.backgroundBrush().color() == base
    assert panel.nudge.filmstrip.captions[0].color == text
