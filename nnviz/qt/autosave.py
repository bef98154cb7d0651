"""Autosave of the trained, unsaved model, and the offer to restore it after a crash.

While the model has unsaved training, its latest weights go to this app's recovery
slot (``nnviz.core.recovery``) at the end of each epoch, when a run stops or pauses,
and every ``AUTOSAVE_INTERVAL_S`` seconds. The files go when the work is saved, thrown
away (another model replaces it) or the app quits cleanly; what is left at the next
start is what a crash took, and ``offer_recovery`` asks whether to bring it back.

The real app turns autosave on (``nnviz.qt.app.run_app``); windows made for tests and
the benchmark leave it off, so they never write into the user's data folder.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from nnviz.core.errors import NnvizError
from nnviz.core.places import data_dir
from nnviz.core.recovery import (
    RecoveryInfo,
    RecoverySlot,
    claim_slot,
    history_up_to,
    left_behind,
)
from nnviz.core.snapshot import EpochReport

if TYPE_CHECKING:
    from nnviz.core.checkpoint import Checkpoint
    from nnviz.qt.main_window import MainWindow

# Besides each epoch's end: a run's epoch on the full MNIST takes minutes for the larger
# models, and a crash should cost at most this much training.
AUTOSAVE_INTERVAL_S = 120.0
INTERVAL_ENV = "NNVIZ_AUTOSAVE_S"  # seconds between autosaves, for tests
RECOVERY_FOLDER = "recovery"  # inside the per-user data folder
RETRY_MS = 200  # a save that comes while the last one is still being written waits this
RESTORE_TITLE = "Restore unsaved work?"


def recovery_folder() -> Path:
    return data_dir() / RECOVERY_FOLDER


def autosave_interval_s() -> float:
    try:
        return max(0.05, float(os.environ[INTERVAL_ENV]))
    except (KeyError, ValueError):
        return AUTOSAVE_INTERVAL_S


class Autosave(QObject):
    """Keeps the window's unsaved trained model in a recovery file while the app runs."""

    failed = Signal(str)  # from the writing thread; shown on the GUI thread

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.folder: Path | None = None  # None: autosave is off
        self.slot: RecoverySlot | None = None  # claimed at the first autosave
        self._saved: tuple = ()  # (model, snapshot) of the last autosave: nothing new, no write
        self._restoring = False
        self._last_failure = ""
        self._writer: threading.Thread | None = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.save_now)
        self.failed.connect(self._report)

    @property
    def active(self) -> bool:
        return self.folder is not None

    def start(self, folder: Path | None = None) -> None:
        """Turn autosave on, into ``folder`` (default: the user's recovery folder)."""
        if self.active:
            return
        self.folder = folder or recovery_folder()
        s = self.session
        s.events_added.connect(self._events)
        s.status_changed.connect(self._status)
        s.dirty_changed.connect(self._dirty)
        s.model_loaded.connect(self._model_loaded)
        self._timer.start(round(autosave_interval_s() * 1000))
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.finish)

    # ----- when to save ------------------------------------------------------------------
    def _events(self, events: list) -> None:
        if any(isinstance(e, EpochReport) for e in events):
            # The epoch's last weights are published right after its reports.
            QTimer.singleShot(0, self.save_now)

    def _status(self, status: str) -> None:
        if status != "running":  # stopped, paused, completed or failed: keep what it did
            self.save_now()

    def _dirty(self, dirty: bool) -> None:
        if not dirty and not self._restoring:
            self.discard()  # saved: the file holds it now

    def _model_loaded(self) -> None:
        if not self._restoring:
            self.discard()  # another model replaced it: the user chose to drop the work

    def _step(self) -> int:
        snapshot = self.session.snapshot
        return snapshot.step if snapshot is not None else self.session.history.last_step

    def needs_saving(self) -> bool:
        """Unsaved training that the recovery file does not hold yet."""
        s = self.session
        # A snapshot: weights that training or teaching made since the model was opened
        # (a model just reinitialised is unsaved too, but holds no work to lose).
        if not (self.active and s.dirty and s.trainable and s.snapshot is not None):
            return False
        # By identity: the dataclasses' own == would compare every tensor.
        loaded, snapshot = self._saved or (None, None)
        return not (loaded is s.loaded and snapshot is s.snapshot)

    # ----- saving --------------------------------------------------------------------
    def save_now(self) -> bool:
        """Autosave if there is unsaved training not yet in the recovery file; True if a
        write started. The checkpoint is copied here; the file is written on a thread."""
        if not self.needs_saving():
            return False
        if self._writer is not None and self._writer.is_alive():
            QTimer.singleShot(RETRY_MS, self.save_now)
            return False
        s = self.session
        try:
            if self.slot is None:
                assert self.folder is not None
                self.slot = claim_slot(self.folder)
            checkpoint = s.to_checkpoint()
        except NnvizError as exc:
            self._report(f"Autosave failed: {exc}")
            return False
        loaded = s.loaded
        assert loaded is not None
        info = RecoveryInfo(
            name=loaded.display_name,
            path=str(loaded.path) if loaded.path is not None else None,
            kind=loaded.kind,
        )
        self._saved = (s.loaded, s.snapshot)
        # Writing a lenet checkpoint with its 20,600-point history takes about 25 ms, 21 ms
        # of it turning the history into JSON (14 ms in one call that holds the GIL): on a
        # thread the window is held up by that call alone, and only once per autosave.
        self._writer = threading.Thread(
            target=self._write,
            args=(self.slot, checkpoint, info, self._step()),
            name="nnviz-autosave",
        )
        self._writer.start()
        return True

    def _write(
        self, slot: RecoverySlot, checkpoint: Checkpoint, info: RecoveryInfo, step: int
    ) -> None:
        try:
            checkpoint.history = history_up_to(checkpoint.history, step)
            slot.write(checkpoint, info)
        except Exception as exc:  # noqa: BLE001 - a message for the user, never a crash
            self.failed.emit(f"Autosave failed: {exc}")

    def wait(self) -> None:
        """Until the file being written (if any) is complete."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None

    def _report(self, message: str) -> None:
        # Once: the same failure at every autosave would bury the window in messages.
        if message != self._last_failure:
            self._last_failure = message
            self.session.report_error(message)

    # ----- throwing away ---------------------------------------------------------------
    def discard(self) -> None:
        """Delete the recovery files (the slot stays ours for the next autosave)."""
        self.wait()
        self._saved = ()
        self._last_failure = ""
        if self.slot is not None:
            self.slot.remove()

    def finish(self) -> None:
        """The app quits cleanly: nothing to recover, and the slot is free again."""
        self._timer.stop()
        self.discard()
        if self.slot is not None:
            self.slot.release()
            self.slot = None
        self.folder = None

    # ----- restoring -----------------------------------------------------------------
    def restore(self, slot: RecoverySlot, info: RecoveryInfo) -> bool:
        """Open a crashed app's autosave as this window's unsaved model, named and placed
        as it was (so Save goes where the user expects), and keep autosaving into it."""
        from nnviz.core.modelfile import load_model

        if self.window.runner.active:
            self._report("Stop training first: the autosaved model is kept for the next start.")
            return False
        if not self.window.documents.may_replace(f"Restore {info.name}?"):
            return False
        try:
            loaded = load_model(slot.model_path)
        except NnvizError as exc:
            self._report(f"Cannot restore the autosaved model: {exc}")
            return False
        loaded.path = Path(info.path) if info.path else None
        loaded.kind = info.kind if info.kind in ("nnviz", "preset", "spec") else "preset"
        if loaded.kind == "nnviz" and loaded.path is None:
            loaded.kind = "preset"
        self._restoring = True
        try:
            self.session.set_model(loaded)
            self.session.set_dirty(True)
        finally:
            self._restoring = False
        if self.slot is not None and self.slot is not slot:
            self.discard()
            self.slot.release()
        self.slot = slot  # the files stay until this work is saved or thrown away
        self._saved = (self.session.loaded, self.session.snapshot)
        return True


def restore_question(info: RecoveryInfo) -> str:
    """E.g. "Restore lenet.nnviz trained to step 3,400 (autosaved 14:02)?"."""
    when = info.saved_at
    if when is None:
        stamp = ""
    elif when.date() == datetime.now().astimezone().date():
        stamp = f" (autosaved {when:%H:%M})"
    else:
        stamp = f" (autosaved {when:%d %b %Y %H:%M})"
    return f"Restore {info.name} trained to step {info.step:,}{stamp}?"


def offer_recovery(window: MainWindow) -> QMessageBox | None:
    """Offer the newest work a crashed app left behind (the rest waits for later starts).

    The question is window-modal but does not block: Restore opens the work, Discard
    deletes it, closing the box keeps it for the next start. Returns the box, or None.
    """
    autosave = window.documents.autosave
    folder = autosave.folder or recovery_folder()
    try:
        slots = left_behind(folder)
    except NnvizError as exc:
        window.show_error(str(exc))
        return None
    if not slots:
        return None
    slot, others = slots[0], slots[1:]
    for other in others:
        other.release()
    try:
        info = slot.read_info()
    except NnvizError as exc:  # a damaged checkpoint: say so, and keep it for a look
        window.show_error(f"An autosaved model could not be read: {exc}\n({slot.model_path})")
        slot.release()
        return None
    box = QMessageBox(
        QMessageBox.Icon.Question, RESTORE_TITLE, restore_question(info), parent=window
    )
    box.setObjectName("restore_question")
    box.setInformativeText("nnviz closed before this training was saved.")
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton(QMessageBox.StandardButton.Discard)
    box.setDefaultButton(restore)

    def answered() -> None:
        clicked = box.clickedButton()
        if clicked is restore and autosave.restore(slot, info):
            return
        if clicked is discard:
            slot.remove()
        slot.release()

    box.finished.connect(answered)
    box.open()
    return box
