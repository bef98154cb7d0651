"""The app's state, without Qt: what is loaded, the latest training snapshot, status.

The GUI thread owns a ``Session``. The training runner puts the newest snapshot and
the reports since the last one here (latest wins: older snapshots are dropped, never
queued), and panels subscribe to the events. Nothing here touches Qt, so the same
state can drive tests or another front end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from psygnal import Signal

from nnviz.core.checkpoint import Checkpoint
from nnviz.core.data import DataSplits
from nnviz.core.errors import NnvizError
from nnviz.core.interventions import Interventions, Knockout, knockout_effects
from nnviz.core.modelfile import LoadedModel
from nnviz.core.models import build_model
from nnviz.core.snapshot import Event, Snapshot, frozen_copy
from nnviz.core.training import History, TrainConfig
from nnviz.core.weight_history import PREFIX as HISTORY_PREFIX
from nnviz.core.weight_history import WeightHistory, has_saved_history

if TYPE_CHECKING:
    from nnviz.core.inspect import ActivationCapture

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
    # The weights the views show changed: the newest Snapshot, or, while the user looks
    # at the past, one rebuilt from the weight history (its step is the step shown).
    snapshot_changed = Signal(object)
    events_added = Signal(object)  # list of reports since the last publish
    status_changed = Signal(str)
    dirty_changed = Signal(bool)
    config_changed = Signal()
    error = Signal(str)  # a message for the user; the app keeps running
    input_changed = Signal()  # a different current input
    history_changed = Signal()  # the weight history gained or lost snapshots, or its settings
    view_step_changed = Signal(object)  # the history step the views show; None = live
    interventions_changed = Signal()  # units switched off, clamped or restored

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
        self._activations_key: tuple[int, int, Interventions] | None = None
        self._probabilities: np.ndarray | None = None  # softmax of the cached activations
        self._capture: ActivationCapture | None = None  # for the model the views run
        self._weights_version = 0
        # History: weight snapshots over the run, and which of them the views show.
        self.weight_history = WeightHistory()
        self.viewing_step: int | None = None  # None: the views follow the latest weights
        self.save_history = False  # Save writes the weight history into the .nnviz file
        self._latest: Snapshot | None = None  # the newest weights, shown or not
        self._interventions = Interventions()

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
                keep = (
                    "steps_per_second",
                    "num_threads",
                    "snapshot_interval_s",
                    "stats_interval_s",
                    "device",
                )
                self.config = TrainConfig.from_dict(
                    {**saved, **{k: getattr(self.config, k) for k in keep}}
                )
                self.config_changed.emit()
        else:
            self.train_model = None
        self.view_model = loaded.module
        self._start_history(loaded)
        self._weights_version += 1
        self._interventions = Interventions()  # unit numbers mean nothing in another model
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
            live = self.viewing_step is None  # looking at the past: record, keep showing it
            if self.trainable:
                self._record(snapshot)
            if live and self.view_model is not None and self.trainable:
                # The views' own copy: never the module the worker is training.
                self.view_model.load_state_dict(snapshot.state_dict())
                self._weights_version += 1
            if snapshot.step > 0:
                self.set_dirty(True)
            if live:
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
        """What Save writes: the latest weights (even while the views show the past), spec,
        metric history, and the weight history when ``save_history`` is set."""
        if self.loaded is None or self.loaded.spec is None or self.view_model is None:
            raise NnvizError(
                "only models built by nnviz (presets, custom architectures, .nnviz files) can "
                "be saved as .nnviz; this model was opened from a foreign file"
            )
        state = self.view_model.state_dict()
        if self.viewing_step is not None and self._latest is not None:
            # The view model holds a past step; the file gets the newest weights, in the
            # model's own dtypes (snapshots hold every tensor as float32).
            latest = self._latest.weights
            state = {k: torch.from_numpy(latest[k].copy()).to(v.dtype) for k, v in state.items()}
        return Checkpoint(
            spec=self.loaded.spec,
            state_dict={k: v.detach().cpu().clone() for k, v in state.items()},
            class_names=list(self.loaded.class_names),
            train_config={**self.config.to_dict(), "data": self.data_source},
            history=self.history.to_dict(),
            extra=self.weight_history.to_tensors() if self.save_history else {},
        )

    # ----- weights the user changed (taught, or a teaching undone) ----------------------
    def weights_locked(self) -> str | None:
        """Why the user cannot change the weights now, or None when they can.

        Paused counts as training: the paused trainer holds the module and its optimizer
        state, and its last snapshot would be published over the user's weights.
        """
        if self.loaded is None or self.view_model is None:
            return "load a model first"
        if not self.trainable:
            return (
                "this model was opened from a foreign file (.pt2 or TorchScript): nnviz can "
                "look inside it but not change its weights"
            )
        if self.status in (RUNNING, PAUSED):
            return "stop training first: the trainer is working on these weights"
        if self.viewing_step is not None:
            return (
                f"the views show step {self.viewing_step:,} from the history; go back to the "
                "latest weights first"
            )
        return None

    def set_weights(self, state_dict: dict[str, torch.Tensor], reason: str) -> Snapshot:
        """Weights the user changed, not training (``reason``, e.g. "taught a 4").

        The views and the next training run take them, the weight history keeps them at
        the current step (in place of what it held there: they are the run's latest
        state), the run is marked unsaved, and ``snapshot_changed`` fires. Raises
        NnvizError, changing nothing, when ``weights_locked`` says why not or the weights
        do not fit the model.
        """
        locked = self.weights_locked()
        if locked is not None:
            raise NnvizError(f"cannot change the weights: {locked}")
        assert self.view_model is not None
        _check_fits(state_dict, self.view_model.state_dict())
        self.view_model.load_state_dict(state_dict)
        if self.train_model is not None:
            self.train_model.load_state_dict(state_dict)
        latest = self._latest
        step = latest.step if latest is not None else self.history.last_step
        snapshot = Snapshot(
            step=step,
            epoch=latest.epoch if latest is not None else self._epoch_of(step),
            optimizer_step=latest.optimizer_step if latest is not None else 0,
            weights={k: frozen_copy(v) for k, v in self.view_model.state_dict().items()},
            status=self.status,
            meta={"reason": reason},
        )
        self._record(snapshot)
        self.snapshot = snapshot
        self._weights_version += 1
        self.set_dirty(True)
        self.snapshot_changed.emit(snapshot)
        return snapshot

    # ----- history: the weights over the run -------------------------------------------
    def show_step(self, step: int) -> None:
        """Show every view as the network was at ``step`` (the nearest stored step)."""
        if self.view_model is None or not self.trainable or not len(self.weight_history):
            return
        entry = self.weight_history.nearest(step)
        if entry.step == self.viewing_step:
            return
        self.viewing_step = entry.step
        self.weight_history.pinned = entry.step  # thinning must not take it from under the user
        past = Snapshot(
            step=entry.step,
            epoch=entry.epoch,
            optimizer_step=entry.step,
            weights=entry.weights,
            status=self.status,
            meta={"from_history": True},
        )
        self._show_weights(past)
        self.view_step_changed.emit(entry.step)

    def show_live(self) -> None:
        """Follow the latest weights again."""
        if self.viewing_step is None:
            return
        self.viewing_step = None
        self.weight_history.pinned = None
        if self._latest is not None and self.view_model is not None:
            self._show_weights(self._latest)
        self.view_step_changed.emit(None)

    def set_save_history(self, save: bool) -> None:
        """Whether Save writes the weight history into the .nnviz file."""
        if bool(save) != self.save_history:
            self.save_history = bool(save)
            self.history_changed.emit()

    def set_history_budget(self, budget_bytes: int) -> None:
        """The memory the weight history may use; a smaller budget thins it at once."""
        try:
            self.weight_history.budget_bytes = budget_bytes
        except ValueError as exc:
            self.report_error(str(exc))
            return
        self.history_changed.emit()

    def _show_weights(self, snapshot: Snapshot) -> None:
        assert self.view_model is not None
        self.view_model.load_state_dict(snapshot.state_dict())
        self._weights_version += 1
        self.snapshot_changed.emit(snapshot)

    def _record(self, snapshot: Snapshot) -> None:
        self._latest = snapshot
        epoch = self._epoch_of(snapshot.step)
        self.weight_history.add(snapshot.step, epoch, snapshot.weights)
        self.history_changed.emit()

    def _epoch_of(self, step: int) -> int:
        """The 0-based epoch a step belongs to: the number of epochs that ended before it.

        From the metric history, not the snapshot: the trainer labels the snapshot it
        takes at an epoch's end with the next epoch, and its first snapshot with 0.
        """
        return sum(1 for e in self.history.epochs if e.get("step", 0) < step)

    def _start_history(self, loaded: LoadedModel) -> None:
        """A new model, a new history: the store saved with it (if any), then its weights."""
        was_viewing = self.viewing_step is not None
        self.viewing_step = None
        self.weight_history = WeightHistory(self.weight_history.budget_bytes)
        self.save_history = False
        self._latest = None
        if loaded.spec is not None:  # foreign models are view-only: their weights never change
            weights = {k: frozen_copy(v) for k, v in loaded.module.state_dict().items()}
            if has_saved_history(loaded.extra):
                self._restore_history(loaded, weights)
            step = self.history.last_step
            self._latest = Snapshot(
                step=step,
                epoch=self._epoch_of(step),
                optimizer_step=0,
                weights=weights,
                status=IDLE,
            )
            self.weight_history.add(self._latest.step, self._latest.epoch, weights)
        if was_viewing:
            self.view_step_changed.emit(None)
        self.history_changed.emit()

    def _restore_history(self, loaded: LoadedModel, weights: dict[str, np.ndarray]) -> None:
        expected = {k: tuple(v.shape) for k, v in weights.items()}
        try:
            self.weight_history = WeightHistory.from_tensors(
                loaded.extra, budget_bytes=self.weight_history.budget_bytes, expected=expected
            )
            self.save_history = True  # it came with the file: saving again keeps it
        except NnvizError as exc:
            self.report_error(f"{loaded.display_name}: its weight history was left out: {exc}")
        # The store holds what it needs; drop the file's copies of the tensors.
        loaded.extra = {k: v for k, v in loaded.extra.items() if not k.startswith(HISTORY_PREFIX)}

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
        if self.current_input is None or self.loaded is None or self.view_model is None:
            return {}
        key = (id(self.current_input), self._weights_version, self._interventions)
        if key != self._activations_key or self._activations is None:
            from nnviz.core.inspect import ActivationCapture  # torch.fx and export: not at start-up

            model = self._inspected_model()
            # Its layers are found once per model: the views' model only gets new weights.
            if self._capture is None or self._capture.model is not model:
                self._capture = ActivationCapture(model)
            self._activations = self._capture(
                self.input_tensor(), interventions=self._interventions
            )
            self._activations_key = key
            self._probabilities = None
        return self._activations

    def _inspected_model(self) -> object:
        """What the views run: the exported program of a .pt2, else the views' module."""
        return self.loaded.program if self.loaded.program is not None else self.view_model

    def probabilities(self) -> np.ndarray | None:
        """Softmax of the last layer's output for the current input (with the units
        that are switched off or clamped)."""
        acts = self.activations()
        if not acts:
            return None
        # Once per forward pass: three views ask for them on every move of a stroke.
        if self._probabilities is None:
            logits = torch.from_numpy(np.array(list(acts.values())[-1], dtype=np.float32))
            probs = torch.softmax(logits.reshape(1, -1), dim=1)[0].numpy()
            probs.flags.writeable = False  # shared by every caller
            self._probabilities = probs
        return self._probabilities

    def report_error(self, message: str) -> None:
        self.error.emit(message)

    # ----- interventions: units switched off or clamped ----------------------------------
    @property
    def interventions(self) -> Interventions:
        """Layer -> {unit: value} forced on the views' model; activations() applies them."""
        return self._interventions

    def switch_off(self, layer: str, unit: int) -> None:
        """Force ``unit`` of ``layer`` (a neuron, or a conv channel's whole map) to zero."""
        self.clamp(layer, unit, 0.0)

    def clamp(self, layer: str, unit: int, value: float) -> None:
        """Force ``unit`` of ``layer`` to ``value``; NnvizError if the model has no such unit."""
        self._check_unit(layer, unit)
        self._set_interventions(self._interventions.setting(layer, unit, value))

    def restore(self, layer: str, unit: int) -> None:
        """Let ``unit`` of ``layer`` compute its own output again."""
        self._set_interventions(self._interventions.without(layer, unit))

    def restore_all(self) -> None:
        """Every unit computes its own output again."""
        self._set_interventions(Interventions())

    def knockout(self, layer: str, target_class: int) -> Knockout:
        """What switching off each unit of ``layer`` alone does to the current input's
        ``target_class`` probability (on top of what is switched off now)."""
        x = self.input_tensor()
        if x is None or self.loaded is None:
            raise NnvizError("pick an input first: units are ranked for one digit")
        return knockout_effects(
            self._inspected_model(), x, layer, target_class, self._interventions
        )

    def _set_interventions(self, interventions: Interventions) -> None:
        if interventions != self._interventions:
            self._interventions = interventions
            self.interventions_changed.emit()

    def _check_unit(self, layer: str, unit: int) -> None:
        if self.loaded is None or self.view_model is None:
            raise NnvizError("load a model first")
        from nnviz.core.inspect import summarize

        shapes = {
            info.name: info.output_shape
            for info in summarize(self._inspected_model(), tuple(self.loaded.input_shape)).layers
        }
        shape = shapes.get(layer)
        if shape is None:
            raise NnvizError(f"the model has no layer named {layer!r}")
        if len(shape) < 2 or not 0 <= unit < shape[1]:
            count = shape[1] if len(shape) > 1 else 0
            raise NnvizError(f"{layer} has {count} units; there is no unit {unit}")


def _check_fits(state_dict: dict[str, torch.Tensor], current: dict[str, torch.Tensor]) -> None:
    """NnvizError unless ``state_dict`` has exactly the model's tensors, in their shapes:
    a half-loaded model would be worse than none."""
    missing = sorted(set(current) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(current))
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} (the model's is {tuple(v.shape)})"
        for k, v in current.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    problems = [
        *([f"missing {', '.join(missing)}"] if missing else []),
        *([f"not in the model: {', '.join(unexpected)}"] if unexpected else []),
        *([f"wrong shape: {', '.join(wrong)}"] if wrong else []),
    ]
    if problems:
        raise NnvizError("these weights do not fit the model: " + "; ".join(problems))
