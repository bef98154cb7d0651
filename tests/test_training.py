"""The training engine on real MNIST digits: determinism, control from another thread,
reports, snapshots, NaN guard."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch

from nnviz.core.models import build_model, get_spec
from nnviz.core.snapshot import EpochReport, SettingChanged, StepReport
from nnviz.core.training import OPTIMIZERS, TrainConfig, Trainer


def _trainer(data, preset="mlp-3b1b", **config):
    cfg = TrainConfig(**{"batch_size": 32, "epochs": 1, **config})
    return Trainer(build_model(get_spec(preset), seed=cfg.seed), data, cfg)


def _wait(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_same_seed_same_weights_and_other_seed_differs(small_mnist):
    runs = []
    for seed in (3, 3, 4):
        trainer = _trainer(small_mnist, "lenet", seed=seed)
        assert trainer.run().reason == "completed"
        runs.append(trainer.model.state_dict())
    for key in runs[0]:
        assert torch.equal(runs[0][key], runs[1][key]), key
    assert any(not torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_learns(small_mnist, optimizer):
    trainer = _trainer(small_mnist, "mlp", optimizer=optimizer, epochs=3)
    assert trainer.run().reason == "completed"
    losses = trainer.history.loss
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.7 * first, (first, last)
    val = trainer.history.epochs[-1]["val_accuracy"]
    assert val > 0.6  # 600 real digits, 3 epochs: well above chance (0.1)


def test_reports_steps_epochs_and_grad_norms(small_mnist):
    trainer = _trainer(small_mnist, epochs=2)
    trainer.run()
    events = trainer.poll()
    steps = [e for e in events if isinstance(e, StepReport)]
    epochs = [e for e in events if isinstance(e, EpochReport)]
    assert [s.step for s in steps] == list(range(1, 2 * math.ceil(600 / 32) + 1))
    assert set(steps[0].grad_norms) == {"fc1", "fc2", "output"}
    assert all(v > 0 for v in steps[0].grad_norms.values())
    assert steps[-1].samples_per_s > 0
    assert [e.epoch for e in epochs] == [0, 1]
    assert 0 <= epochs[-1].val_accuracy <= 1 and epochs[-1].val_loss > 0
    assert trainer.poll() == []  # drained


def test_pause_step_resume_stop_from_another_thread(small_mnist):
    trainer = _trainer(small_mnist, epochs=1000)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    try:
        assert _wait(lambda: trainer.history.last_step > 5)
        trainer.pause()
        assert _wait(lambda: trainer.status == "paused")
        paused_at = trainer.history.last_step
        time.sleep(0.1)
        assert trainer.history.last_step == paused_at
        assert trainer.latest_snapshot().step == paused_at  # fresh weights while paused
        trainer.step_once()
        assert _wait(lambda: trainer.history.last_step == paused_at + 1)
        time.sleep(0.05)
        assert trainer.history.last_step == paused_at + 1
        trainer.resume()
        assert _wait(lambda: trainer.history.last_step > paused_at + 10)
    finally:
        trainer.stop()
        stopped_at = trainer.history.last_step
        thread.join(5)
    assert not thread.is_alive()
    assert trainer.finished.reason == "stopped"
    assert trainer.history.last_step <= stopped_at + 1  # within one batch


def test_snapshots_are_consistent_copies(small_mnist):
    """A reader on another thread only ever sees the weights of a whole step."""
    recorded: dict[int, dict[str, np.ndarray]] = {}
    cfg = TrainConfig(batch_size=16, epochs=2, snapshot_interval_s=0.0)
    model = build_model(get_spec("mlp-3b1b"), seed=0)

    def listener(event):
        if isinstance(event, StepReport):
            recorded[event.step] = {
                k: v.detach().clone().numpy() for k, v in model.state_dict().items()
            }

    trainer = Trainer(model, small_mnist, cfg, listener=listener)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    seen = []
    while thread.is_alive():
        seen.append(trainer.latest_snapshot())
        time.sleep(0.001)  # let the trainer hold the GIL too
    thread.join()
    checked = 0
    for snap in seen:
        if snap.step in recorded:
            for key, value in snap.weights.items():
                assert np.array_equal(value, recorded[snap.step][key])
            assert not snap.weights[key].flags.writeable
            checked += 1
    assert checked > 10
    assert trainer.latest_snapshot().optimizer_step == trainer.history.last_step


def test_learning_rate_changes_apply_at_next_step(small_mnist):
    trainer = _trainer(small_mnist, epochs=1000, optimizer="sgd", lr=0.01)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    try:
        assert _wait(lambda: trainer.history.last_step > 3)
        trainer.set_lr(0.2)
        trainer.set_weight_decay(1e-4)
        assert _wait(
            lambda: (
                any(isinstance(e, SettingChanged) for e in trainer.history.changes)
                or trainer.history.changes
            )
        )
    finally:
        trainer.stop()
        thread.join(5)
    changes = {c["name"]: c for c in trainer.history.changes}
    assert changes["lr"]["value"] == 0.2 and changes["weight_decay"]["value"] == 1e-4
    assert trainer.optimizer.param_groups[0]["lr"] == 0.2
    reports = [e for e in trainer.poll() if isinstance(e, StepReport)]
    at = changes["lr"]["step"]
    assert all(r.lr == 0.01 for r in reports if r.step < at)
    assert all(r.lr == 0.2 for r in reports if r.step >= at)


def test_watchable_pace(small_mnist):
    trainer = _trainer(small_mnist, epochs=1000, steps_per_second=40)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    time.sleep(0.5)
    trainer.stop()
    thread.join(5)
    assert 10 <= trainer.history.last_step <= 30


def test_a_paced_runs_rate_is_its_pace_and_time_paused_does_not_count(small_mnist):
    """The status bar's samples/s (and so its "epoch ends in") comes from the reports: at a
    watchable pace they must give the pace's rate, not the rate of the steps alone."""
    pace, batch = 40, 32
    trainer = _trainer(small_mnist, epochs=1000, steps_per_second=pace, batch_size=batch)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    try:
        assert _wait(lambda: trainer.history.last_step >= 25)
        paced = [e for e in trainer.poll() if isinstance(e, StepReport)][-1].samples_per_s
        # The steps alone run mlp-3b1b at tens of thousands of samples a second here.
        assert 0.6 * pace * batch < paced < 1.5 * pace * batch, paced
        trainer.pause()
        assert _wait(lambda: trainer.status == "paused")
        trainer.poll()  # the steps before the pause
        for _ in range(10):  # single steps, far slower than the pace
            at = trainer.history.last_step
            trainer.step_once()
            assert _wait(lambda at=at: trainer.history.last_step == at + 1)
            time.sleep(0.1)
        alone = [e for e in trainer.poll() if isinstance(e, StepReport)]
        assert len(alone) == 10
        assert all(0.6 * pace * batch < r.samples_per_s < 1.5 * pace * batch for r in alone), [
            r.samples_per_s for r in alone
        ]
    finally:
        trainer.stop()
        thread.join(5)


def test_nan_loss_stops_with_a_reason_and_keeps_good_weights(small_mnist):
    trainer = _trainer(small_mnist, "mlp", optimizer="sgd", lr=1e12, momentum=0.0, epochs=3)
    finished = trainer.run()
    assert finished.reason == "failed"
    assert "at step" in finished.message and "try a lower learning rate" in finished.message
    assert ("NaN" in finished.message) or ("infinite" in finished.message)
    for value in trainer.model.state_dict().values():
        assert torch.isfinite(value).all()
    assert trainer.latest_snapshot().status == "failed"


@pytest.mark.parametrize("fail", ["allocate", "memory_error"])
def test_out_of_memory_stops_with_a_way_out_and_keeps_the_weights(small_mnist, fail):
    trainer = _trainer(small_mnist, epochs=3)
    calls = []

    def run_out_at_step_3(*_):
        calls.append(1)
        if len(calls) == 3:
            if fail == "allocate":  # a real allocation the machine cannot satisfy
                torch.empty(1 << 60, dtype=torch.uint8)
            raise MemoryError

    trainer.model.register_forward_hook(run_out_at_step_3)
    finished = trainer.run()
    assert finished.reason == "failed"
    assert "out of memory at step 3" in finished.message
    assert "smaller batch size" in finished.message
    assert trainer.latest_snapshot().status == "failed"
    for value in trainer.model.state_dict().values():
        assert torch.isfinite(value).all()


def test_bad_config_is_a_clear_error():
    from nnviz.core.errors import NnvizError

    with pytest.raises(NnvizError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(NnvizError, match="learning rate"):
        TrainConfig(lr=-1)


def test_a_single_step_while_paused_is_published_at_once(small_mnist):
    trainer = _trainer(small_mnist, epochs=1000, snapshot_interval_s=3600)
    trainer.pause()
    thread = threading.Thread(target=trainer.run)
    thread.start()
    try:
        assert _wait(lambda: trainer.status == "paused")
        for expected in (1, 2):
            trainer.step_once()
            assert _wait(lambda e=expected: trainer.latest_snapshot().step == e)
    finally:
        trainer.stop()
        thread.join(5)
