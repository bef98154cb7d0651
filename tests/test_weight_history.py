"""The weight history (no Qt): exact recall, thinning within a budget, the .nnviz round trip,
and the Session's history: show a past step, go live, save the latest weights."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
import torch

from nnviz.core.checkpoint import load_checkpoint, save_checkpoint
from nnviz.core.errors import ModelFileError
from nnviz.core.modelfile import load_model
from nnviz.core.snapshot import frozen_copy
from nnviz.core.weight_history import WeightHistory
from nnviz.state import Session

LENET = str(files("nnviz.sample_models") / "lenet.nnviz")


def _weights(value: float, size: int = 1000) -> dict[str, np.ndarray]:
    """One read-only array of ``size`` float32s (4 bytes each), like a snapshot's."""
    array = np.full(size, value, dtype=np.float32)
    array.flags.writeable = False
    return {"fc.weight": array}


# ----- the store ---------------------------------------------------------------------------
def test_at_returns_exactly_the_weights_added_at_that_step():
    history = WeightHistory()
    added = {step: _weights(step / 10) for step in (0, 7, 20, 21, 300)}
    for step, weights in added.items():
        history.add(step, step // 100, weights)
    assert history.steps() == [0, 7, 20, 21, 300]
    for step, weights in added.items():
        got = history.at(step)
        assert got["fc.weight"] is weights["fc.weight"]  # kept by reference, never copied
        assert history.entry(step).epoch == step // 100
    with pytest.raises(KeyError, match="step 8"):
        history.at(8)
    assert history.nearest(8).step == 7
    assert history.nearest(14).step == 20
    assert history.nearest(13).step == 7  # a tie goes to the earlier step
    assert history.nearest(10_000).step == 300
    assert history.bytes_used == 5 * 4000

    replacement = _weights(-1.0)
    history.add(20, 0, replacement)  # the same step again: replaced, not stored twice
    assert history.steps() == [0, 7, 20, 21, 300]
    assert history.at(20)["fc.weight"] is replacement["fc.weight"]
    assert history.bytes_used == 5 * 4000


def test_thinning_stays_within_budget_keeps_the_ends_and_early_steps_dense():
    history = WeightHistory(budget_bytes=100 * 4000)  # room for 100 snapshots
    for step in range(3000):
        history.add(step, 0, _weights(float(step)))
        assert history.bytes_used <= history.budget_bytes
    steps = history.steps()
    assert 80 <= len(steps) <= 100  # thinned to fit, not far below
    assert steps[0] == 0 and steps[-1] == 2999
    early = sum(1 for s in steps if s < 300)
    late = sum(1 for s in steps if s >= 2700)
    assert early > 3 * late, (early, late)
    # Gaps grow with the step: every gap at the start is narrower than any in the middle
    # (the newest few are left out: they stay dense until the next thinning).
    middle = [s for s in steps if 1000 <= s < 2000]
    assert len(middle) >= 3
    assert np.diff(steps[:20]).max() < np.diff(middle).min()
    # Every kept snapshot still holds the weights it was given at its step.
    for step in steps:
        assert history.at(step)["fc.weight"][0] == step


def test_a_smaller_budget_thins_at_once_but_keeps_the_step_being_looked_at():
    history = WeightHistory()
    for step in range(0, 1000, 10):
        history.add(step, 0, _weights(float(step)))
    assert len(history) == 100  # well inside the default budget: nothing thinned
    history.pinned = 730
    history.budget_bytes = 20 * 4000
    assert history.bytes_used <= 20 * 4000
    assert len(history) <= 20
    assert {0, 730, 990} <= set(history.steps())
    history.budget_bytes = 1  # less than the three that are always kept: those stay
    assert history.steps() == [0, 730, 990]
    assert history.over_budget
    with pytest.raises(ValueError, match="budget"):
        history.budget_bytes = 0

    # A larger budget again: new snapshots fill the room, then thinning resumes.
    history.pinned = None
    history.budget_bytes = 40 * 4000
    for step in range(1000, 2000, 10):
        history.add(step, 1, _weights(float(step)))
    assert 30 <= len(history) <= 40
    assert 0 in history and 1990 in history and np.int64(1990) in history


def test_round_trip_through_a_nnviz_file(tmp_path, small_mnist, train_and_publish):
    session = Session()
    session.set_model(load_model(LENET))
    published = train_and_publish(session, small_mnist, steps=20, every=5)
    history = session.weight_history
    assert history.steps() == [session.history.last_step - 20 + s for s in (0, 5, 10, 15, 20)]

    checkpoint = load_checkpoint(LENET)
    checkpoint.extra = history.to_tensors()
    path = tmp_path / "with-history.nnviz"
    save_checkpoint(path, checkpoint)
    loaded = load_checkpoint(path)
    assert set(loaded.state_dict) == set(checkpoint.state_dict)  # the extras stay apart
    shapes = {k: tuple(v.shape) for k, v in loaded.state_dict.items()}
    restored = WeightHistory.from_tensors(loaded.extra, expected=shapes)

    assert restored.steps() == history.steps()
    for step in history.steps():
        assert restored.entry(step).epoch == history.entry(step).epoch
        for key, array in history.at(step).items():
            np.testing.assert_array_equal(restored.at(step)[key], array)
    for step, weights in published.items():
        np.testing.assert_array_equal(restored.at(step)["conv1.weight"], weights["conv1.weight"])
    assert not restored.at(history.steps()[-1])["fc1.weight"].flags.writeable


def test_a_saved_history_that_does_not_fit_the_model_is_refused_clearly():
    history = WeightHistory()
    history.add(0, 0, _weights(0.0))
    history.add(50, 1, _weights(1.0, size=10))
    tensors = history.to_tensors()
    with pytest.raises(ModelFileError, match=r"step 50 .*fc.weight has shape \(10,\)"):
        WeightHistory.from_tensors(tensors, expected={"fc.weight": (1000,)})
    with pytest.raises(ModelFileError, match="missing fc.bias"):
        WeightHistory.from_tensors(tensors, expected={"fc.weight": (1000,), "fc.bias": (3,)})
    with pytest.raises(ModelFileError, match="history/odd"):
        WeightHistory.from_tensors({"history/odd": torch.zeros(2)})
    broken = dict(tensors)
    del broken["history/step_000050/fc.weight"]
    with pytest.raises(ModelFileError, match="no weights for step 50"):
        WeightHistory.from_tensors(broken)


# ----- the Session's history ---------------------------------------------------------------
def test_the_session_shows_a_past_step_and_returns_to_the_latest(small_mnist, train_and_publish):
    session = Session()
    session.set_model(load_model("lenet", seed=0))
    first = session.weight_history.steps()
    assert first == [0]  # the model's own weights, before any training
    shown, steps_seen = [], []
    session.snapshot_changed.connect(shown.append)
    session.view_step_changed.connect(steps_seen.append)
    published = train_and_publish(session, small_mnist, steps=30, every=10)
    assert session.weight_history.steps() == [0, 10, 20, 30]

    session.show_step(10)
    assert session.viewing_step == 10 and steps_seen == [10]
    assert shown[-1].step == 10
    for key, value in session.view_model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), published[10][key])

    # Training goes on while the user looks at step 10: recorded, not shown.
    before = len(shown)
    more = train_and_publish(session, small_mnist, steps=10, every=10)
    assert session.weight_history.steps()[-1] == 40 and 40 in more
    assert len(shown) == before
    np.testing.assert_array_equal(
        session.view_model.state_dict()["conv1.weight"].numpy(), published[10]["conv1.weight"]
    )

    session.show_live()
    assert session.viewing_step is None and steps_seen == [10, None]
    assert shown[-1].step == 40
    for key, value in session.view_model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), more[40][key])


def test_save_writes_the_latest_weights_while_the_views_show_the_past(
    tmp_path, small_mnist, train_and_publish
):
    session = Session()
    session.set_model(load_model("lenet", seed=0))
    published = train_and_publish(session, small_mnist, steps=20, every=10)
    session.show_step(10)

    checkpoint = session.to_checkpoint()
    assert checkpoint.extra == {}  # the history is saved only on request
    for key, value in checkpoint.state_dict.items():
        np.testing.assert_array_equal(value.numpy(), published[20][key])

    session.set_save_history(True)
    path = tmp_path / "run.nnviz"
    save_checkpoint(path, session.to_checkpoint())
    reopened = Session()
    reopened.set_model(load_model(path))
    assert reopened.weight_history.steps() == [0, 10, 20]
    assert reopened.save_history  # it came with the file: Save keeps it
    assert not any(k.startswith("history/") for k in reopened.loaded.extra)
    reopened.show_step(10)
    for key, value in reopened.view_model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), published[10][key])


def test_a_file_whose_history_does_not_fit_opens_without_it(tmp_path):
    checkpoint = load_checkpoint(LENET)
    checkpoint.extra = {"history/step_000005/conv1.weight": torch.zeros(3, 3)}
    path = tmp_path / "odd.nnviz"
    save_checkpoint(path, checkpoint)
    session = Session()
    errors = []
    session.error.connect(errors.append)
    session.set_model(load_model(path))
    assert len(errors) == 1 and "odd.nnviz" in errors[0] and "step 5" in errors[0]
    assert session.weight_history.steps() == [session.history.last_step]  # its own weights
    assert not session.save_history
    weights = {k: frozen_copy(v) for k, v in session.view_model.state_dict().items()}
    np.testing.assert_array_equal(
        session.weight_history.at(session.history.last_step)["fc1.weight"], weights["fc1.weight"]
    )
