"""Recovery files: the unsaved trained model as it was at the last autosave.

Each running app owns one slot in the recovery folder: ``autosave-N.nnviz`` (the
checkpoint, written atomically), ``autosave-N.json`` (what the model was: its name and
the file it came from) and ``autosave-N.lock``, an operating-system lock the app holds
while it runs. The step and the time come from the checkpoint itself, so a process
killed between the two writes cannot leave a description of other weights.

The system lets go of the lock when a process dies however it dies, so at the next
start a slot with files whose lock can be taken is work a crashed app left behind; a
slot whose lock is held belongs to an app still running beside us.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from nnviz.core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint, write_atomically
from nnviz.core.errors import ModelFileError

PREFIX = "autosave-"
MAX_SLOTS = 64  # apps running at once on one account; far more than anyone opens


@dataclass(frozen=True)
class RecoveryInfo:
    """What an autosaved model was, for the offer to restore it and for the restore."""

    name: str  # as the title showed it, e.g. "lenet.nnviz"
    path: str | None  # the file it was opened from or last saved to, if any
    kind: str  # the LoadedModel kind it had: "nnviz", "preset" or "spec"
    step: int = 0  # the training step of the autosaved weights (from the checkpoint)
    saved_at: datetime | None = None  # when they were written (the checkpoint's time)

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "path": self.path, "kind": self.kind}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> RecoveryInfo:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        path = data.get("path")
        return cls(name=str(data["name"]), path=str(path) if path else None, kind=str(data["kind"]))


def history_up_to(history: dict[str, Any], step: int) -> dict[str, Any]:
    """The metric history as far as ``step``, with its per-step lists of equal length.

    While training runs, the trainer appends to the history on its own thread, one list
    at a time and ahead of the weights the window holds: a copy taken then can have a
    step without its loss, or points past the saved weights.
    """
    lists = ("step", "loss", "accuracy")
    points = min(len(history.get(key) or []) for key in lists)
    steps = list(history.get("step") or [])[:points]
    keep = sum(1 for s in steps if s is not None and s <= step)
    trimmed = dict(history)
    for key in lists:
        trimmed[key] = list(history.get(key) or [])[:keep]
    for key in ("epochs", "changes"):
        trimmed[key] = [e for e in history.get(key) or [] if e.get("step", 0) <= step]
    return trimmed


class RecoverySlot:
    """One app's recovery files, and the lock that says they are in use (held here)."""

    def __init__(self, folder: Path, number: int, lock: FileLock) -> None:
        self.folder = folder
        self.number = number
        self._lock = lock
        self._described: RecoveryInfo | None = None  # what the JSON file says now
        self.model_path = folder / f"{PREFIX}{number}.nnviz"
        self.info_path = folder / f"{PREFIX}{number}.json"

    def __repr__(self) -> str:
        return f"RecoverySlot({self.model_path})"

    @property
    def has_files(self) -> bool:
        return self.model_path.is_file()

    def write(self, checkpoint: Checkpoint, info: RecoveryInfo) -> None:
        """The description (when it changed), then the checkpoint, each atomically;
        ModelFileError if either fails."""
        described = RecoveryInfo(info.name, info.path, info.kind)
        if described != self._described or not self.info_path.is_file():
            _write_text_atomically(self.info_path, described.to_json())
            self._described = described
        save_checkpoint(self.model_path, checkpoint)

    def read_info(self) -> RecoveryInfo:
        """What the autosaved model was, at which step and when; NnvizError if the
        checkpoint cannot be read. A missing or damaged description gives the spec's
        name and no file."""
        checkpoint = load_checkpoint(self.model_path)
        steps = [s for s in checkpoint.history.get("step") or [] if isinstance(s, int)]
        try:
            described = RecoveryInfo.from_json(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            described = RecoveryInfo(checkpoint.spec.name, None, "preset")
        saved_at = datetime.fromtimestamp(_mtime(self.model_path)).astimezone()
        return replace(described, step=steps[-1] if steps else 0, saved_at=saved_at)

    def remove(self) -> None:
        """Delete the recovery files (keeping the slot)."""
        self._described = None
        for path in (self.model_path, self.info_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def release(self) -> None:
        """Let go of the slot (its files stay for the next start to offer)."""
        self._lock.release()


def claim_slot(folder: Path) -> RecoverySlot:
    """A slot of our own with no files in it; ModelFileError if the folder cannot be used."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelFileError(f"cannot make the recovery folder {folder}: {exc}") from exc
    for number in range(1, MAX_SLOTS + 1):
        slot = _try_lock(folder, number)
        if slot is None:
            continue
        if not slot.has_files:
            return slot
        slot.release()  # a crashed app's work: left for the next start to offer
    raise ModelFileError(f"every recovery slot in {folder} is in use")


def left_behind(folder: Path) -> list[RecoverySlot]:
    """Slots with files that no running app holds, newest first; each is locked here."""
    if not folder.is_dir():
        return []
    found = []
    for model in folder.glob(f"{PREFIX}*.nnviz"):
        number = model.stem.removeprefix(PREFIX)
        if not number.isdigit():
            continue
        slot = _try_lock(folder, int(number))
        if slot is not None:
            found.append(slot)
    found.sort(key=lambda slot: _mtime(slot.model_path), reverse=True)
    return found


def _try_lock(folder: Path, number: int) -> RecoverySlot | None:
    lock = FileLock(folder / f"{PREFIX}{number}.lock", thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    except OSError as exc:
        raise ModelFileError(f"cannot lock a recovery slot in {folder}: {exc}") from exc
    return RecoverySlot(folder, number, lock)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, text.encode("utf-8"))
