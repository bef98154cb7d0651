"""Foreign models: .pt2 and TorchScript archives load right, and hostile ones run nothing."""

from __future__ import annotations

import io
import json
import os
import pathlib
import pickle
import re
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from nnviz.core.errors import ModelFileError
from nnviz.core.foreign import scan_pickle
from nnviz.core.modelfile import load_model

X1 = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(1))
X5 = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(5))


def small_cnn(dropout: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        *([nn.Dropout(0.5)] if dropout else []),
        nn.Linear(4 * 13 * 13, 10),
    )
    # Give the batch norm running statistics that are not the defaults.
    model.train()
    with torch.no_grad():
        model(torch.rand(16, 1, 28, 28))
    return model.eval()


def export(model: nn.Module, path: pathlib.Path) -> pathlib.Path:
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.rand(2, 1, 28, 28),), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("foreign")
    model = small_cnn()
    script_path, trace_path = root / "scripted.pt", root / "traced.pt"
    torch.jit.save(torch.jit.script(model), script_path)
    torch.jit.save(torch.jit.trace(model, (X5,)), trace_path)
    return {
        "model": model,
        "pt2": export(model, root / "model.pt2"),
        "script": script_path,
        "trace": trace_path,
    }


def rewrite(src: pathlib.Path, dst: pathlib.Path, edits: dict[str, Callable[[bytes], bytes]]):
    """Copy a zip archive, passing each member whose name ends with a key through its edit."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            for suffix, edit in edits.items():
                if info.filename.endswith(suffix):
                    data = edit(data)
            zout.writestr(info.filename, data)
    return dst


class Touch:
    """Unpickling this creates a marker file: proof that a loader ran the file's code."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class System:
    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", ["pt2", "script", "trace"])
def test_foreign_model_gives_the_original_outputs(files, kind):
    loaded = load_model(files[kind])
    assert loaded.kind == ("export" if kind == "pt2" else "torchscript")
    assert loaded.spec is None and loaded.input_shape == (1, 28, 28)
    assert (loaded.program is not None) == (kind == "pt2")
    assert not loaded.module.training
    assert loaded.display_name == files[kind].name
    assert loaded.class_names == [str(i) for i in range(10)]
    with torch.no_grad():
        for x in (X1, X5):
            out = loaded.module(x)
            assert out.shape == (x.shape[0], 10)
            torch.testing.assert_close(out, files["model"](x), rtol=1e-5, atol=1e-6)


def test_export_made_in_train_mode_is_loaded_in_eval_mode(tmp_path):
    model = small_cnn(dropout=True).train()
    path = export(model, tmp_path / "trained.pt2")
    loaded = load_model(path)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(X5), model.eval()(X5), rtol=1e-5, atol=1e-6)


def test_export_with_a_fixed_batch_size_is_refused_clearly(tmp_path):
    program = torch.export.export(small_cnn(), (X1,))
    torch.export.save(program, tmp_path / "fixed.pt2")
    with pytest.raises(ModelFileError, match=r"fixed\.pt2.*fixed batch size"):
        load_model(tmp_path / "fixed.pt2")


def _use_pickle(data: bytes) -> bytes:
    config = json.loads(data)
    next(iter(config["config"].values()))["use_pickle"] = True
    return json.dumps(config).encode()


def _program_edit(old: str, new: str) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        program = json.loads(data)
        text = json.dumps(program)
        assert old in text
        return text.replace(old, new, 1).encode()

    return edit


def _hostile_pt2(case: str, marker: pathlib.Path) -> dict[str, Callable[[bytes], bytes]]:
    touch = pickle.dumps(Touch(marker), protocol=2)
    code = f"__import__('pathlib').Path('{marker}').touch()"
    return {
        # torch.load(weights_only=False) on a weight marked as pickled
        "pickled weight": {
            "model_weights_config.json": _use_pickle,
            "data/weights/weight_0": lambda _: touch,
        },
        # the weights_only load of the sample inputs fails, and torch retries unsafely
        "sample inputs": {"sample_inputs/model.pt": lambda _: touch},
        # a protocol-4 pickle (STACK_GLOBAL) inside the nested torch.save archive
        "nested pickle": {"sample_inputs/model.pt": lambda _: _torch_save_with(System(marker))},
        # symbolic shapes go through sympy.sympify, which is eval
        "shape expression": {
            "models/model.json": _program_edit(
                '"expr_str": "Symbol(', f'"expr_str": "{code} or Symbol('
            )
        },
        # names become Python source when ep.module() generates its forward()
        "argument name": {
            "models/model.json": _program_edit(
                '"forward_arg_names": ["input"]', f'"forward_arg_names": ["input, _={code}"]'
            )
        },
        # an operator resolved by getattr from the torch module
        "operator": {
            "models/model.json": _program_edit("torch.ops.aten.relu.default", "torch.os.system")
        },
    }[case]


def _torch_save_with(payload: object) -> bytes:
    buffer = io.BytesIO()
    torch.save({"x": torch.zeros(1)}, buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("data.pkl"):
                data = pickle.dumps(payload, protocol=4)
            zout.writestr(info.filename, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "case",
    [
        "pickled weight",
        "sample inputs",
        "nested pickle",
        "shape expression",
        "argument name",
        "operator",
    ],
)
def test_hostile_pt2_is_refused_and_runs_nothing(files, tmp_path, case):
    marker = tmp_path / "pwned"
    evil = rewrite(files["pt2"], tmp_path / "evil.pt2", _hostile_pt2(case, marker))
    with pytest.raises(ModelFileError, match=r"evil\.pt2: refused"):
        load_model(evil)
    assert not marker.exists()


def test_guards_code_in_a_pt2_is_never_run(files, tmp_path):
    marker = tmp_path / "pwned"
    code = f"__import__('pathlib').Path('{marker}').touch() is None"

    def add_guard(data: bytes) -> bytes:
        program = json.loads(data)
        program["guards_code"] = [code]
        return json.dumps(program).encode()

    evil = rewrite(files["pt2"], tmp_path / "guarded.pt2", {"models/model.json": add_guard})
    loaded = load_model(evil)
    loaded.module(X5)
    assert not marker.exists()


@pytest.mark.parametrize("member", ["data.pkl", "constants.pkl"])
@pytest.mark.parametrize("payload", [Touch, System])
def test_hostile_torchscript_pickle_is_refused(files, tmp_path, member, payload):
    marker = tmp_path / "pwned"
    evil_pickle = pickle.dumps(payload(marker), protocol=2)
    evil = rewrite(files["script"], tmp_path / "evil.pt", {member: lambda _: evil_pickle})
    with pytest.raises(ModelFileError, match=r"evil\.pt: refused: .*calls"):
        load_model(evil)
    assert not marker.exists()


class SetState(nn.Module):
    """TorchScript runs a class's __setstate__ while loading; this one writes a file."""

    def __init__(self):
        super().__init__()
        self.k = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :10] * self.k

    @torch.jit.export
    def __getstate__(self) -> tuple[int, bool]:
        return (self.k, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[int, bool]) -> None:
        torch.save(torch.zeros(1), "pwned_by_setstate")
        self.k = state[0]
        self.training = state[1]


class SavesInForward(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, "pwned_by_forward")
        return x.flatten(1)[:, :10]


@pytest.mark.parametrize(
    ("module", "why"),
    [(SetState, "defines __setstate__"), (SavesInForward, "uses aten::save")],
)
def test_torchscript_that_writes_files_is_refused(tmp_path, monkeypatch, module, why):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "writer.pt"
    torch.jit.save(torch.jit.script(module()), path)
    with pytest.raises(ModelFileError, match=rf"writer\.pt: refused: .*{why}"):
        load_model(path)
    assert not list(tmp_path.glob("pwned*"))


def test_broken_and_foreign_files_give_one_clear_error(files, tmp_path):
    data = files["pt2"].read_bytes()
    buffer = io.BytesIO()
    torch.save(files["model"].state_dict(), buffer)
    old = io.BytesIO()
    torch.save({"x": torch.zeros(2)}, old, _use_new_zipfile_serialization=False)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("notes/readme.txt", "hello")
    cases = {
        "empty.pt2": (b"", "empty"),
        "truncated.pt2": (data[: len(data) // 2], "damaged or truncated"),
        "photo.pt2": (b"\x89PNG\r\n\x1a\n" + bytes(200), "not a model file nnviz can open"),
        "model.pt": (buffer.getvalue(), r"torch\.save\(\) file"),
        "legacy.pt": (old.getvalue(), "bare Python pickle"),
        "notes.pt2": (zipped.getvalue(), "not a .pt2 or TorchScript model"),
    }
    for file_name, (content, why) in cases.items():
        path = tmp_path / file_name
        path.write_bytes(content)
        with pytest.raises(ModelFileError, match=rf"{re.escape(file_name)}.*{why}"):
            load_model(path)
    with pytest.raises(ModelFileError, match=r"missing\.pt2: no such file"):
        load_model(tmp_path / "missing.pt2")


def test_pickle_scan_allows_torch_pickles_and_refuses_others():
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(3), "n": torch.tensor(2)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        data_pkl = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        scan_pickle(archive.read(data_pkl), "data.pkl", "ok.pt")
    for protocol in (2, 4, 5):
        evil = pickle.dumps(System(pathlib.Path("x")), protocol=protocol)
        with pytest.raises(ModelFileError, match=r"bad\.pt: refused: .*system"):
            scan_pickle(evil, "data.pkl", "bad.pt")
    with pytest.raises(ModelFileError, match=r"bad\.pt is damaged"):
        scan_pickle(b"\x80\x02garbage", "data.pkl", "bad.pt")


def test_weights_only_loading_still_holds_if_the_scan_missed_a_pickle(files, tmp_path, monkeypatch):
    import nnviz.core.archive_scan as archive_scan

    monkeypatch.setattr(archive_scan, "scan_pickle", lambda *args, **kwargs: None)
    marker = tmp_path / "pwned"
    evil = rewrite(files["pt2"], tmp_path / "evil.pt2", _hostile_pt2("sample inputs", marker))
    with pytest.raises(ModelFileError, match=r"evil\.pt2"):
        load_model(evil)
    assert not marker.exists()
    assert torch.load is torch.serialization.load  # the guard put torch.load back
