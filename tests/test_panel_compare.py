"""The Compare panel, offscreen: real sample models, real MNIST digits, the real picker."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QFileDialog

from nnviz.core.errors import NnvizError
from nnviz.core.modelfile import load_model
from nnviz.qt.panels import compare
from nnviz.qt.panels.compare import OPEN_FILE, ComparePanel, predict
from nnviz.state import Session

pytestmark = pytest.mark.usefixtures("row_major_images")

SAMPLES = importlib.resources.files("nnviz.sample_models")
LENET = str(SAMPLES / "lenet.nnviz")
MLP_3B1B = str(SAMPLES / "mlp-3b1b.nnviz")


@pytest.fixture(scope="module")
def exported_mlp(tmp_path_factory):
    """The trained mlp sample exported with a dynamic batch, as a foreign .pt2 file."""
    module = load_model(str(SAMPLES / "mlp.nnviz")).module
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(
        module, (torch.zeros(2, 1, 28, 28),), dynamic_shapes=({0: batch},)
    )
    path = tmp_path_factory.mktemp("export") / "exported mlp.pt2"
    torch.export.save(program, path)
    return str(path)


def _by_hand(source, image, seed=None):
    """The probabilities of the model in ``source`` for ``image``, computed here."""
    return _run(load_model(source, seed=seed).module, image)


def _run(module, image):
    with torch.inference_mode():
        logits = module(torch.from_numpy(np.array(image, np.float32)).reshape(1, 1, 28, 28))
    return torch.softmax(logits, dim=1)[0].numpy()


def _pick(panel, text):
    """Choose an entry of the picker, as the user does."""
    index = panel.picker.findText(text)
    assert index >= 0, text
    panel.picker.setCurrentIndex(index)


@pytest.fixture
def panel(open_session, show_panel, data):
    """The panel at the insides dock's size, over the lenet sample and MNIST test #0."""
    return show_panel(ComparePanel, open_session(LENET, data, 0))


def test_the_second_model_answers_the_current_input(panel, data, show_digit):
    s = panel.session
    # Not told otherwise, it compares with the first sample that is not the main model.
    assert panel.picker.currentText() == "mlp-3b1b sample (trained)"
    assert panel.second.parameters == 784 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    image = s.current_input.image
    np.testing.assert_allclose(panel.second_bars.probabilities, _by_hand(MLP_3B1B, image))
    np.testing.assert_array_equal(panel.main_bars.probabilities, s.probabilities())
    assert (
        "lenet.nnviz" in panel.main_title.text() and "28,886 parameters" in panel.main_title.text()
    )
    assert "mlp-3b1b sample (trained)" in panel.second_title.text()
    assert "13,002 parameters" in panel.second_title.text()
    first = panel.second_bars.probabilities.copy()
    for index in (1, 2, 3):  # the bars follow the input
        show_digit(s, data, index)
        assert panel.stale and panel.refresh()
        image = s.current_input.image
        np.testing.assert_allclose(panel.second_bars.probabilities, _by_hand(MLP_3B1B, image))
        np.testing.assert_array_equal(panel.main_bars.probabilities, s.probabilities())
    assert not np.allclose(first, panel.second_bars.probabilities)


def test_the_verdict_says_whether_they_agree(panel, data, show_digit):
    s = panel.session
    _pick(panel, "lenet preset (untrained)")
    assert panel.second.loaded.kind == "preset" and panel.refresh()
    untrained = load_model("lenet", seed=compare.SEED).module
    agreed = disagreed = 0
    for index in range(25):
        show_digit(s, data, index)
        panel.refresh()
        theirs = _run(untrained, s.current_input.image)
        np.testing.assert_allclose(panel.second_bars.probabilities, theirs, rtol=1e-5)
        main, second = int(np.argmax(s.probabilities())), int(np.argmax(theirs))
        verdict = panel.verdict.text()
        assert f"the true label is {data.test.labels[index]}" in verdict
        if main == second:
            assert verdict.startswith(f"Both say <b>{main}</b>")
            agreed += 1
        else:
            assert verdict.startswith(f"They disagree: <b>{main}</b> vs <b>{second}</b>")
            assert f"says <b>{second}</b>" in panel.second_title.text()
            disagreed += 1
    assert disagreed > 0  # an untrained network mostly guesses wrong
    _pick(panel, "mlp sample (trained)")
    agreed_trained = 0
    for index in range(25):
        show_digit(s, data, index)
        panel.refresh()
        agreed_trained += panel.verdict.text().startswith("Both say")
    assert agreed_trained > agreed and agreed_trained >= 22  # two trained models mostly agree


def test_any_model_file_can_be_opened_and_a_bad_one_is_reported(
    panel, qtbot, monkeypatch, exported_mlp, tmp_path
):
    s = panel.session
    chosen = [exported_mlp]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (chosen[0], ""))
    _pick(panel, OPEN_FILE)
    assert panel.picker.currentText() == "exported mlp.pt2"  # it joins the list
    assert panel.picker.itemText(panel.picker.count() - 1) == OPEN_FILE
    assert panel.second.loaded.kind == "export" and not panel.problem.isVisible()
    panel.refresh()
    image = s.current_input.image
    expected = _by_hand(str(SAMPLES / "mlp.nnviz"), image)
    np.testing.assert_allclose(panel.second_bars.probabilities, expected, rtol=1e-5, atol=1e-7)

    # A file that is no model: said in the panel; the loaded model and its entry stay.
    fake = tmp_path / "notes.nnviz"
    fake.write_text("not a model")
    chosen[0] = str(fake)
    before = panel.second
    _pick(panel, OPEN_FILE)
    assert panel.problem.isVisible() and "notes.nnviz" in panel.problem.text()
    assert panel.second is before and panel.picker.currentText() == "exported mlp.pt2"
    np.testing.assert_allclose(panel.second_bars.probabilities, expected, rtol=1e-5, atol=1e-7)
    # Cancelling the dialog changes nothing either.
    chosen[0] = ""
    _pick(panel, OPEN_FILE)
    assert panel.second is before and panel.picker.currentText() == "exported mlp.pt2"
    # A good pick clears the message.
    _pick(panel, "mlp-3b1b sample (trained)")
    assert not panel.problem.isVisible()


def test_the_second_model_stays_when_the_main_model_changes(panel, data, show_digit):
    s = panel.session
    _pick(panel, "mlp sample (trained)")
    second = panel.second
    s.set_model(load_model("mlp-3b1b"))  # untrained, a new main model
    show_digit(s, data, 5)
    assert panel.refresh()
    assert panel.second is second and panel.picker.currentText() == "mlp sample (trained)"
    assert "mlp-3b1b" in panel.main_title.text() and "13,002 parameters" in panel.main_title.text()
    np.testing.assert_array_equal(panel.main_bars.probabilities, s.probabilities())
    image = s.current_input.image
    expected = _by_hand(str(SAMPLES / "mlp.nnviz"), image)
    np.testing.assert_allclose(panel.second_bars.probabilities, expected, rtol=1e-6)
    # Switching units off changes only the main model's answer, and the title says so.
    s.switch_off("fc1", 3)
    assert panel.refresh() and "units switched off" in panel.main_title.text()
    np.testing.assert_array_equal(panel.main_bars.probabilities, s.probabilities())
    np.testing.assert_allclose(panel.second_bars.probabilities, expected, rtol=1e-6)


def test_a_model_that_cannot_read_a_digit_says_why(data):
    loaded = load_model("mlp")
    loaded.input_shape = (3, 32, 32)  # as a CIFAR model would be
    with pytest.raises(NnvizError, match=r"inputs of shape \(3, 32, 32\)"):
        predict(loaded, data.test.images[0] / 255.0)
    loaded = load_model("mlp")
    loaded.module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 10))
    with pytest.raises(NnvizError, match="fails on the digit"):
        predict(loaded, data.test.images[0] / 255.0)


def test_without_an_input_and_in_a_dark_small_dock(qtbot, data, show_digit):
    s = Session()
    s.set_model(load_model(LENET))
    panel = ComparePanel(s)
    qtbot.addWidget(panel)
    panel.resize(600, 350)
    panel.show()
    try:
        assert panel.refresh()
        assert panel.second_bars.message == "no input" and panel.main_bars.message == "no input"
        assert panel.verdict.text() == ""
        dark = QPalette(panel.palette())
        dark.setColor(QPalette.ColorRole.Base, QColor(30, 30, 34))
        dark.setColor(QPalette.ColorRole.WindowText, QColor(225, 225, 228))
        panel.setPalette(dark)
        show_digit(s, data, 0)
        assert panel.refresh()
        for bars in (panel.main_bars, panel.second_bars):
            assert bars.background == QColor(30, 30, 34)
            assert bars.height() >= 150 and bars.width() >= 250
        assert panel.verdict.text().startswith("Both say <b>7</b>")
        bottom = panel.verdict.mapTo(panel, panel.verdict.rect().bottomLeft()).y()
        assert bottom <= panel.height()
        assert panel.verdict.alignment() & Qt.AlignmentFlag.AlignHCenter
    finally:
        panel.close_panel()
