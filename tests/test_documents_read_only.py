"""Samples open read-only: Save never writes into the package's sample folder (or over any
file the user may not write); it becomes Save As, proposing the user's documents folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QStandardPaths

from nnviz.core.checkpoint import load_checkpoint
from nnviz.core.places import is_read_only, is_sample, sample_folder
from nnviz.qt.app import default_model_path
from nnviz.qt.documents import documents_folder


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save_dialog(monkeypatch, answer: Path | str):
    """File > Save As's dialog answering ``answer``; returns the suggestions it was shown."""
    shown: list[str] = []

    def dialog(parent, caption, suggestion, *args, **kwargs):  # noqa: ANN001, ANN202
        shown.append(suggestion)
        return str(answer), ""

    monkeypatch.setattr("nnviz.qt.documents.QFileDialog.getSaveFileName", dialog)
    return shown


def _train_a_step(window, qtbot) -> dict[str, torch.Tensor]:
    start = window.session.history.last_step
    window.step()
    qtbot.waitUntil(
        lambda: window.session.snapshot is not None and window.session.snapshot.step > start,
        timeout=5000,
    )
    window.stop_training()
    assert window.session.dirty
    return {k: v.clone() for k, v in window.session.view_model.state_dict().items()}


def test_saving_the_sample_saves_a_copy_and_leaves_the_sample_alone(
    window, qtbot, monkeypatch, tmp_path
):
    sample = Path(default_model_path())
    assert window.session.path == sample and is_sample(sample)
    before = _digest(sample)
    assert window.documents.read_only
    trained = _train_a_step(window, qtbot)
    copy = tmp_path / "my lenet.nnviz"
    shown = _save_dialog(monkeypatch, copy)
    window.act_save.trigger()
    assert len(shown) == 1  # Save asked where, as Save As does
    assert _digest(sample) == before
    saved = load_checkpoint(copy).state_dict
    assert all(torch.equal(saved[k], trained[k]) for k in trained)
    assert window.session.path == copy and not window.session.dirty
    assert not window.documents.read_only
    # Now the copy is the user's own: Save writes it without asking where.
    _train_a_step(window, qtbot)
    window.act_save.trigger()
    assert len(shown) == 1
    assert not window.session.dirty and _digest(sample) == before


def test_save_as_proposes_the_documents_folder_never_the_package(window, monkeypatch):
    shown = _save_dialog(monkeypatch, "")
    window.documents.save_as()
    proposed = Path(shown[0])
    assert proposed.name == "lenet.nnviz"
    assert proposed.parent == documents_folder()
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    assert proposed.parent in (Path(location), Path.home())
    assert not is_sample(proposed)
    assert not proposed.resolve().is_relative_to(sample_folder().resolve())


def test_save_as_into_the_sample_folder_is_refused_with_a_message(window, qtbot, monkeypatch):
    sample = Path(default_model_path())
    before = _digest(sample)
    _train_a_step(window, qtbot)
    _save_dialog(monkeypatch, sample)
    assert not window.documents.save_as()
    assert "sample models' folder" in window.banner.text
    assert _digest(sample) == before
    assert window.session.dirty  # nothing was saved, and the work is still there
    beside = sample.with_name("mine.nnviz")
    _save_dialog(monkeypatch, beside)
    assert not window.documents.save_as()
    assert not beside.exists()


def test_the_status_bar_says_a_sample_is_read_only(window, qtbot):
    # Wide enough for the bar's figures and a message beside them.
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: window.statusBar().position.x() > 400, timeout=5000)
    window.documents.new_from_preset("mlp")
    window.documents.open_path(default_model_path())
    message = window.statusBar().currentMessage()
    assert message.startswith("lenet.nnviz is a read-only sample: Save asks where")
    assert window.documents.title_note() == " (read-only sample)"
    assert window.windowTitle().startswith("lenet.nnviz (read-only sample)")
    window.documents.new_from_preset("mlp")
    assert "read-only" not in window.windowTitle()


def test_a_users_own_file_is_saved_in_place(window, qtbot, tmp_path):
    path = tmp_path / "own.nnviz"
    window.documents.new_from_preset("lenet")
    assert window.documents.save_to(path)
    trained = _train_a_step(window, qtbot)
    assert not window.documents.read_only and window.documents.title_note() == ""
    assert window.documents.suggested_path() == path
    assert window.documents.save()
    saved = load_checkpoint(path).state_dict
    assert all(torch.equal(saved[k], trained[k]) for k in trained)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write any file")
def test_a_file_the_user_may_not_write_is_saved_elsewhere(window, qtbot, monkeypatch, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    path = folder / "theirs.nnviz"
    window.documents.new_from_preset("lenet")
    assert window.documents.save_to(path)
    folder.chmod(0o555)
    try:
        assert is_read_only(path)
        window.documents.open_path(str(path))
        _train_a_step(window, qtbot)
        copy = tmp_path / "mine.nnviz"
        shown = _save_dialog(monkeypatch, copy)
        assert window.documents.save()
        assert Path(shown[0]).parent == documents_folder() and copy.is_file()
    finally:
        folder.chmod(0o755)
