"""Autosave and crash recovery: unsaved training is kept in a recovery file while the app
runs, the file goes when the work is saved, thrown away or the app quits, and a crashed
app's work is offered back at the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PySide6.QtWidgets import QMessageBox

from nnviz.core.checkpoint import load_checkpoint
from nnviz.core.places import DATA_ENV, is_sample
from nnviz.core.recovery import (
    RecoveryInfo,
    claim_slot,
    history_up_to,
    left_behind,
)
from nnviz.qt.app import TRAIN_AT_START_ENV, default_model_path
from nnviz.qt.autosave import INTERVAL_ENV, RESTORE_TITLE, recovery_folder, restore_question

Button = QMessageBox.StandardButton


def _autosaving(window, folder: Path):
    window.documents.autosave.start(folder)
    return window.documents.autosave


def _steps(window) -> int:
    snap = window.session.snapshot
    return snap.step if snap is not None else window.session.history.last_step


def _weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_history_is_cut_to_the_saved_step_with_lists_of_one_length():
    # As copied while the trainer appends: a step without its loss and accuracy yet.
    history = {
        "step": [1, 2, 3, 4, 5],
        "loss": [0.9, 0.8, 0.7, 0.6],
        "accuracy": [0.1, 0.2, 0.3, 0.4],
        "epochs": [{"epoch": 0, "step": 2}, {"epoch": 1, "step": 4}],
        "changes": [{"step": 3, "name": "lr", "value": 0.1}],
    }
    cut = history_up_to(history, 3)
    assert cut["step"] == [1, 2, 3] and cut["loss"] == [0.9, 0.8, 0.7]
    assert cut["accuracy"] == [0.1, 0.2, 0.3]
    assert cut["epochs"] == [{"epoch": 0, "step": 2}] and len(cut["changes"]) == 1
    assert history_up_to(history, 9)["step"] == [1, 2, 3, 4]


def test_a_slot_held_by_a_running_app_is_never_offered(tmp_path, open_session, data):
    session = open_session("lenet", data, index=None)
    session.history.step.append(7)
    ours = claim_slot(tmp_path)
    ours.write(session.to_checkpoint(), RecoveryInfo("lenet", None, "preset"))
    assert left_behind(tmp_path) == []  # its lock is held: another app's live work
    other = claim_slot(tmp_path)
    assert other.number != ours.number
    other.release()
    ours.release()  # as the system does when the app dies
    found = left_behind(tmp_path)
    assert [slot.number for slot in found] == [ours.number]
    info = found[0].read_info()
    assert (info.name, info.path, info.kind, info.step) == ("lenet", None, "preset", 7)
    assert restore_question(info).startswith("Restore lenet trained to step 7 (autosaved ")
    found[0].release()


def test_epoch_end_autosaves_while_training_goes_on(window, qtbot, tmp_path):
    autosave = _autosaving(window, tmp_path / "recovery")  # timer: minutes away
    window.documents.new_from_preset("lenet")
    window.train()
    qtbot.waitUntil(lambda: len(window.session.history.epochs) >= 1, timeout=30000)
    qtbot.waitUntil(lambda: autosave.slot is not None and autosave.slot.has_files, timeout=10000)
    assert window.runner.active  # saved at the epoch's end, not at a stop
    window.stop_training()
    autosave.wait()
    info = autosave.slot.read_info()
    assert info.name == "lenet" and info.kind == "preset" and info.path is None
    assert info.step >= window.session.history.epochs[0]["step"]


def test_stopping_autosaves_the_latest_weights_and_saving_removes_them(window, qtbot, tmp_path):
    autosave = _autosaving(window, tmp_path / "recovery")
    window.documents.new_from_preset("lenet")
    window.train()
    qtbot.waitUntil(lambda: _steps(window) > 5, timeout=10000)
    window.stop_training()
    # An epoch's end may have started a write just before: the stop's own comes after it.
    qtbot.waitUntil(
        lambda: (
            autosave.slot is not None
            and autosave.slot.has_files
            and autosave.slot.read_info().step == _steps(window)
        ),
        timeout=10000,
    )
    autosave.wait()
    slot = autosave.slot
    saved = load_checkpoint(slot.model_path)
    assert _weights_equal(saved.state_dict, window.session.view_model.state_dict())
    assert saved.history["step"][-1] == _steps(window) == slot.read_info().step
    assert len(saved.history["loss"]) == len(saved.history["step"])
    assert window.documents.save_to(tmp_path / "kept.nnviz")
    assert not slot.model_path.exists() and not slot.info_path.exists()


def test_discard_removes_the_recovery_file_and_cancel_keeps_it(
    window, qtbot, tmp_path, monkeypatch
):
    autosave = _autosaving(window, tmp_path / "recovery")
    window.documents.new_from_preset("lenet")
    window.step()
    qtbot.waitUntil(lambda: _steps(window) > 0 and window.session.dirty, timeout=5000)
    window.stop_training()
    autosave.wait()
    slot = autosave.slot
    assert slot.has_files
    monkeypatch.setattr(window.documents, "ask_to_save", lambda: "cancel")
    window.documents.new_from_preset("mlp")
    assert slot.has_files and window.session.loaded.display_name == "lenet"
    monkeypatch.setattr(window.documents, "ask_to_save", lambda: "discard")
    window.documents.new_from_preset("mlp")
    assert not slot.has_files and window.session.loaded.display_name == "mlp"


def test_finishing_removes_the_file_and_frees_the_slot(window, qtbot, tmp_path):
    # What a clean quit runs (QApplication.aboutToQuit; the crash test below quits for
    # real). Emitting that signal here would run every other listener's exit code too.
    folder = tmp_path / "recovery"
    autosave = _autosaving(window, folder)
    window.step()
    qtbot.waitUntil(lambda: _steps(window) > 0 and window.session.dirty, timeout=5000)
    window.stop_training()
    autosave.wait()
    slot = autosave.slot
    assert slot.has_files and left_behind(folder) == []
    autosave.finish()
    assert not slot.has_files and not autosave.active
    assert left_behind(folder) == []
    mine = claim_slot(folder)
    assert mine.number == slot.number  # free again
    mine.release()


def test_taught_weights_are_autosaved_too(window, tmp_path):
    autosave = _autosaving(window, tmp_path / "recovery")
    window.documents.new_from_preset("lenet")
    assert not autosave.save_now()  # a fresh model: no work to keep
    taught = {k: v + 0.01 for k, v in window.session.view_model.state_dict().items()}
    window.session.set_weights(taught, "taught a 4")
    assert autosave.save_now()
    autosave.wait()
    assert _weights_equal(load_checkpoint(autosave.slot.model_path).state_dict, taught)
    assert not autosave.save_now()  # nothing new since


def test_an_unusable_recovery_folder_is_one_message_and_the_app_goes_on(window, qtbot, tmp_path):
    not_a_folder = tmp_path / "recovery"
    not_a_folder.write_text("a file where the folder should be")
    autosave = _autosaving(window, not_a_folder)
    window.step()
    qtbot.waitUntil(lambda: _steps(window) > 0 and window.session.dirty, timeout=5000)
    window.stop_training()  # a stop autosaves
    assert "Autosave failed: cannot make the recovery folder" in window.banner.text
    window.banner.hide()
    start = _steps(window)
    window.step()
    qtbot.waitUntil(lambda: _steps(window) > start, timeout=5000)
    window.stop_training()
    assert not autosave.save_now()
    assert not window.banner.isVisible()  # said once, not at every autosave
    assert _steps(window) > start and window.session.dirty  # and training went on


def test_no_autosave_unless_turned_on(window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    window.step()
    qtbot.waitUntil(lambda: _steps(window) > 0 and window.session.dirty, timeout=5000)
    window.stop_training()
    assert not window.documents.autosave.save_now()
    assert not recovery_folder().exists()


def _wait_for(predicate, timeout_s: float, what: str, process=None) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the app exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout_s} s")
        time.sleep(0.1)


def test_a_killed_app_s_training_is_offered_back_and_restored(qapp, tmp_path, monkeypatch):
    """A real app process trains the lenet sample and autosaves; it is killed (-9); the
    next start offers the work, and Restore brings back its weights at the saved step."""
    data = tmp_path / "data"
    folder = data / "recovery"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        DATA_ENV: str(data),
        INTERVAL_ENV: "0.5",
        TRAIN_AT_START_ENV: "1",
    }
    log = (tmp_path / "app.log").open("w")
    app = subprocess.Popen(
        [sys.executable, "-m", "nnviz", "gui"],
        cwd=tmp_path,  # like a user anywhere: not the checkout
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        model = folder / "autosave-1.nnviz"
        _wait_for(model.is_file, 120, "recovery file", app)
        # One more autosave, so the killed process has trained past its first one.
        first = model.stat().st_mtime_ns
        _wait_for(lambda: model.stat().st_mtime_ns != first, 60, "second autosave", app)
    finally:
        app.send_signal(signal.SIGKILL)
        app.wait(30)
        log.close()
    assert app.returncode == -signal.SIGKILL
    autosaved = load_checkpoint(model)
    step = autosaved.history["step"][-1]
    sample = load_checkpoint(default_model_path())
    assert step > sample.history["step"][-1]  # trained on, past the sample's own steps
    assert not _weights_equal(autosaved.state_dict, sample.state_dict)

    # The next start, in this process: run_app as `nnviz gui` runs it.
    from nnviz.qt.app import run_app
    from nnviz.qt.main_window import MainWindow

    monkeypatch.setenv(DATA_ENV, str(data))
    monkeypatch.delenv(TRAIN_AT_START_ENV, raising=False)
    # Quitting asks about the restored, unsaved work: the answer is Discard.
    monkeypatch.setattr(QMessageBox, "question", lambda *args: Button.Discard)
    seen: dict = {}
    deadline = time.monotonic() + 90

    def drive() -> None:
        window = next((w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow)), None)
        if time.monotonic() > deadline:
            seen["timed out"] = True
            qapp.exit(3)
            return
        if window is None or not window.attached:
            return
        box = window.findChild(QMessageBox, "restore_question")
        if "question" not in seen:
            if box is None or not box.isVisible():
                return
            seen["question"] = (box.windowTitle(), box.text())
            seen["buttons"] = sorted(b.text().replace("&", "") for b in box.buttons())
            next(b for b in box.buttons() if b.text() == "Restore").click()
            return
        s = window.session
        if "restored" not in seen and s.dirty:
            seen["restored"] = {
                "name": s.loaded.display_name,
                "path": s.path,
                "step": s.history.last_step,
                "weights": {k: v.clone() for k, v in s.view_model.state_dict().items()},
                "read_only": window.documents.read_only,
                "title": window.windowTitle(),
                "file kept": model.is_file(),
            }
            window.close()  # a clean quit: Discard, then the app exits

    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(drive)
    timer.start(50)
    interval = sys.getswitchinterval()
    try:
        code = run_app()
    finally:
        timer.stop()
        sys.setswitchinterval(interval)
    assert "timed out" not in seen, seen
    assert code == 0
    assert seen["question"][0] == RESTORE_TITLE
    assert seen["question"][1].startswith(f"Restore lenet.nnviz trained to step {step:,} (")
    assert seen["buttons"] == ["Discard", "Restore"]
    restored = seen["restored"]
    assert restored["name"] == "lenet.nnviz" and "lenet.nnviz" in restored["title"]
    assert restored["path"] == Path(default_model_path()) and is_sample(restored["path"])
    assert restored["read_only"]  # a sample: Save will ask where
    assert restored["step"] == step
    assert _weights_equal(restored["weights"], autosaved.state_dict)
    assert restored["file kept"]  # until the work is saved or thrown away
    assert not model.exists()  # thrown away (Discard) and quit cleanly
    assert left_behind(folder) == []
