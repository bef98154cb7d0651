"""Slow work for the Teach & dream panel, off the GUI thread, one job at a time.

A plain ``threading.Thread`` runs the job on copies it was handed (a deep copy of the
views' model, read-only arrays), so nothing it touches is shared; a QTimer on the GUI
thread polls for the outcome and hands it to the caller there. Errors come back as a
message, never as a crash. A new model abandons a job without waiting (it may run for
seconds); ``stop`` waits for every job still running, so closing the panel leaves no
thread behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer

from nnviz.core.errors import NnvizError

POLL_MS = 30


class BackgroundJob(QObject):
    """Runs ``work()`` on a thread; ``done(result)`` or ``failed(message)`` on the GUI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        # Each run writes its outcome, (ok, result or message), into a box of its own, so
        # an abandoned run finishing late cannot overwrite the next one's.
        self._box: list[tuple[bool, Any]] = []
        self._done: Callable[[Any], None] | None = None
        self._failed: Callable[[str], None] | None = None
        self._abandoned: list[threading.Thread] = []
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def start(
        self,
        work: Callable[[], Any],
        done: Callable[[Any], None],
        failed: Callable[[str], None],
    ) -> bool:
        """Start ``work`` unless a job is running; False if one is."""
        if self.busy:
            return False
        self._box, self._done, self._failed = [], done, failed
        self._thread = threading.Thread(target=_run, args=(work, self._box), daemon=True)
        self._thread.start()
        self._timer.start()
        return True

    def poll(self) -> None:
        """Hand a finished job's outcome to its callback (GUI thread)."""
        for thread in [t for t in self._abandoned if not t.is_alive()]:
            thread.join()
            self._abandoned.remove(thread)
        thread = self._thread
        if thread is None or thread.is_alive():
            if thread is None and not self._abandoned:
                self._timer.stop()
            return
        thread.join()
        self._thread = None
        if not self._abandoned:
            self._timer.stop()
        box, done, failed = self._box, self._done, self._failed
        self._done = self._failed = None
        if not box:
            return
        ok, value = box[0]
        if ok and done is not None:
            done(value)
        elif not ok and failed is not None:
            failed(value)

    def abandon(self) -> None:
        """Forget the running job without waiting: it works on copies of its own, so it
        may finish in the background; its outcome is dropped."""
        if self._thread is not None:
            self._abandoned.append(self._thread)
        self._thread = None
        self._done = self._failed = None

    def stop(self, timeout_s: float = 30.0) -> None:
        """Wait for every job still running and forget their outcomes (closing)."""
        self.abandon()
        self._timer.stop()
        for thread in self._abandoned:
            thread.join(timeout_s)
        self._abandoned.clear()


def _run(work: Callable[[], Any], box: list[tuple[bool, Any]]) -> None:  # the job's thread
    try:
        box.append((True, work()))
    except NnvizError as exc:
        box.append((False, str(exc)))
    except Exception as exc:  # noqa: BLE001 - shown to the user; the app keeps running
        box.append((False, f"{type(exc).__name__}: {exc}"))
