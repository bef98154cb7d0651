"""The app's state, without Qt: what is loaded, the latest training snapshot, status.

The GUI thread owns a ``Session``. The training runner puts the newest snapshot and
the reports since the last one here (latest wins: older snapshots are dropped, never
queued), and panels subscribe to the events. Nothing here touches Qt, so the same
state can drive tests or another front end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from psygnal import Signal

from nnviz.core.checkpoint import Checkpoint
from nnviz.core.data import DataSplits
from nnviz.core.errors import NnvizError
from nnviz.core.modelfile import LoadedModel
from nnviz.core.models import build_model
from nnviz.core.snapshot import Event, Snapshot
from nnviz.core.training import History, TrainConfig

# Training status as the user sees it.
IDLE, RUNNING, PAUSED, STOPPED, COMPLETED, FAILED = (
    "idle",
    "running",
    "paused",
    "stopped",
    "completed",
    "failed",
)


@dataclass(frozen=True)
class CurrentInput:
    """The digit the views look at: a sample from the data or a drawing."""

    image: np.ndarray  # float32 (28, 28) in [0, 1], ink high (read-only)
    label: int | None  # the true class when known
    description: str  # e.g. "MNIST test #42" or "your drawing"


class Session:
    """What the app shows. Mutated on the GUI thread only."""

    model_loaded = Signal()  # a different model: panels rebuild
    data_changed = Signal()
    snapshot_changed = Signal(object)  # the newest Snapshot
    events_added = Signal(object)  # list of reports since the last publish
    status_changed = Signal(str)
    dirty_changed = Signal(bool)
    config_changed = Signal()
    error = Signal(str)  # a message for the user; the app keeps running
    input_changed = Signal()  # a different current input

    def __init__(self) -> None:
        self.loaded: LoadedModel | None = None
        self.train_model: torch.nn.Module | None = None  # the module the trainer updates
        self.view_model: torch.nn.Module | None = None  # the GUI's own copy, for inference
        self.data: DataSplits | None = None
        self.data_source = "mnist"
        self.config = TrainConfig()
        self.history = History()
        self.snapshot: Snapshot | None = None
        self.status = IDLE
        self.dirty = False
        self.path: Path | None = None
        self.current_input: CurrentInput | None = None
        # Activations for the current input and weights, computed once and shared by
        # every panel; the key says which input and weights they belong to.
        self._activations: dict[str, np.ndarray] | None = None
        self._activations_key: tuple[int, int] | None = None
        self._weights_version = 0

    # ----- model and data --------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        """Only models nnviz built from a spec can be trained; foreign ones are view-only."""
        return self.loaded is not None and self.loaded.spec is not None

    def set_model(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.path = loaded.path if loaded.kind == "nnviz" else None
        self.history = History(loaded.history)
        self.snapshot = None
        if loaded.spec is not None:
            self.train_model = build_model(loaded.spec)
            self.train_model.load_state_dict(loaded.module.state_dict())
            if loaded.train_config:
                # Keep the steering settings (pace, threads) the user has now.
                saved = TrainConfig.from_dict(loaded.train_config).to_dict()
                keep = ("steps_per_second", "num_threads", "snapshot_interval_s", "device")
                self.config = TrainConfig.from_dict(
                    {**saved, **{k: getattr(self.config, k) for k in keep}}
                )
                self.config_changed.emit()
        else:
            self.train_model = None
        self.view_model = loaded.module
        self._weights_version += 1
        self._set_status(IDLE)
        self.set_dirty(False)
        self.model_loaded.emit()

    def set_data(self, data: DataSplits, source: str) -> None:
        self.data = data
        self.data_source = source
        self.data_changed.emit()

    def set_config(self, config: TrainConfig) -> None:
        self.config = config
        self.config_changed.emit()

    # ----- training ----------------------------------------------------------------------
    def publish(self, snapshot: Snapshot | None, events: list[Event]) -> None:
        """The runner's latest news: a snapshot (latest wins) and the reports since the last."""
        if events:
            self.events_added.emit(events)
        if snapshot is not None and snapshot is not self.snapshot:
            self.snapshot = snapshot
            if self.view_model is not None and self.trainable:
                # The views' own copy: never the module the worker is training.
                self.view_model.load_state_dict(snapshot.state_dict())
                self._weights_version += 1
            if snapshot.step > 0:
                self.set_dirty(True)
            self.snapshot_changed.emit(snapshot)
        if snapshot is not None and snapshot.status != self.status:
            self._set_status(snapshot.status)

    def set_status(self, status: str) -> None:
        self._set_status(status)

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.status_changed.emit(status)

    def set_dirty(self, dirty: bool) -> None:
        if dirty != self.dirty:
            self.dirty = dirty
            self.dirty_changed.emit(dirty)

    def to_checkpoint(self) -> Checkpoint:
        """What Save writes: the weights the user sees (the latest snapshot), spec, history."""
        if self.loaded is None or self.loaded.spec is None or self.view_model is None:
            raise NnvizError(
                "only models built by nnviz (presets, custom architectures, .nnviz files) can "
                "be saved as .nnviz; this model was opened from a foreign file"
            )
        return Checkpoint(
            spec=self.loaded.spec,
            state_dict={
                k: v.detach().cpu().clone() for k, v in self.view_model.state_dict().items()
            },
            class_names=list(self.loaded.class_names),
            train_config={**self.config.to_dict(), "data": self.data_source},
            history=self.history.to_dict(),
        )

    # ----- the current input and what the model makes of it ----------------------------
    def set_input(self, image: np.ndarray, label: int | None, description: str) -> None:
        image = np.array(image, dtype=np.float32, copy=True).reshape(28, 28)
        image.flags.writeable = False
        self.current_input = CurrentInput(image, label, description)
        self.input_changed.emit()

    def input_tensor(self) -> torch.Tensor | None:
        """The current input as a (1, 1, 28, 28) batch, or None."""
        if self.current_input is None:
            return None
        return torch.from_numpy(self.current_input.image.copy()).reshape(1, 1, 28, 28)

    def activations(self) -> dict[str, np.ndarray]:
        """Every layer's output for the current input on the views' weights (cached)."""
        from nnviz.core.inspect import capture_activations

        x = self.input_tensor()
        if x is None or self.loaded is None or self.view_model is None:
            return {}
        key = (id(self.current_input), self._weights_version)
        if key != self._activations_key or self._activations is None:
            model = self.loaded.program if self.loaded.program is not None else self.view_model
            self._activations = capture_activations(model, x)
            self._activations_key = key
        return self._activations

    def probabilities(self) -> np.ndarray | None:
        """Softmax of the last layer's output for the current input."""
        acts = self.activations()
        if not acts:
            return None
        logits = torch.from_numpy(np.array(list(acts.values())[-1], dtype=np.float32))
        return torch.softmax(logits.reshape(1, -1), dim=1)[0].numpy()

    def report_error(self, message: str) -> None:
        self.error.emit(message)
