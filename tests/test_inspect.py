"""Layer summaries and activation capture for plain modules, exported programs and
TorchScript (scripted and traced, saved and loaded)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnviz.core.errors import NnvizError
from nnviz.core.inspect import (
    ActivationCapture,
    LayerInfo,
    Summary,
    capture_activations,
    summarize,
)
from nnviz.core.models import PRESETS, build_model, get_spec

BLOCK_LAYERS = [
    ("conv", "Conv2d", (1, 4, 28, 28), 4 * 9 + 4),
    ("bn", "BatchNorm2d", (1, 4, 28, 28), 8),
    ("relu", "ReLU", (1, 4, 28, 28), 0),
    ("pool", "MaxPool2d", (1, 4, 14, 14), 0),
    ("flatten", "Flatten", (1, 784), 0),
    ("fc", "Linear", (1, 10), 7850),
]


class Block(nn.Module):
    """conv -> bn -> inplace relu -> pool -> flatten -> linear, with a custom forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.relu(self.bn(self.conv(x))))))


class Nested(nn.Module):
    """Nested containers, a module called twice, functional ops outside any module, dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 3, 3), nn.Sequential(nn.BatchNorm2d(3), nn.ReLU())
        )
        self.act = nn.Tanh()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(3 * 26 * 26, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.features(x))
        x = F.relu(torch.flatten(x, 1))
        return self.act(self.fc(self.drop(x)))


class Gate(nn.Module):
    """A leaf with control flow inside its own forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.sum() > 0):
            return torch.relu(x) * 2.0
        return torch.tanh(x)


class Branchy(nn.Module):
    """Calls one of two layers depending on the data: TorchScript cannot split that out."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = Gate()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gate(x)
        if bool(x.sum() > 100):
            x = self.a(x)
        else:
            x = self.b(x)
        return x


def _randomize_bn(model: nn.Module) -> nn.Module:
    """Running statistics far from 0/1, so eval and train mode give different outputs."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen))
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=gen))
            m.bias.data.copy_(torch.randn(n, generator=gen))
    return model


def _make(cls: type[nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return _randomize_bn(cls()).eval()


def _image(seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _forms(model: nn.Module, tmp: object) -> dict[str, object]:
    """The model as a live module, exported program and TorchScript, each saved and loaded."""
    example = torch.rand(3, 1, 28, 28)
    ep = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, tmp / "model.pt2")
    torch.jit.save(torch.jit.script(model), tmp / "scripted.pt")
    torch.jit.save(torch.jit.trace(model, example), tmp / "traced.pt")
    return {
        "module": model,
        "exported": ep,
        "exported-loaded": torch.export.load(tmp / "model.pt2"),
        "exported-graph-module": ep.module(),
        "scripted": torch.jit.script(model),
        "scripted-loaded": torch.jit.load(tmp / "scripted.pt"),
        "traced": torch.jit.trace(model, example),
        "traced-loaded": torch.jit.load(tmp / "traced.pt"),
    }


@pytest.fixture(scope="module")
def block_forms(tmp_path_factory):
    return _forms(_make(Block), tmp_path_factory.mktemp("block"))


@pytest.fixture(scope="module")
def nested_forms(tmp_path_factory):
    return _forms(_make(Nested), tmp_path_factory.mktemp("nested"))


# ---------------------------------------------------------------- summaries


def test_mlp_3b1b_summary():
    summary = summarize(build_model(get_spec("mlp-3b1b"), seed=0))
    assert summary.total_params == summary.trainable_params == 13002
    assert summary.input_shape == (1, 28, 28)
    assert [(layer.name, layer.type, layer.output_shape) for layer in summary.layers] == [
        ("flatten", "Flatten", (1, 784)),
        ("fc1", "Linear", (1, 16)),
        ("sigmoid1", "Sigmoid", (1, 16)),
        ("fc2", "Linear", (1, 16)),
        ("sigmoid2", "Sigmoid", (1, 16)),
        ("output", "Linear", (1, 10)),
    ]
    assert [layer.params for layer in summary.layers] == [0, 784 * 16 + 16, 0, 272, 0, 170]


def test_lenet_summary_shapes():
    layers = {layer.name: layer for layer in summarize(build_model(get_spec("lenet"))).layers}
    assert layers["conv1"] == LayerInfo("conv1", "Conv2d", (1, 6, 28, 28), 6 * 25 + 6)
    assert layers["pool2"].output_shape == (1, 16, 5, 5)
    assert layers["output"].output_shape == (1, 10)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_totals_match_the_parameters(preset):
    model = build_model(get_spec(preset), seed=0)
    summary = summarize(model)
    total = sum(p.numel() for p in model.parameters())
    assert summary.total_params == summary.trainable_params == total
    # Presets keep every parameter in a leaf layer, so the rows add up to the total.
    assert sum(layer.params for layer in summary.layers) == total
    assert [layer.name for layer in summary.layers] == [n for n, _ in model.named_children()]


def test_frozen_parameters_are_not_trainable():
    model = build_model(get_spec("lenet"))
    model.conv1.requires_grad_(False)
    summary = summarize(model)
    assert summary.total_params - summary.trainable_params == 156


def test_to_dict_is_json_ready_and_table_lists_every_layer():
    summary = summarize(build_model(get_spec("lenet")))
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["input_shape"] == [1, 28, 28]
    assert data["total_params"] == data["trainable_params"] == 28886
    assert data["layers"][0] == {
        "name": "conv1",
        "type": "Conv2d",
        "output_shape": [1, 6, 28, 28],
        "params": 156,
    }
    table = summary.format_table()
    lines = table.splitlines()
    assert any("Layer" in line and "Output shape" in line and "Params" in line for line in lines)
    for layer in summary.layers:
        row = next(line for line in lines if line.startswith(f"{layer.name} ({layer.type})"))
        assert str(layer.output_shape) in row and row.rstrip().endswith(f"{layer.params:,}")
    assert "Total params: 28,886" in table and "Trainable params: 28,886" in table


def test_block_summary_as_module():
    summary = summarize(_make(Block))
    assert [(x.name, x.type, x.output_shape, x.params) for x in summary.layers] == BLOCK_LAYERS
    assert summary.total_params == summary.trainable_params == 40 + 8 + 7850


@pytest.mark.parametrize(
    "form",
    [
        "exported",
        "exported-loaded",
        "exported-graph-module",
        "scripted",
        "scripted-loaded",
        "traced",
        "traced-loaded",
    ],
)
def test_every_form_has_the_same_summary(block_forms, nested_forms, form):
    for forms in (block_forms, nested_forms):
        expected = summarize(forms["module"])
        got = summarize(forms[form])
        assert isinstance(got, Summary)
        assert got.layers == expected.layers
        assert (got.total_params, got.trainable_params) == (
            expected.total_params,
            expected.trainable_params,
        )
    layers = summarize(block_forms[form]).layers
    assert [(x.name, x.type, x.output_shape, x.params) for x in layers] == BLOCK_LAYERS


def test_nested_layers_use_dotted_names_and_skip_functional_ops(nested_forms):
    names = [layer.name for layer in summarize(nested_forms["module"]).layers]
    # "act" runs twice; it is listed once, where it last ran. torch.flatten and
    # F.relu belong to no module and are not layers.
    assert names == ["features.0", "features.1.0", "features.1.1", "drop", "fc", "act"]


# ---------------------------------------------------------------- capture


def test_capture_equals_calling_the_layers_by_hand():
    model = _make(Block)
    x = _image()
    got = capture_activations(model, x)
    with torch.no_grad():
        conv = model.conv(x[None])
        bn = model.bn(conv)
        relu = torch.relu(bn)
        pool = model.pool(relu)
        flat = pool.flatten(1)
        expected = {"conv": conv, "bn": bn, "relu": relu, "pool": pool, "flatten": flat}
        expected["fc"] = model.fc(flat)
    assert list(got) == list(expected)
    for name, value in expected.items():
        assert isinstance(got[name], np.ndarray) and got[name].shape == tuple(value.shape)
        np.testing.assert_allclose(got[name], value.numpy(), rtol=1e-5, atol=1e-6)
    # The inplace ReLU ran on the batch norm's output after it was captured, and
    # did not change the captured copy.
    assert (got["bn"] < 0).any() and (got["relu"] >= 0).all()


def test_capture_accepts_a_batch_of_one_and_a_subset_of_layers():
    model = _make(Block)
    x = _image()
    full = capture_activations(model, x)
    some = capture_activations(model, x[None], names=["pool", "conv"])
    assert list(some) == ["conv", "pool"]  # execution order, not the order asked
    for name in some:
        np.testing.assert_array_equal(some[name], full[name])


def test_captured_arrays_are_copies():
    model = _make(Block)
    first = capture_activations(model, _image())
    first["fc"][:] = 123.0
    again = capture_activations(model, _image())
    assert not np.allclose(again["fc"], 123.0)
    weight = capture_activations(model, _image(), names=["conv"])["conv"]
    assert not np.shares_memory(weight, model.conv.weight.detach().numpy())


def test_capture_runs_in_eval_mode_and_restores_each_modules_mode():
    model = _make(Nested)
    x = _image()
    expected = capture_activations(model, x)  # eval: dropout off, running stats
    model.train()
    model.features[1][0].eval()  # a frozen batch norm inside a training model
    modes = {name: m.training for name, m in model.named_modules()}
    got = capture_activations(model, x)
    assert {name: m.training for name, m in model.named_modules()} == modes
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])


def test_hooks_are_removed_and_mode_restored_when_forward_raises():
    class Broken(Block):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.relu(self.bn(self.conv(x)))
            raise RuntimeError("broken forward")

    model = _randomize_bn(Broken()).train()
    with pytest.raises(NnvizError, match="broken forward"):
        capture_activations(model, _image())
    with pytest.raises(NnvizError):
        summarize(model)
    assert all(not m._forward_hooks for m in model.modules())
    assert all(m.training for m in model.modules())
    # And after a pass that worked, too.
    capture_activations(_make(Block), _image())
    assert all(not m._forward_hooks for m in model.modules())


def test_bad_input_and_unknown_layers_are_clear_errors(block_forms):
    for form in ("module", "exported", "scripted"):
        model = block_forms[form]
        with pytest.raises(NnvizError, match="no layer named 'nope'"):
            capture_activations(model, _image(), names=["conv", "nope"])
        with pytest.raises(NnvizError, match="failed on an input of shape"):
            capture_activations(model, torch.rand(1, 20, 20))
    with pytest.raises(NnvizError, match="one input"):
        capture_activations(block_forms["module"], torch.rand(2, 1, 28, 28))
    with pytest.raises(NnvizError, match="cannot inspect"):
        summarize(object())


@pytest.mark.parametrize(
    "form",
    [
        "exported",
        "exported-loaded",
        "exported-graph-module",
        "scripted",
        "scripted-loaded",
        "traced",
        "traced-loaded",
    ],
)
def test_every_form_captures_what_the_module_does(block_forms, nested_forms, form):
    for forms in (block_forms, nested_forms):
        x = _image(seed=3)
        expected = capture_activations(forms["module"], x)
        got = capture_activations(forms[form], x)
        assert list(got) == list(expected)
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5)
    some = capture_activations(block_forms[form], _image(), names=["bn"])
    assert list(some) == ["bn"] and (some["bn"] < 0).any()  # inplace ReLU did not reach it


def test_torchscript_capture_restores_train_mode(block_forms):
    scripted = block_forms["scripted"]
    scripted.train()
    try:
        got = capture_activations(scripted, _image())
        assert scripted.training and scripted.bn.training
    finally:
        scripted.eval()
    expected = capture_activations(block_forms["module"], _image())
    np.testing.assert_allclose(got["bn"], expected["bn"], rtol=1e-5, atol=1e-5)


def test_program_exported_in_train_mode_is_captured_in_eval_mode(tmp_path):
    model = _make(Nested)
    stats = model.features[1][0].running_mean.clone()
    ep = torch.export.export(
        model.train(), (torch.rand(4, 1, 28, 28),), dynamic_shapes=({0: torch.export.Dim("b")},)
    )
    model.eval()
    x = _image()
    expected = capture_activations(model, x)
    got = capture_activations(ep, x)
    for name in expected:  # no dropout, running statistics: as in eval mode
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5)
    # Looking did not update the program's running statistics.
    assert torch.equal(ep.state_dict["features.1.0.running_mean"], stats)


def test_programs_that_refuse_a_batch_of_one(block_forms):
    model = block_forms["module"]
    fixed = torch.export.export(model, (torch.rand(2, 1, 28, 28),))  # batch 2 only
    at_least_3 = torch.export.export(
        model, (torch.rand(4, 1, 28, 28),), dynamic_shapes=({0: torch.export.Dim("b", min=3)},)
    )
    x = _image()
    expected = capture_activations(model, x)
    for program in (fixed, fixed.module(), at_least_3):
        assert [layer.output_shape for layer in summarize(program).layers] == [
            shape for _, _, shape, _ in BLOCK_LAYERS
        ]
        got = capture_activations(program, x)
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5)


def test_module_without_children_is_its_own_layer():
    linear = nn.Linear(784, 10)
    flat = torch.rand(784)  # one sample without its batch dimension
    for form in (linear, torch.jit.script(linear)):
        summary = summarize(form, (784,))
        assert summary.layers == (LayerInfo("", "Linear", (1, 10), 7850),)
        got = capture_activations(form, flat)
        np.testing.assert_allclose(got[""], linear(flat[None]).detach().numpy(), rtol=1e-5)


def test_symbolically_traced_module_uses_hooks_and_eval_mode():
    model = _make(Block)
    traced = torch.fx.symbolic_trace(model).train()
    assert summarize(traced) == summarize(model)
    got = capture_activations(traced, _image())
    expected = capture_activations(model, _image())
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6)
    assert all(m.training for m in traced.modules())


def test_torchscript_layers_called_inside_control_flow_are_left_out_with_a_clear_error():
    torch.manual_seed(0)
    model = Branchy().eval()
    scripted = torch.jit.script(model)
    x = torch.rand(4)
    # The module runs b (x is small); the gate's own if/else is inside the layer.
    assert [layer.name for layer in summarize(model, (4,)).layers] == ["gate", "b"]
    assert [layer.name for layer in summarize(scripted, (4,)).layers] == ["gate"]
    np.testing.assert_allclose(
        capture_activations(scripted, x)["gate"], capture_activations(model, x)["gate"]
    )
    with pytest.raises(NnvizError, match="cannot capture the output of b .*inside an if"):
        capture_activations(scripted, x, names=["gate", "b"])


def test_module_holding_torchscript_parts_is_refused():
    holder = nn.Sequential(torch.jit.script(nn.Linear(784, 10)))
    with pytest.raises(NnvizError, match="TorchScript parts"):
        summarize(holder, (784,))


# ---------------------------------------------------------------- a model that changes


def _forward_by_hand(model: nn.Sequential, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Each child's output, calling the children one by one (no hooks, no capture code)."""
    out = {}
    with torch.no_grad():
        x = x[None]
        for name, child in model.named_children():
            x = child(x)
            out[name] = x.clone().numpy()
    return out


def _assert_same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(got) == list(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_capture_follows_weights_loaded_or_changed_in_place():
    model = build_model(get_spec("lenet"), seed=0).eval()
    other = build_model(get_spec("lenet"), seed=1).eval()
    x = _image()
    first = capture_activations(model, x)
    _assert_same(first, _forward_by_hand(model, x))
    model.load_state_dict(other.state_dict())
    _assert_same(capture_activations(model, x), _forward_by_hand(other, x))
    with torch.no_grad():
        model.conv1.weight.mul_(-1.5)
    changed = capture_activations(model, x)
    assert not np.array_equal(changed["conv1"], capture_activations(other, x)["conv1"])
    _assert_same(changed, _forward_by_hand(model, x))
    # The same for the hook-based path (a subclass of Sequential is not run layer by layer).
    hooked = _Seq(*[copy.deepcopy(m) for m in model.children()]).eval()
    _assert_same(
        capture_activations(hooked, x), {str(i): v for i, v in enumerate(changed.values())}
    )


def test_capture_and_summary_follow_modules_added_replaced_and_frozen():
    model = build_model(get_spec("mlp-3b1b"), seed=0).eval()
    x = _image()
    assert summarize(model).total_params == 13002
    capture_activations(model, x)
    model.append(nn.Softmax(dim=1))  # added
    model.fc2 = nn.Linear(16, 16)  # replaced: same name and type, new weights
    model.fc1.requires_grad_(False)  # frozen
    got = capture_activations(model, x)
    assert list(got)[-1] == "6"
    _assert_same(got, _forward_by_hand(model, x))
    summary = summarize(model)
    assert [layer.type for layer in summary.layers][-1] == "Softmax"
    assert summary.total_params == 13002
    assert summary.trainable_params == 13002 - (784 * 16 + 16)
    model.output = nn.Linear(16, 3)  # a different size
    assert capture_activations(model, x)["output"].shape == (1, 3)
    assert summarize(model).total_params == 13002 - 170 + 51


class _Seq(nn.Sequential):
    """A Sequential subclass: captured through forward hooks, not layer by layer."""


def _sequential(cls: type[nn.Sequential], relu_twice: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    relu = nn.ReLU(inplace=True)  # changes the batch norm's output after it is captured
    layers = [nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), relu, nn.Flatten(), nn.Linear(2028, 8)]
    return _randomize_bn(cls(*layers, relu if relu_twice else nn.Tanh())).eval()


def test_a_plain_sequential_is_captured_as_with_hooks():
    plain, hooked = _sequential(nn.Sequential), _sequential(_Seq)
    x = _image(seed=2)
    got = []
    for kwargs in (
        {},
        {"names": ["1", "4", ""]},  # "" is the model's own output
        {"interventions": {"0": {1: 0.0}, "4": {2: 5.0}}},
        {"interventions": {"": {0: 1.0}}, "names": ["4", ""]},
    ):
        got.append(capture_activations(plain, x, **kwargs))
        _assert_same(got[-1], capture_activations(hooked, x, **kwargs))
    assert (got[0]["1"] < 0).any()  # captured before the inplace ReLU changed it
    assert (got[2]["0"][0, 1] == 0.0).all() and (got[2]["4"][0, 2] == 5.0)
    assert got[3][""][0, 0] == 1.0 and got[3][""][0, 1] == got[1][""][0, 1]
    # Hooks on the model itself, which running it layer by layer would skip, still run.
    calls = []
    plain.register_forward_hook(lambda *_: calls.append("model"))
    plain[2].register_forward_hook(lambda *_: calls.append("relu"))
    _assert_same(capture_activations(plain, x), capture_activations(hooked, x))
    assert calls == ["relu", "model"]
    # A module used twice shows its last call, and an edit changes every call.
    plain, hooked = _sequential(nn.Sequential, True), _sequential(_Seq, True)
    assert list(capture_activations(plain, x)) == ["0", "1", "3", "4", "2"]
    edits = {"2": {0: 3.0}}
    _assert_same(
        capture_activations(plain, x, interventions=edits),
        capture_activations(hooked, x, interventions=edits),
    )


def test_exported_program_follows_its_weights_changed_in_place():
    model = build_model(get_spec("lenet"), seed=0).eval()

    def export() -> torch.export.ExportedProgram:
        return torch.export.export(model, (torch.rand(2, 1, 28, 28),))

    ep = export()
    x = _image()
    before = capture_activations(ep, x)
    with torch.no_grad():
        model.conv1.weight.mul_(-1.5)
        ep.state_dict["conv1.weight"].mul_(-1.5)
    after = capture_activations(ep, x)  # the program's graph module is reused
    assert not np.array_equal(after["conv1"], before["conv1"])
    _assert_same(after, capture_activations(export(), x))


# ---------------------------------------------------------------- the views' capture


@pytest.mark.parametrize("preset", ["lenet", "cnn"])
def test_the_views_capture_gives_what_capture_activations_gives(preset, monkeypatch):
    """``ActivationCapture``: layers found once, and a sequence's convolutions on one
    image run as torch's direct convolution; the values agree to float rounding."""
    from nnviz.core import inspect

    model = build_model(get_spec(preset), seed=0).eval()
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    direct, real = [], inspect._DIRECT_CONV2D
    assert real is not None  # torch 2.13 has it

    def counted(*args):
        direct.append(args[1].shape)  # the weight's
        return real(*args)

    monkeypatch.setattr(inspect, "_DIRECT_CONV2D", counted)
    capture = ActivationCapture(model)
    x = _image(seed=3)

    def assert_close(got, expected):
        assert list(got) == list(expected)
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6)

    edits = {"relu1": {0: 0.0, 2: 1.5}, "relu3": {1: 0.0}}
    for kwargs in ({}, {"interventions": edits}, {"names": ["relu2", "output"]}):
        direct.clear()
        assert_close(capture(x, **kwargs), capture_activations(model, x, **kwargs))
        assert len(direct) == len(convs)  # every convolution ran directly
    # New weights, loaded in place as the views' model gets them, are followed.
    with torch.no_grad():
        model[0].weight.mul_(-2.0)
    assert_close(capture(x), capture_activations(model, x))
    # A convolution with a hook of its own runs as a module, so the hook sees it.
    seen = []
    convs[0].register_forward_hook(lambda *_: seen.append(True))
    direct.clear()
    assert_close(capture(x), capture_activations(model, x))
    assert len(direct) == len(convs) - 1 and seen == [True, True]
    # A batch is not one image: the module runs it.
    direct.clear()
    assert capture_activations(model, torch.rand(1, 1, 28, 28))  # plain capture: no direct
    assert direct == []


def test_outputs_of_a_sequence_with_an_inplace_layer_are_still_copied():
    """Outputs are kept without a copy only where no layer writes in place."""
    model = _sequential(nn.Sequential)  # conv, batch norm, ReLU(inplace=True), ...
    got = ActivationCapture(model)(_image(seed=2))
    assert (got["1"] < 0).any()  # the batch norm's output, before the ReLU rewrote it
    assert (got["2"] >= 0).all()
