"""The .nnviz file: round trips exactly, saves atomically, and explains broken files."""

from __future__ import annotations

import json
import math
import struct

import pytest
import torch
from safetensors.torch import save as st_save

import nnviz.core.checkpoint as checkpoint_module
from nnviz.core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from nnviz.core.errors import ModelFileError
from nnviz.core.modelfile import load_model
from nnviz.core.models import build_model, get_spec

X5 = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(5))


def trained_checkpoint(name: str = "lenet") -> Checkpoint:
    """A checkpoint whose weights are not the init: one SGD step on random data."""
    spec = get_spec(name)
    model = build_model(spec, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = torch.nn.functional.cross_entropy(model(X5), torch.tensor([0, 1, 2, 3, 4]))
    loss.backward()
    optimizer.step()
    return Checkpoint(
        spec=spec,
        state_dict=model.state_dict(),
        class_names=["zero", "one", "two", "three", "four", "five", "six", "seven", "8", "9"],
        train_config={"optimizer": "sgd", "lr": 0.5, "batch_size": 64, "nested": {"a": [1, 2]}},
        history={"step": [1, 2, 3], "loss": [2.3, float("nan"), 1.9], "val_loss": [float("inf")]},
        extra={"history/step_000100/fc1.weight": torch.arange(6.0).reshape(2, 3)},
    )


def test_round_trip_keeps_weights_and_everything_else(tmp_path):
    original = trained_checkpoint()
    init = build_model(original.spec, seed=0).state_dict()
    assert not torch.equal(init["conv1.weight"], original.state_dict["conv1.weight"])
    path = tmp_path / "digits.nnviz"
    save_checkpoint(path, original)

    loaded = load_checkpoint(path)
    assert loaded.spec.to_dict() == original.spec.to_dict()
    assert loaded.class_names == original.class_names
    assert loaded.train_config == original.train_config
    # JSON has no NaN or infinity: non-finite metrics come back as None.
    assert loaded.history == {"step": [1, 2, 3], "loss": [2.3, None, 1.9], "val_loss": [None]}
    assert loaded.extra.keys() == original.extra.keys()
    assert torch.equal(
        loaded.extra["history/step_000100/fc1.weight"], torch.arange(6.0).reshape(2, 3)
    )
    assert loaded.state_dict.keys() == original.state_dict.keys()
    for key, tensor in original.state_dict.items():
        assert torch.equal(loaded.state_dict[key], tensor)

    model = build_model(original.spec)
    model.load_state_dict(original.state_dict)
    model.eval()
    opened = load_model(path)
    assert opened.kind == "nnviz" and opened.display_name == "digits.nnviz"
    assert not opened.module.training
    assert opened.class_names == original.class_names
    assert opened.history == loaded.history
    with torch.no_grad():
        assert torch.equal(opened.module(X5), model(X5))
        assert opened.module(X5[:1]).shape == (1, 10)

    meta = json.loads(_metadata(path)["nnviz"])
    assert meta["format"] == "nnviz" and meta["version"] == 1
    assert meta["created"] and meta["nnviz_version"]


def _metadata(path) -> dict[str, str]:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length])["__metadata__"]


def test_presets_and_specs_open_with_fresh_weights(tmp_path):
    preset = load_model("mlp-3b1b", seed=3)
    assert preset.kind == "preset" and preset.path is None and preset.display_name == "mlp-3b1b"
    assert preset.module(X5).shape == (5, 10)
    spec_path = tmp_path / "tiny.json"
    spec_path.write_text(json.dumps({"name": "tiny", "layers": [{"type": "dense", "units": 8}]}))
    spec = load_model(spec_path, seed=3)
    assert spec.kind == "spec" and spec.display_name == "tiny" and spec.path == spec_path
    assert not spec.module.training and spec.module(X5).shape == (5, 10)
    again = load_model(spec_path, seed=3)
    assert torch.equal(spec.module(X5), again.module(X5))


def test_failed_save_leaves_the_old_file_and_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "model.nnviz"
    save_checkpoint(path, trained_checkpoint("mlp"))
    before = path.read_bytes()

    def fail(fd: int) -> None:  # the data is written, then the disk "fails"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module.os, "fsync", fail)
    with pytest.raises(ModelFileError, match=r"model\.nnviz.*No space left"):
        save_checkpoint(path, trained_checkpoint("lenet"))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nnviz"]
    assert load_checkpoint(path).spec.name == "mlp"


def test_unsaveable_checkpoint_is_a_clear_error(tmp_path):
    bad_config = trained_checkpoint("mlp")
    bad_config.train_config = {"callback": object()}
    with pytest.raises(ModelFileError, match=r"out\.nnviz.*train_config\.callback"):
        save_checkpoint(tmp_path / "out.nnviz", bad_config)
    bad_extra = trained_checkpoint("mlp")
    bad_extra.extra = {"snapshot": torch.zeros(2)}
    with pytest.raises(ModelFileError, match=r"out\.nnviz.*needs a prefix"):
        save_checkpoint(tmp_path / "out.nnviz", bad_extra)
    with pytest.raises(ModelFileError, match=r"out\.nnviz"):
        save_checkpoint(tmp_path / "no_such_dir" / "out.nnviz", trained_checkpoint("mlp"))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _write(path, tensors, meta: dict | None, raw_meta: str | None = None) -> None:
    metadata = {} if meta is None else {"nnviz": raw_meta or json.dumps(meta)}
    path.write_bytes(st_save(tensors, metadata=metadata))


def test_broken_files_name_the_file_and_the_problem(tmp_path):
    good_path = tmp_path / "good.nnviz"
    original = trained_checkpoint("mlp")
    save_checkpoint(good_path, original)
    good = good_path.read_bytes()
    meta = json.loads(_metadata(good_path)["nnviz"])
    state = original.state_dict

    cases = {
        "empty.nnviz": lambda p: p.write_bytes(b""),
        "tiny.nnviz": lambda p: p.write_bytes(good[:5]),
        "truncated.nnviz": lambda p: p.write_bytes(good[: len(good) // 2]),
        "header_cut.nnviz": lambda p: p.write_bytes(good[:40]),
        "photo.nnviz": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100)),
        "plain.nnviz": lambda p: _write(p, {"w": torch.zeros(2)}, None),
        "badjson.nnviz": lambda p: _write(p, state, meta, raw_meta="{not json"),
        "badspec.nnviz": lambda p: _write(p, state, {**meta, "spec": {"layers": "x"}}),
        "missing.nnviz": lambda p: _write(
            p, {k: v for k, v in state.items() if k != "fc2.bias"}, meta
        ),
        "unexpected.nnviz": lambda p: _write(p, {**state, "fc9.weight": torch.zeros(1)}, meta),
        "shape.nnviz": lambda p: _write(p, {**state, "fc1.weight": torch.zeros(3, 784)}, meta),
        "newer.nnviz": lambda p: _write(p, state, {**meta, "version": 99}),
    }
    expected = {
        "empty.nnviz": "empty",
        "tiny.nnviz": "truncated",
        "truncated.nnviz": "truncated",
        "header_cut.nnviz": "truncated",
        "photo.nnviz": "not an nnviz model file",
        "plain.nnviz": "is a safetensors file but not an nnviz model",
        "badjson.nnviz": "not valid JSON",
        "badspec.nnviz": "invalid architecture spec",
        "missing.nnviz": "missing fc2.bias",
        "unexpected.nnviz": "unexpected fc9.weight",
        "shape.nnviz": r"fc1\.weight has shape \(3, 784\)",
        "newer.nnviz": "newer nnviz",
    }
    for name, make in cases.items():
        path = tmp_path / name
        make(path)
        with pytest.raises(ModelFileError, match=rf"{name.replace('.', '[.]')}.*{expected[name]}"):
            load_checkpoint(path)
        with pytest.raises(ModelFileError, match=name.replace(".", "[.]")):
            load_model(path)
    with pytest.raises(ModelFileError, match=r"gone\.nnviz: no such file"):
        load_checkpoint(tmp_path / "gone.nnviz")
    with pytest.raises(ModelFileError, match=r"gone\.nnviz: no such file"):
        load_model(tmp_path / "gone.nnviz")


def test_unknown_files_are_refused_by_content_not_name(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ModelFileError, match=r"photo\.png is not a model file nnviz can open"):
        load_model(photo)
    # an .nnviz file under another name still opens
    renamed = tmp_path / "weights.bin"
    save_checkpoint(renamed, trained_checkpoint("mlp"))
    assert load_model(renamed).kind == "nnviz"


def test_non_finite_floats_never_reach_the_json(tmp_path):
    original = trained_checkpoint("mlp")
    original.history = {"loss": [math.nan, -math.inf, 1.0]}
    path = tmp_path / "nan.nnviz"
    save_checkpoint(path, original)
    raw = _metadata(path)["nnviz"]
    assert "NaN" not in raw and "Infinity" not in raw
    json.loads(raw, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert load_checkpoint(path).history == {"loss": [None, None, 1.0]}


def test_saved_file_gets_ordinary_permissions_not_the_temp_files(tmp_path):
    import os
    import stat

    from nnviz.core.checkpoint import Checkpoint, save_checkpoint
    from nnviz.core.models import build_model, get_spec

    spec = get_spec("mlp-3b1b")
    checkpoint = Checkpoint(spec=spec, state_dict=build_model(spec, seed=0).state_dict())
    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "shared.nnviz", checkpoint)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.nnviz").stat().st_mode) == 0o644
