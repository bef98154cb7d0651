"""Nothing replaces a trained, unsaved model without asking: Open (and Open Recent and
dropping a file, which go through open_path), New from preset, Custom architecture and
Reinitialise each ask Save / Discard / Cancel, as quitting does."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from nnviz.core.checkpoint import load_checkpoint
from nnviz.qt.documents import Documents

Button = QMessageBox.StandardButton


@pytest.fixture
def answers(window, monkeypatch):
    """The real question (not the fixture's stand-in) with QMessageBox.question answering
    from a list, each question recorded as (title, text). With the list used up it
    answers Discard: pytest-qt closes the window before the fixtures' own teardown."""
    _real_question(window, monkeypatch)
    asked: list[tuple[str, str]] = []
    queue: list[QMessageBox.StandardButton] = []

    def question(parent, title, text, *args):  # noqa: ANN001, ANN202
        asked.append((title, text))
        return queue.pop(0) if queue else Button.Discard

    monkeypatch.setattr(QMessageBox, "question", question)

    class Answers:
        def __init__(self) -> None:
            self.asked = asked

        def give(self, *buttons: QMessageBox.StandardButton) -> None:
            queue.extend(buttons)

    return Answers()


def _real_question(window, monkeypatch):
    """The window fixture answers Discard without a dialog; put the real question back."""
    real = Documents.ask_to_save.__get__(window.documents)
    monkeypatch.setattr(window.documents, "ask_to_save", real)


def _train_a_step(window, qtbot):
    start = window.session.history.last_step
    window.step()
    qtbot.waitUntil(lambda: window.session.snapshot is not None, timeout=5000)
    qtbot.waitUntil(
        lambda: window.session.snapshot.step > start and window.session.dirty, timeout=5000
    )
    window.stop_training()
    assert window.session.dirty and not window.runner.active
    return {k: v.clone() for k, v in window.session.view_model.state_dict().items()}


def _same_weights(window, weights) -> bool:
    current = window.session.view_model.state_dict()
    return current.keys() == weights.keys() and all(
        torch.equal(current[k], weights[k]) for k in weights
    )


def _saved_file(window, tmp_path, name="other.nnviz"):
    """A model file to open: mlp, saved by the app."""
    path = tmp_path / name
    window.documents.new_from_preset("mlp")
    assert window.documents.save_to(path)
    return path


def test_open_asks_first_and_cancel_keeps_the_trained_model(window, qtbot, answers, tmp_path):
    other = _saved_file(window, tmp_path)
    window.documents.new_from_preset("lenet")
    trained = _train_a_step(window, qtbot)
    answers.give(Button.Cancel)
    assert not window.documents.open_path(str(other))
    assert answers.asked == [
        ("Save the trained model?", "Open other.nnviz? The trained model has unsaved changes.")
    ]
    assert window.session.loaded.display_name == "lenet"
    assert window.session.dirty and _same_weights(window, trained)


def test_open_discard_replaces_the_model(window, qtbot, answers, tmp_path):
    other = _saved_file(window, tmp_path)
    window.documents.new_from_preset("lenet")
    _train_a_step(window, qtbot)
    answers.give(Button.Discard)
    assert window.documents.open_path(str(other))
    assert len(answers.asked) == 1
    assert window.session.loaded.display_name == "other.nnviz"
    assert not window.session.dirty


def test_open_save_saves_first_then_opens(window, qtbot, answers, tmp_path, monkeypatch):
    other = _saved_file(window, tmp_path)
    window.documents.new_from_preset("lenet")
    trained = _train_a_step(window, qtbot)
    kept = tmp_path / "kept.nnviz"
    monkeypatch.setattr(
        "nnviz.qt.documents.QFileDialog.getSaveFileName", lambda *a, **k: (str(kept), "")
    )
    answers.give(Button.Save)
    assert window.documents.open_path(str(other))
    assert window.session.loaded.display_name == "other.nnviz"
    saved = load_checkpoint(kept).state_dict
    assert all(torch.equal(saved[k], trained[k]) for k in trained)


def test_a_save_that_fails_or_is_cancelled_keeps_the_model(
    window, qtbot, answers, tmp_path, monkeypatch
):
    other = _saved_file(window, tmp_path)
    window.documents.new_from_preset("lenet")
    trained = _train_a_step(window, qtbot)
    # Save asks where (a preset has no file yet) and the user cancels that dialog.
    monkeypatch.setattr("nnviz.qt.documents.QFileDialog.getSaveFileName", lambda *a, **k: ("", ""))
    answers.give(Button.Save)
    assert not window.documents.open_path(str(other))
    assert window.session.loaded.display_name == "lenet"
    assert window.session.dirty and _same_weights(window, trained)


def test_open_recent_and_dropped_files_ask_too(window, qtbot, answers, tmp_path):
    other = _saved_file(window, tmp_path)
    window.documents.new_from_preset("lenet")
    trained = _train_a_step(window, qtbot)
    window.documents.update_recent_menu()
    recent = [a for a in window.recent_menu.actions() if a.text() == "other.nnviz"]
    assert recent
    answers.give(Button.Cancel)
    recent[0].trigger()
    assert answers.asked[-1][1].startswith("Open other.nnviz?")
    assert window.session.loaded.display_name == "lenet"

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    pos = window.rect().center()
    QApplication.sendEvent(window, QDragEnterEvent(pos, *args))
    answers.give(Button.Cancel)
    QApplication.sendEvent(window, QDropEvent(QPointF(pos), *args))
    assert len(answers.asked) == 2 and answers.asked[-1][1].startswith("Open other.nnviz?")
    assert window.session.loaded.display_name == "lenet" and _same_weights(window, trained)


def test_new_from_preset_asks(window, qtbot, answers):
    window.documents.new_from_preset("lenet")
    trained = _train_a_step(window, qtbot)
    answers.give(Button.Cancel)
    window.documents.new_from_preset("mlp")
    assert answers.asked[-1][1] == "Start a new mlp? The trained model has unsaved changes."
    assert window.session.loaded.display_name == "lenet"
    assert _same_weights(window, trained)
    answers.give(Button.Discard)
    window.documents.new_from_preset("mlp")
    assert window.session.loaded.display_name == "mlp" and not window.session.dirty


def test_reinitialise_asks(window, qtbot, answers):
    window.documents.new_from_preset("lenet")
    trained = _train_a_step(window, qtbot)
    answers.give(Button.Cancel)
    window.act_reinit.trigger()
    assert answers.asked[-1][1].startswith("Reinitialise the weights of lenet?")
    assert _same_weights(window, trained)
    answers.give(Button.Discard)
    window.act_reinit.trigger()
    assert not _same_weights(window, trained)
    assert window.session.history.last_step == 0


def test_custom_architecture_asks_after_the_dialog(window, qtbot, answers):
    window.documents.new_from_preset("lenet")
    trained = _train_a_step(window, qtbot)

    def build_mlp_in_dialog():
        dialog = QApplication.activeModalWidget()
        index = dialog.preset_combo.findData("mlp-3b1b")
        dialog.preset_combo.setCurrentIndex(index)
        dialog.preset_combo.activated.emit(index)
        dialog.accept()

    QTimer.singleShot(200, build_mlp_in_dialog)
    answers.give(Button.Cancel)
    window.act_custom.trigger()
    assert answers.asked[-1][1] == (
        "Build the new architecture mlp-3b1b? The trained model has unsaved changes."
    )
    assert window.session.loaded.display_name == "lenet" and _same_weights(window, trained)
    QTimer.singleShot(200, build_mlp_in_dialog)
    answers.give(Button.Discard)
    window.act_custom.trigger()
    assert window.session.loaded.spec.name == "mlp-3b1b"
    assert sum(p.numel() for p in window.session.view_model.parameters()) == 13002


def test_a_model_without_unsaved_training_is_replaced_without_asking(window, answers):
    assert not window.session.dirty
    window.documents.new_from_preset("mlp")
    window.documents.new_from_preset("lenet")
    assert answers.asked == []


def test_quitting_names_what_it_asks_before(window, qtbot, answers):
    _train_a_step(window, qtbot)
    answers.give(Button.Cancel)
    assert not window.close()
    assert answers.asked[-1][1] == "Quit nnviz? The trained model has unsaved changes."


def test_the_dialog_itself_offers_save_discard_cancel(window, qtbot, monkeypatch):
    """The real QMessageBox (not a stand-in), answered by clicking its Cancel button."""
    _real_question(window, monkeypatch)
    trained = _train_a_step(window, qtbot)
    seen: list[tuple[str, set]] = []

    def click_cancel() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox) or seen:
            return
        seen.append((box.text(), {box.standardButton(b) for b in box.buttons()}))
        box.button(Button.Cancel).click()

    timer = QTimer()
    timer.timeout.connect(click_cancel)
    timer.start(20)
    try:
        window.documents.new_from_preset("mlp")
    finally:
        timer.stop()
        if not seen:  # never asked: the window must still close without a dialog
            window.session.set_dirty(False)
    assert seen[0] == (
        "Start a new mlp? The trained model has unsaved changes.",
        {Button.Save, Button.Discard, Button.Cancel},
    )
    assert window.session.loaded.display_name == "lenet.nnviz"
    assert _same_weights(window, trained)
    window.session.set_dirty(False)  # pytest-qt closes the window before fixtures undo
