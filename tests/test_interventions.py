"""Switching units off: the same numbers as zeroing them by hand in torch, for every kind
of model; knockout rankings; the Session's interventions. No Qt."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
import torch

from nnviz.core.errors import NnvizError
from nnviz.core.inspect import capture_activations
from nnviz.core.interventions import Interventions, knockout_effects
from nnviz.core.modelfile import load_model
from nnviz.state import Session

SAMPLES = importlib.resources.files("nnviz.sample_models")
MLP_3B1B, LENET = str(SAMPLES / "mlp-3b1b.nnviz"), str(SAMPLES / "lenet.nnviz")


@pytest.fixture(scope="module")
def digits(small_mnist):
    """Real MNIST test digits as (1, 1, 28, 28) inputs, with their labels."""
    images = small_mnist.test.images[:4].astype(np.float32) / 255.0
    return [torch.from_numpy(im).reshape(1, 1, 28, 28) for im in images]


def _by_hand(model, x, changes):
    """Run a sequential model child by child, setting ``changes[name]`` = {unit: value}
    on that child's output: the plain-torch reference."""
    out, outputs = x, {}
    with torch.inference_mode():
        for name, child in model.named_children():
            out = child(out)
            for unit, value in changes.get(name, {}).items():
                out = out.clone()
                out[:, unit] = value
            outputs[name] = out.numpy().copy()
    return outputs


def _softmax(logits):
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float32).reshape(1, -1), 1)[0].numpy()


def _export(model, tmp_path):
    batch = torch.export.Dim("batch", min=1, max=1024)
    ep = torch.export.export(model, (torch.zeros(2, 1, 28, 28),), dynamic_shapes=({0: batch},))
    torch.export.save(ep, tmp_path / "model.pt2")
    return load_model(tmp_path / "model.pt2").program


# ----- switching off equals zeroing by hand ----------------------------------------------
@pytest.mark.parametrize(
    ("source", "changes"),
    [
        (MLP_3B1B, {"sigmoid1": {3: 0.0}}),  # a hidden neuron, as the next layer reads it
        (MLP_3B1B, {"fc1": {3: 0.0}}),  # before its sigmoid: the next layer reads 0.5
        (MLP_3B1B, {"sigmoid2": {0: 1.0, 9: 0.25}}),  # clamps
        (LENET, {"conv1": {2: 0.0}}),  # a conv channel: its whole 28x28 map
        (LENET, {"relu2": {5: 0.0}, "relu3": {7: 2.5}}),  # one off, one clamped
    ],
)
def test_switching_off_a_unit_equals_zeroing_it_by_hand(source, changes, digits):
    model = load_model(source).module
    for x in digits[:2]:
        plain = capture_activations(model, x)
        changed = capture_activations(model, x, interventions=changes)
        expected = _by_hand(model, x, changes)
        assert list(changed) == list(expected)
        for name in expected:
            assert np.array_equal(changed[name], expected[name]), name
        first = list(plain).index(next(iter(changes)))
        for name in list(plain)[:first]:  # upstream: untouched
            assert np.array_equal(changed[name], plain[name]), name
        # Downstream does change: the prediction's logits are not those of the plain run.
        assert not np.array_equal(changed["output"], plain["output"])
        for layer, units in changes.items():
            for unit, value in units.items():
                assert (changed[layer][0, unit] == value).all()


def test_the_model_is_left_as_it_was(digits):
    model = load_model(LENET).module
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode():
        plain = model(digits[0])
    capture_activations(model, digits[0], interventions={"conv2": {1: 0.0}})
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed
    with torch.inference_mode():
        assert torch.equal(model(digits[0]), plain)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("form", ["exported", "scripted", "traced"])
def test_exported_and_torchscript_models_give_what_the_module_gives(form, digits, tmp_path):
    module = load_model(LENET).module
    model = {
        "exported": lambda: _export(module, tmp_path),
        "scripted": lambda: torch.jit.script(module),
        "traced": lambda: torch.jit.trace(module, digits[0]),
    }[form]()
    changes = {"conv1": {2: 0.0}, "relu2": {5: 0.0}, "fc1": {7: 1.5}}
    ours = capture_activations(module, digits[1], interventions=changes)
    theirs = capture_activations(model, digits[1], interventions=changes)
    assert list(theirs) == list(ours)
    for name in ours:
        np.testing.assert_allclose(theirs[name], ours[name], rtol=0, atol=1e-5, err_msg=name)
    # Without interventions the same model gives the plain outputs again.
    plain = capture_activations(model, digits[1])
    np.testing.assert_allclose(plain["output"], capture_activations(module, digits[1])["output"])


def test_bad_interventions_are_clear_errors(digits):
    model = load_model(LENET).module
    with pytest.raises(NnvizError, match="conv1 has 6 units .* no unit 6"):
        capture_activations(model, digits[0], interventions={"conv1": {6: 0.0}})
    with pytest.raises(NnvizError, match="no layer named 'conv9'"):
        capture_activations(model, digits[0], interventions={"conv9": {0: 0.0}})
    with pytest.raises(NnvizError, match="finite number"):
        Interventions({"conv1": {0: float("nan")}})
    with pytest.raises(NnvizError, match="whole number"):
        Interventions({"conv1": {-1: 0.0}})
    with pytest.raises(NnvizError, match="whole number"):
        Interventions({"conv1": {True: 0.0}})
    scripted = torch.jit.script(model)
    with pytest.raises(NnvizError, match="conv1 has 6 units"):
        capture_activations(scripted, digits[0], interventions={"conv1": {6: 0.0}})
    assert all(not m._forward_hooks for m in model.modules())


def test_interventions_are_an_immutable_comparable_value():
    empty = Interventions()
    one = empty.setting("fc1", 3, 0.0)
    assert not empty and empty.unit_count == 0
    assert dict(one) == {"fc1": {3: 0.0}} and one.unit_count == 1
    two = one.setting("fc2", 1, 2.5).setting("fc1", 4, 0.0)
    assert two.rows() == [("fc1", 3, 0.0), ("fc1", 4, 0.0), ("fc2", 1, 2.5)]
    assert two.value("fc2", 1) == 2.5 and two.value("fc2", 0) is None
    assert two == Interventions({"fc2": {1: 2.5}, "fc1": {4: 0.0, 3: 0.0}})
    assert hash(two) == hash(Interventions({"fc2": {1: 2.5}, "fc1": {4: 0.0, 3: 0.0}}))
    assert two.without("fc2", 1) == Interventions({"fc1": {3: 0.0, 4: 0.0}})
    assert two.without("fc2", 1).without("fc1", 3).without("fc1", 4) == empty
    assert dict(one) == {"fc1": {3: 0.0}}  # changes made new values
    with pytest.raises(TypeError):
        one["fc1"][3] = 1.0  # type: ignore[index]


# ----- which unit matters most ---------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "layer", "base"),
    [
        (LENET, "relu1", {}),
        (LENET, "conv2", {"relu3": {3: 0.0}}),
        (MLP_3B1B, "sigmoid1", {"sigmoid2": {4: 1.0}}),
    ],
)
def test_knockout_effects_match_switching_each_unit_off_in_turn(source, layer, base, digits):
    model = load_model(source).module
    x = digits[2]
    acts = capture_activations(model, x, interventions=base)
    target = int(np.argmax(acts["output"]))
    effects = knockout_effects(model, x, layer, target, base)
    units = acts[layer].shape[1]
    assert effects.probabilities.shape == (units, 10)
    np.testing.assert_allclose(effects.baseline, _softmax(acts["output"]), rtol=1e-5, atol=1e-7)
    for unit in range(units):
        alone = {**base, layer: {**base.get(layer, {}), unit: 0.0}}
        expected = _softmax(capture_activations(model, x, interventions=alone)["output"])
        np.testing.assert_allclose(effects.probabilities[unit], expected, rtol=1e-4, atol=1e-6)
    drops = effects.drops
    np.testing.assert_allclose(drops, effects.baseline[target] - effects.probabilities[:, target])
    ranked = effects.ranked()
    assert sorted(ranked) == list(range(units))
    assert all(np.diff(effects.loss_rises[ranked]) <= 0)  # most hurtful first
    assert drops[ranked[0]] == pytest.approx(drops.max(), abs=1e-6)


def test_knockout_is_the_same_for_an_exported_program(digits, tmp_path):
    module = load_model(LENET).module
    program = _export(module, tmp_path)
    ours = knockout_effects(module, digits[3], "relu2", 1)
    theirs = knockout_effects(program, digits[3], "relu2", 1)
    np.testing.assert_allclose(theirs.probabilities, ours.probabilities, rtol=1e-4, atol=1e-6)
    assert theirs.ranked()[:3] == ours.ranked()[:3]


def test_knockout_needs_a_real_layer_and_class(digits):
    model = load_model(LENET).module
    with pytest.raises(NnvizError, match="no class 10"):
        knockout_effects(model, digits[0], "relu1", 10)
    with pytest.raises(NnvizError, match="no layer named"):
        knockout_effects(model, digits[0], "relu9", 0)


# ----- the Session ---------------------------------------------------------------------
def _session(source, digit):
    s = Session()
    s.set_model(load_model(source))
    s.set_input(digit.numpy().reshape(28, 28), None, "MNIST test")
    return s


def test_switching_off_changes_the_prediction_and_restore_all_brings_it_back(digits):
    s = _session(LENET, digits[0])
    model = s.view_model
    original = s.probabilities().copy()
    first = s.activations()
    events = []
    s.interventions_changed.connect(lambda: events.append(dict(s.interventions)))
    # The channel whose loss hurts this digit most: a visible change.
    target = int(np.argmax(original))
    unit = knockout_effects(model, s.input_tensor(), "relu2", target).ranked()[0]
    s.switch_off("relu2", unit)
    assert events == [{"relu2": {unit: 0.0}}]
    assert s.activations() is not first and s.activations() is s.activations()
    changed = s.probabilities()
    expected = _by_hand(model, s.input_tensor(), {"relu2": {unit: 0.0}})["output"]
    np.testing.assert_allclose(changed, _softmax(expected), rtol=1e-5)
    assert changed[target] < original[target]
    s.clamp("fc1", 3, 4.0)
    assert s.interventions.rows() == [("relu2", unit, 0.0), ("fc1", 3, 4.0)]
    assert (s.activations()["fc1"][0, 3] == 4.0) and (s.activations()["relu2"][0, unit] == 0).all()
    s.restore("relu2", unit)
    assert dict(s.interventions) == {"fc1": {3: 4.0}}
    s.restore_all()
    assert not s.interventions and len(events) == 4
    assert np.array_equal(s.probabilities(), original)
    s.restore_all()  # nothing to restore: no event
    assert len(events) == 4


def test_the_session_refuses_units_the_model_lacks_and_forgets_them_for_a_new_model(digits):
    s = _session(MLP_3B1B, digits[0])
    events = []
    s.interventions_changed.connect(lambda: events.append(1))
    with pytest.raises(NnvizError, match="sigmoid1 has 16 units; there is no unit 16"):
        s.switch_off("sigmoid1", 16)
    with pytest.raises(NnvizError, match="no layer named 'conv1'"):
        s.switch_off("conv1", 0)
    with pytest.raises(NnvizError, match="finite number"):
        s.clamp("sigmoid1", 0, float("inf"))
    assert not s.interventions and not events
    s.switch_off("sigmoid1", 2)
    s.set_model(load_model(LENET))
    assert not s.interventions
    s.set_input(digits[0].numpy().reshape(28, 28), None, "again")
    plain = capture_activations(s.view_model, s.input_tensor())
    np.testing.assert_allclose(s.probabilities(), _softmax(plain["output"]), rtol=1e-5)


def test_a_torchscript_model_can_have_units_switched_off(digits, tmp_path):
    module = load_model(LENET).module
    torch.jit.save(torch.jit.script(module), tmp_path / "lenet.pt")
    s = _session(str(tmp_path / "lenet.pt"), digits[1])
    assert s.loaded.kind == "torchscript"
    s.switch_off("conv2", 4)
    expected = _by_hand(module, s.input_tensor(), {"conv2": {4: 0.0}})["output"]
    np.testing.assert_allclose(s.probabilities(), _softmax(expected), rtol=1e-5, atol=1e-7)
    ranking = s.knockout("relu1", int(np.argmax(s.probabilities())))
    assert ranking.probabilities.shape == (6, 10)
