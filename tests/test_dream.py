"""Make it a 7, and what a unit wants to see: on the sample models and real MNIST digits."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
import torch

from nnviz.core.dream import ascend_to_class, unit_activation, visualize_unit
from nnviz.core.errors import NnvizError
from nnviz.core.explain import class_probabilities
from nnviz.core.modelfile import load_model

SAMPLES = importlib.resources.files("nnviz.sample_models")


def _sample(name):
    return load_model(str(SAMPLES / f"{name}.nnviz")).module


@pytest.fixture(scope="module")
def lenet():
    return _sample("lenet")


@pytest.fixture
def digits(small_mnist):
    """The first 100 real test digits as floats in [0, 1], with their labels."""
    return small_mnist.test.images[:100] / 255.0, small_mnist.test.labels[:100]


@pytest.mark.parametrize("name", ["lenet", "mlp-3b1b"])
def test_ascent_toward_a_class_raises_its_probability(digits, name):
    model = _sample(name)
    for image, label in zip(digits[0][:3], digits[1][:3], strict=True):
        target = (int(label) + 3) % 10
        ascent = ascend_to_class(model, image, target, steps=20, step_size=0.05)
        probs = ascent.probabilities
        assert ascent.target == target and len(ascent.images) == len(probs) == 21
        assert probs[0] == pytest.approx(class_probabilities(model, image)[target], abs=1e-6)
        # Measured on these digits: from below 0.002 to 0.82 (mlp-3b1b, first digit) or
        # more; overshooting steps are halved, so the probability never falls.
        assert probs[0] < 0.01 and probs[-1] > 0.75
        assert all(b >= a - 1e-6 for a, b in zip(probs, probs[1:], strict=False))
        np.testing.assert_array_equal(ascent.images[0], image.astype(np.float32))
        for before, after in zip(ascent.images, ascent.images[1:], strict=False):
            assert after.min() >= 0 and after.max() <= 1
            assert np.abs(after - before).max() <= 0.05 + 1e-6
        final = class_probabilities(model, ascent.images[-1])[target]
        assert final == pytest.approx(probs[-1], abs=1e-5)


@pytest.mark.parametrize("target", [2, 5, 8])
def test_a_class_picture_is_seen_as_that_class(lenet, target):
    picture = visualize_unit(lenet, None, target)
    assert picture.shape == (28, 28) and picture.dtype == np.float32
    assert picture.min() >= 0 and picture.max() <= 1
    probs = class_probabilities(lenet, picture)
    assert int(probs.argmax()) == target and probs[target] > 0.9


# Measured: the pictures reach 0.8 to 1.3 times the largest value any of 100 real test
# digits gives these fc1 units, and every conv2 channel's mean beats all 100 digits.
@pytest.mark.parametrize(("layer", "unit", "share"), [("fc1", 0, 0.6), ("fc1", 2, 0.6)])
def test_a_hidden_unit_picture_excites_it_like_real_digits(lenet, digits, layer, unit, share):
    picture = visualize_unit(lenet, layer, unit)
    real = [unit_activation(lenet, image, layer, unit) for image in digits[0]]
    assert unit_activation(lenet, picture, layer, unit) > share * max(real) > 0


@pytest.mark.parametrize("channel", [1, 5])
def test_a_channel_picture_beats_every_real_digit(lenet, digits, channel):
    picture = visualize_unit(lenet, "conv2", channel)
    real = [unit_activation(lenet, image, "conv2", channel) for image in digits[0]]
    assert unit_activation(lenet, picture, "conv2", channel) > max(real)
    start = visualize_unit(lenet, "conv2", channel, steps=1)
    assert unit_activation(lenet, picture, "conv2", channel) > unit_activation(
        lenet, start, "conv2", channel
    )


def test_unit_pictures_are_deterministic_for_a_seed(lenet):
    first = visualize_unit(lenet, "conv1", 2, steps=32, seed=3)
    np.testing.assert_array_equal(visualize_unit(lenet, "conv1", 2, steps=32, seed=3), first)
    assert not np.array_equal(visualize_unit(lenet, "conv1", 2, steps=32, seed=4), first)


def test_one_element_of_a_feature_map_is_a_unit_too(lenet, digits):
    image = digits[0][0]
    whole = unit_activation(lenet, image, "conv1", 0)
    corner = unit_activation(lenet, image, "conv1", (0, 0, 0))
    assert whole != corner
    x = torch.from_numpy(image.astype(np.float32))[None, None]
    with torch.no_grad():
        maps = lenet.conv1(x)[0, 0]
    assert whole == pytest.approx(float(maps.mean()), rel=1e-5)
    assert corner == pytest.approx(float(maps[0, 0]), rel=1e-5)


def test_dreaming_leaves_the_model_as_it_was(digits):
    model = _sample("lenet")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ascend_to_class(model, digits[0][0], 3, steps=3)
    visualize_unit(model, "relu2", 4, steps=3)
    with pytest.raises(NnvizError):
        visualize_unit(model, "conv1", 6, steps=3)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.modules())
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize(
    ("layer", "unit", "words"),
    [
        ("conv1", 6, r"unit 6 is out of range for layer 'conv1', of shape \(6, 28, 28\)"),
        ("conv1", (0, 28, 0), "out of range"),
        ("conv1", (0, 1, 2, 3), "does not fit"),
        ("conv1", 1.5, "does not fit"),
        (None, 10, "out of range for the class scores"),
        ("nope", 0, "no layer named 'nope'"),
    ],
)
def test_a_bad_unit_gets_a_clear_message(lenet, digits, layer, unit, words):
    with pytest.raises(NnvizError, match=words):
        visualize_unit(lenet, layer, unit, steps=2)
    with pytest.raises(NnvizError, match=words):
        unit_activation(lenet, digits[0][0], layer, unit)


def test_bad_settings_get_a_clear_message(lenet, digits):
    with pytest.raises(NnvizError, match="not one of the model's 10 classes"):
        ascend_to_class(lenet, digits[0][0], 12)
    with pytest.raises(NnvizError, match="positive step size"):
        ascend_to_class(lenet, digits[0][0], 3, step_size=0)
    with pytest.raises(NnvizError, match="steps >= 1"):
        visualize_unit(lenet, None, 3, steps=0)


def test_foreign_models_dream_of_classes_but_not_of_hidden_units(lenet, tmp_path):
    traced = torch.jit.trace(lenet, torch.zeros(1, 1, 28, 28))
    path = tmp_path / "lenet.pt"
    traced.save(str(path))
    scripted = load_model(path).module
    picture = visualize_unit(scripted, None, 7, steps=16)
    np.testing.assert_allclose(picture, visualize_unit(lenet, None, 7, steps=16), atol=1e-5)
    with pytest.raises(NnvizError, match="TorchScript model"):
        visualize_unit(scripted, "conv2", 0)
