"""The Session (no Qt): current input, shared activations, snapshots."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import torch

from nnviz.core.data import load_dataset
from nnviz.core.modelfile import load_model
from nnviz.core.snapshot import Snapshot, frozen_copy
from nnviz.state import Session


def _session():
    s = Session()
    s.set_model(load_model(str(files("nnviz.sample_models") / "lenet.nnviz")))
    return s


def test_activations_follow_the_input_and_are_computed_once():
    s = _session()
    test = load_dataset("mnist", "test")
    s.set_input(test.images[0] / 255, int(test.labels[0]), "MNIST test #0")
    first = s.activations()
    assert list(first)[0] == "conv1" and first["conv1"].shape == (1, 6, 28, 28)
    assert s.activations() is first  # cached: one forward pass shared by every panel
    assert int(np.argmax(s.probabilities())) == 7
    s.set_input(test.images[1] / 255, int(test.labels[1]), "MNIST test #1")
    second = s.activations()
    assert not np.array_equal(first["conv1"], second["conv1"])
    assert int(np.argmax(s.probabilities())) == int(test.labels[1])


def test_a_new_snapshot_updates_the_views_copy_and_the_activations():
    s = _session()
    test = load_dataset("mnist", "test")
    s.set_input(test.images[0] / 255, 7, "MNIST test #0")
    before = s.activations()
    zeroed = {k: frozen_copy(torch.zeros_like(v)) for k, v in s.view_model.state_dict().items()}
    s.publish(Snapshot(step=1, epoch=0, optimizer_step=1, weights=zeroed, status="running"), [])
    assert s.view_model is not s.train_model
    after = s.activations()
    assert not np.array_equal(before["conv1"], after["conv1"])
    assert np.allclose(s.probabilities(), 0.1)  # all-zero weights: uniform
    assert s.dirty
