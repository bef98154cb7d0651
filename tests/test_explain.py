"""Saliency, Grad-CAM and FGSM on the bundled sample models and real MNIST digits."""

from __future__ import annotations

import copy
import importlib.resources
import time
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from nnviz.core.errors import NnvizError
from nnviz.core.explain import (
    class_probabilities,
    default_cam_layer,
    fgsm,
    grad_cam,
    saliency,
)
from nnviz.core.modelfile import load_model

SAMPLES = importlib.resources.files("nnviz.sample_models")


def _sample(name):
    return load_model(str(SAMPLES / f"{name}.nnviz")).module


@pytest.fixture(scope="module")
def lenet():
    return _sample("lenet")


@pytest.fixture
def digits(small_mnist):
    """The first 30 real test digits as floats in [0, 1], with their labels."""
    return small_mnist.test.images[:30] / 255.0, small_mnist.test.labels[:30]


@pytest.fixture(scope="module")
def exported_module(exported_lenet):
    """The lenet sample exported as a .pt2 and opened the way users open one."""
    return load_model(exported_lenet).module


def _far_from_ink(image, reach=2):
    """Pixels more than ``reach`` pixels (in x and y) from any ink."""
    ink = image > 0
    near = ink.copy()
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            near |= np.roll(ink, (dy, dx), (0, 1))
    return ~near


# Measured on these 30 digits: lenet's ratio is 3.5 at least, 5.0 typically; the mlp
# sample's 2.0 and 2.8. (The sigmoid mlp-3b1b looks mostly at the background: 0.4.)
@pytest.mark.parametrize(("name", "lowest", "typical"), [("lenet", 3.0, 4.0), ("mlp", 1.5, 2.3)])
def test_saliency_lies_on_the_ink(digits, name, lowest, typical):
    model = _sample(name)
    ratios = []
    for image in digits[0]:
        sal = saliency(model, image)
        assert sal.shape == (28, 28) and sal.dtype == np.float32 and sal.min() >= 0
        ratios.append(sal[image > 0.5].mean() / sal[_far_from_ink(image)].mean())
    assert min(ratios) > lowest and np.median(ratios) > typical


def test_saliency_is_the_gradient_of_the_class_score(lenet, digits):
    image = digits[0][0]
    # Float64, so central differences match the gradient to many digits.
    model = copy.deepcopy(lenet).double()
    x = torch.from_numpy(image).double()[None, None]
    with torch.no_grad():
        predicted = int(model(x)[0].argmax())
    signed = saliency(model, image, signed=True)
    np.testing.assert_array_equal(saliency(model, image, target=predicted), np.abs(signed))
    np.testing.assert_array_equal(saliency(model, image), np.abs(signed))
    # Every ink pixel nudged up and down, all in one batch.
    ink = list(zip(*np.nonzero(image > 0.5), strict=True))
    nudged = x.repeat(2 * len(ink), 1, 1, 1)
    for n, (i, j) in enumerate(ink):
        nudged[2 * n, 0, i, j] += 1e-5
        nudged[2 * n + 1, 0, i, j] -= 1e-5
    with torch.no_grad():
        here = model(x)[0, predicted].item()
        scores = model(nudged)[:, predicted].numpy()
    checked = 0
    for n, (i, j) in enumerate(ink):
        up, down = scores[2 * n], scores[2 * n + 1]
        # Skip kinks (ties in a max pool, a ReLU at 0), where the two sides disagree.
        if abs((up - here) - (here - down)) < 1e-11:
            assert signed[i, j] == pytest.approx((up - down) / 2e-5, rel=1e-4, abs=1e-7)
            checked += 1
    assert checked > 50, checked
    other = saliency(model, image, target=(predicted + 1) % 10, signed=True)
    assert not np.allclose(other, signed)


def test_grad_cam_is_a_map_in_0_1_that_depends_on_the_class(lenet, digits):
    image, label = digits[0][0], int(digits[1][0])
    assert default_cam_layer(lenet) == "relu2"  # the rectified maps of the last conv layer
    cam = grad_cam(lenet, image)
    assert cam.shape == (28, 28) and cam.dtype == np.float32
    assert cam.min() >= 0 and cam.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(grad_cam(lenet, image, target=label), cam)
    other = grad_cam(lenet, image, target=(label + 1) % 10)
    assert np.abs(other - cam).mean() > 0.05
    on_conv1 = grad_cam(lenet, image, layer="conv1")
    assert on_conv1.shape == (28, 28) and not np.allclose(on_conv1, cam)


def _dot_finder():
    """A CNN shaped like lenet whose class 0 adds up its second layer's box-filtered maps,
    so Grad-CAM's map is where the input's bright dot is."""
    conv1, conv2, output = nn.Conv2d(1, 1, 5, padding=2), nn.Conv2d(1, 1, 5), nn.Linear(100, 2)
    with torch.no_grad():
        for conv in (conv1, conv2):
            conv.weight.fill_(1 / 25)
            conv.bias.zero_()
        output.weight.zero_()
        output.weight[0] = 1
        output.bias.zero_()
    layers = OrderedDict(conv1=conv1, relu1=nn.ReLU(), pool1=nn.MaxPool2d(2), conv2=conv2)
    layers.update(relu2=nn.ReLU(), flatten=nn.Flatten(), output=output)
    return nn.Sequential(layers).eval()


@pytest.mark.parametrize("corner", [(8, 18), (18, 8), (8, 8), (18, 18)])
def test_grad_cam_lines_up_with_the_input(corner):
    # relu2 has 10x10 units centred on input pixels 4.5, 6.5, ..., 22.5; stretching its
    # map over all 28 pixels would put these dots ~2 pixels off.
    y, x = corner
    image = np.zeros((28, 28), dtype=np.float32)
    image[y : y + 2, x : x + 2] = 1
    cam = grad_cam(_dot_finder(), image, target=0)
    weight = cam * (cam > 0.5)
    rows, cols = np.mgrid[:28, :28]
    centre = ((weight * rows).sum() / weight.sum(), (weight * cols).sum() / weight.sum())
    assert centre == pytest.approx((y + 0.5, x + 0.5), abs=0.75)


def test_grad_cam_needs_feature_maps(digits, lenet):
    image = digits[0][0]
    with pytest.raises(NnvizError, match="convolutional layer"):
        grad_cam(_sample("mlp"), image)
    with pytest.raises(NnvizError, match="feature maps; 'fc1'"):
        grad_cam(lenet, image, layer="fc1")
    with pytest.raises(NnvizError, match="no layer named 'conv9'.*conv1, relu1"):
        grad_cam(lenet, image, layer="conv9")


@pytest.mark.parametrize("name", ["lenet", "mlp-3b1b"])
def test_fgsm_changes_the_answer_with_a_small_change(digits, name):
    model = _sample(name)
    for image in digits[0][:5]:
        result = fgsm(model, image)
        assert result.fooled and result.new_class != result.original_class
        assert result.original_class == int(class_probabilities(model, image).argmax())
        # The GUI will run the perturbed digit again: it must get the new answer.
        assert int(class_probabilities(model, result.perturbed).argmax()) == result.new_class
        assert np.linalg.norm(result.perturbation) < np.linalg.norm(image)
        assert result.perturbed.min() >= 0 and result.perturbed.max() <= 1
        assert np.abs(result.perturbation).max() == pytest.approx(result.epsilon)
        assert 0 < result.epsilon <= 0.3
        np.testing.assert_allclose(result.perturbed - result.original, result.perturbation)
        np.testing.assert_array_equal(result.original, image.astype(np.float32))
        assert f"{result.original_class} became {result.new_class}" in result.message


def test_fgsm_says_when_the_cap_is_too_small(lenet, digits):
    confident = next(im for im in digits[0] if class_probabilities(lenet, im).max() > 0.9999)
    result = fgsm(lenet, confident, max_epsilon=0.002, step=0.001)
    assert not result.fooled and result.steps == 2
    assert result.epsilon <= 0.002 + 1e-6
    assert "did not change the answer" in result.message


def test_explaining_leaves_the_model_as_it_was(digits):
    model = _sample("lenet")
    model.train()
    model.relu1.eval()  # a mix of modes, each of which must come back
    before = {k: v.clone() for k, v in model.state_dict().items()}
    image = digits[0][1]
    with torch.inference_mode():  # as the GUI's views run
        saliency(model, image)
        grad_cam(model, image)
        fgsm(model, image)
    with pytest.raises(NnvizError):
        grad_cam(model, image, layer="fc1")
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert [m.training for m in model.modules()] == [m is not model.relu1 for m in model.modules()]
    assert all(not m._forward_hooks for m in model.modules())


def test_explaining_a_model_in_train_mode_uses_eval_mode(digits):
    model = _sample("mlp")
    image = digits[0][2]
    expected = saliency(model, image)
    model.train()
    np.testing.assert_array_equal(saliency(model, image), expected)


def test_exported_models_give_saliency_fgsm_and_grad_cam(exported_module, lenet, digits):
    image = digits[0][3]
    np.testing.assert_allclose(saliency(exported_module, image), saliency(lenet, image), atol=1e-6)
    assert fgsm(exported_module, image).new_class == fgsm(lenet, image).new_class
    assert default_cam_layer(exported_module) == "relu2"
    # conv1's maps are the input's size: the same map without the plain module's geometry.
    np.testing.assert_allclose(
        grad_cam(exported_module, image, layer="conv1"),
        grad_cam(lenet, image, layer="conv1"),
        atol=1e-5,
    )
    cam = grad_cam(exported_module, image)
    assert cam.shape == (28, 28) and cam.max() == 1.0


@pytest.mark.parametrize(
    ("image", "target", "words"),
    [
        (np.zeros(28), None, "must be"),
        (np.zeros((2, 1, 28, 28)), None, "one image at a time"),
        (np.full((28, 28), np.nan), None, "NaN"),
        (np.zeros((28, 28)), 10, "not one of the model's 10 classes"),
        (np.zeros((28, 28)), "3", "not one of"),
        (np.zeros((40, 40)), None, "failed on an input of shape"),
    ],
)
def test_bad_input_gets_a_clear_message(lenet, image, target, words):
    with pytest.raises(NnvizError, match=words):
        saliency(lenet, image, target)


def test_saliency_and_grad_cam_take_under_30_ms(lenet, digits):
    image = digits[0][0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for explain in (saliency, grad_cam):
            for _ in range(5):  # warm-up
                explain(lenet, image)
            times = []
            for _ in range(50):
                start = time.perf_counter()
                explain(lenet, image)
                times.append(time.perf_counter() - start)
            assert np.median(times) < 0.030, f"{explain.__name__}: {np.median(times) * 1e3} ms"
    finally:
        torch.set_num_threads(threads)
