"""The command line, end to end on real MNIST and the shipped sample models."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files

import numpy as np
import pytest
from PIL import Image

from nnviz.cli import main
from nnviz.core.data import load_dataset


def _sample(name: str) -> str:
    path = files("nnviz.sample_models") / f"{name}.nnviz"
    assert path.is_file(), f"the installed package lacks sample_models/{name}.nnviz"
    return str(path)


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("nnviz ")


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--out", "x.nnviz"])  # --model is required
    assert exc.value.code == 2
    assert "--model" in capsys.readouterr().err


def test_summary_json_of_a_preset(capsys):
    code, out, _ = _run(capsys, "summary", "mlp-3b1b", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["total_params"] == data["trainable_params"] == 13002
    assert data["input_shape"] == [1, 28, 28]
    assert [layer["name"] for layer in data["layers"]] == [
        "flatten",
        "fc1",
        "sigmoid1",
        "fc2",
        "sigmoid2",
        "output",
    ]
    assert data["layers"][-1] == {
        "name": "output",
        "type": "Linear",
        "output_shape": [1, 10],
        "params": 170,
    }


def test_summary_table_of_the_lenet_sample(capsys):
    code, out, _ = _run(capsys, "summary", _sample("lenet"))
    assert code == 0
    assert "conv1" in out and "Conv2d" in out and "28,886" in out.replace(" ", "") or "28886" in out


def test_sample_lenet_reaches_its_accuracy(capsys):
    code, out, _ = _run(capsys, "eval", _sample("lenet"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["n"] == 10000
    assert data["accuracy"] >= 0.985
    confusion = np.array(data["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 10000
    assert np.trace(confusion) / 10000 == pytest.approx(data["accuracy"])


@pytest.mark.parametrize(("name", "floor"), [("mlp-3b1b", 0.94), ("mlp", 0.975)])
def test_sample_mlps_reach_their_accuracy(capsys, name, floor):
    code, out, _ = _run(capsys, "eval", _sample(name), "--json")
    assert code == 0
    assert json.loads(out)["accuracy"] >= floor


def test_train_then_eval_a_small_model(capsys, tmp_path):
    out_file = tmp_path / "tiny.nnviz"
    code, out, err = _run(
        capsys,
        "train",
        "--model",
        "mlp",
        "--limit",
        "1000",
        "--val",
        "200",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        str(out_file),
    )
    assert code == 0, err
    assert out_file.is_file()
    assert "accuracy" in out
    code, out, _ = _run(capsys, "eval", str(out_file), "--json")
    assert code == 0
    assert 0.7 < json.loads(out)["accuracy"] < 1.0  # 1,000 digits, 2 epochs: learned something


def test_predict_real_test_digits_drawn_large(capsys, tmp_path):
    test = load_dataset("mnist", "test")
    paths = []
    for i in range(20):
        big = Image.fromarray(255 - test.images[i]).resize((140, 140), Image.Resampling.BILINEAR)
        page = Image.new("L", (300, 200), 255)  # dark ink on white paper, off centre
        page.paste(big, (20 + 7 * i, 30))
        path = tmp_path / f"digit{i}.png"
        page.save(path)
        paths.append(str(path))
    blank = tmp_path / "blank.png"
    Image.new("RGB", (50, 50), (255, 255, 255)).save(blank)
    code, out, _ = _run(capsys, "predict", _sample("lenet"), *paths, str(blank), "--json")
    assert code == 0
    results = json.loads(out)
    assert [r["file"] for r in results] == [*paths, str(blank)]
    correct = sum(r["prediction"] == int(test.labels[i]) for i, r in enumerate(results[:-1]))
    assert correct >= 19
    for r in results[:-1]:
        assert len(r["probabilities"]) == 10 and abs(sum(r["probabilities"]) - 1) < 1e-4
    assert results[-1]["prediction"] is None and results[-1]["note"] == "no ink"


@pytest.mark.parametrize(
    "argv",
    [
        ["summary", "{tmp}/missing.nnviz"],
        ["eval", "{tmp}/notes.txt"],
        ["predict", "lenet", "{tmp}/notes.txt"],
        ["train", "--model", "no-such-preset", "--out", "{tmp}/x.nnviz"],
        ["eval", "lenet", "--data", "{tmp}/no-such-folder"],
    ],
)
def test_failures_are_one_line_exit_1(capsys, tmp_path, argv):
    (tmp_path / "notes.txt").write_text("not a model, not an image")
    code, out, err = _run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnviz: error: "), err
    assert "Traceback" not in err


def test_the_installed_command_and_python_m(tmp_path):
    bad = tmp_path / "broken.pt2"
    bad.write_bytes(b"PK\x03\x04 truncated")
    for cmd in ([sys.executable, "-m", "nnviz"], [str(_script("nnviz"))]):
        result = subprocess.run([*cmd, "summary", str(bad)], capture_output=True, text=True)
        assert result.returncode == 1
        assert result.stderr.startswith("nnviz: error: ") and "broken.pt2" in result.stderr
        assert "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "nnviz", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("nnviz ")


def _script(name):
    from pathlib import Path

    return Path(sys.executable).with_name(name)
