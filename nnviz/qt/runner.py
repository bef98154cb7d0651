"""Runs the core's Trainer in a QThread and hands its news to the Session.

No signal per batch (a signal per batch trained 5.3x slower): the trainer
keeps its latest snapshot under a lock and queues its reports; a 30 Hz timer on the
GUI thread takes both and publishes them on the Session, latest wins.
Stopping sets the trainer's event and waits on the thread directly: a stop request
queued as a signal to a busy worker never runs, and waiting on a thread whose quit is
queued to the waiting thread deadlocks.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from nnviz.core.errors import NnvizError
from nnviz.core.training import Trainer
from nnviz.state import COMPLETED, FAILED, PAUSED, RUNNING, STOPPED, Session

POLL_INTERVAL_MS = 33  # at most 30 GUI updates a second
# While training runs flat out the views that follow it redraw within a share of a core,
# about once a second each, and taking the news 30 times a second cost a fifth of that
# share (16 ms a second beside lenet): it is taken 10 times a second then.
FLAT_OUT_POLL_S = 0.1
# A trainer that reports its end has only to return from its thread (microseconds).
THREAD_END_WAIT_MS = 1000


class _TrainingThread(QThread):
    """Runs ``trainer.run()``; any exception becomes a failed status, never a crash."""

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer
        self.crash: str | None = None

    def run(self) -> None:  # the worker thread
        try:
            self.trainer.run()
        except Exception as exc:  # noqa: BLE001 - reported to the user on the GUI thread
            self.crash = f"training stopped: {type(exc).__name__}: {exc}"


class TrainingRunner(QObject):
    """Start, pause, resume, step and stop training; publish to the Session at <= 30 Hz."""

    finished = Signal(str)  # how the run ended: completed, stopped or failed

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.trainer: Trainer | None = None
        self._thread: _TrainingThread | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)
        self._hold_until = 0.0
        self._last_poll = 0.0

    @property
    def active(self) -> bool:
        """True while a run is going (running or paused)."""
        return self._thread is not None

    @property
    def flat_out(self) -> bool:
        """True while training runs as fast as it can (not paused, no watchable pace)."""
        t = self.trainer
        return self.active and t is not None and not t.paused and not t.config.steps_per_second

    def start(self, *, paused: bool = False) -> None:
        s = self.session
        if self.active:
            return
        if not s.trainable or s.train_model is None:
            raise NnvizError(
                "this model was opened from a file without its architecture, so it can be "
                "inspected but not trained; pick a preset or a .nnviz model to train"
            )
        if s.data is None:
            raise NnvizError("no data is loaded")
        # Continue from the view model's weights: they are what the user sees. Training
        # goes on from the newest weights, so a view of the past returns to them first.
        s.show_live()
        s.train_model.load_state_dict(s.view_model.state_dict())
        self.trainer = Trainer(s.train_model, s.data, s.config, history=s.history)
        if paused:
            self.trainer.pause()
        self._thread = _TrainingThread(self.trainer)
        self._thread.start()
        self._timer.start()
        s.set_status(PAUSED if paused else RUNNING)

    def pause(self) -> None:
        if self.trainer is not None:
            self.trainer.pause()

    def resume(self) -> None:
        if self.trainer is not None:
            self.trainer.resume()

    def step(self) -> None:
        """One step: starts a paused run if none is going."""
        if not self.active:
            self.start(paused=True)
        assert self.trainer is not None
        self.trainer.pause()
        self.trainer.step_once()

    def stop(self, timeout_ms: int = 2000) -> bool:
        """Stop within one batch and wait for the thread; True if it ended in time."""
        if self._thread is None or self.trainer is None:
            return True
        self.trainer.stop()
        ended = self._thread.wait(timeout_ms)
        if ended:
            self.poll()
        return ended

    def set_lr(self, lr: float) -> None:
        if self.trainer is not None:
            self.trainer.set_lr(lr)

    def set_weight_decay(self, wd: float) -> None:
        if self.trainer is not None:
            self.trainer.set_weight_decay(wd)

    def set_pace(self, steps_per_second: float | None) -> None:
        if self.trainer is not None:
            self.trainer.set_pace(steps_per_second)

    def hold(self, seconds: float) -> None:
        """Take no news from the trainer for ``seconds`` (a person is drawing); the
        trainer goes on, and what it reported is taken in after. It leaves out the
        layer statistics meanwhile: nothing would show them, and they cost the GIL."""
        self._hold_until = time.perf_counter() + seconds
        if self.trainer is not None:
            self.trainer.hold_statistics(seconds)

    def _tick(self) -> None:
        now = time.perf_counter()
        if now < self._hold_until:
            return
        if self.flat_out and now - self._last_poll < FLAT_OUT_POLL_S:
            return
        self._last_poll = now
        self.poll()

    def poll(self) -> None:
        """Take the trainer's news (GUI thread). Ends the run once the thread is done."""
        trainer, thread = self.trainer, self._thread
        if trainer is None or thread is None:
            return
        # A trainer that has ended is only returning from its thread: wait for that, so
        # the run is over (not active) before the Session hears its final status. Else
        # that status reached the window while the run still looked active, and Open,
        # Custom architecture and the Data menu stayed off until Stop was pressed.
        ended = trainer.status in (COMPLETED, STOPPED, FAILED)
        done = thread.isFinished() or (ended and thread.wait(THREAD_END_WAIT_MS))
        events = trainer.poll()
        snapshot = trainer.latest_snapshot()
        if done:
            self._timer.stop()
            thread.wait()
            self._thread = None
        self.session.publish(snapshot, events)
        if not done:
            return
        outcome = trainer.finished
        if thread.crash is not None:
            self.session.set_status(FAILED)
            self.session.report_error(thread.crash)
            self.finished.emit(FAILED)
            return
        reason = outcome.reason if outcome is not None else STOPPED
        self.session.set_status({"completed": COMPLETED, "stopped": STOPPED}.get(reason, FAILED))
        if reason == "failed" and outcome is not None:
            self.session.report_error(outcome.message)
        self.finished.emit(reason)
