"""The command line, end to end on real MNIST and the shipped sample models."""

from __future__ import annotations

import json
import os
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


# ----- a model name means trained weights, or says it has none -----------------------------
def _digit_pngs(tmp_path, count):
    test = load_dataset("mnist", "test")
    paths = []
    for i in range(count):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(255 - test.images[i]).resize((112, 112)).save(path)
        paths.append(str(path))
    return paths, [int(v) for v in test.labels[:count]]


def _idx(array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def test_a_sample_name_predicts_and_evaluates_with_the_trained_sample(capsys, tmp_path):
    paths, labels = _digit_pngs(tmp_path, 10)
    code, out, err = _run(capsys, "predict", "lenet", *paths, "--json")
    assert code == 0 and err == ""
    by_name = json.loads(out)
    code, out, _ = _run(capsys, "predict", _sample("lenet"), *paths, "--json")
    assert by_name == json.loads(out)  # the very same answers as the shipped file
    assert [r["prediction"] for r in by_name] == labels
    assert all("untrained" not in r for r in by_name)
    code, out, err = _run(capsys, "eval", "mlp", "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert report["accuracy"] >= 0.975 and "untrained" not in report  # the sample's figure


def test_a_preset_without_a_sample_says_it_is_untrained(capsys, tmp_path):
    paths, _ = _digit_pngs(tmp_path, 3)
    note = "nnviz: note: 'cnn' is an untrained preset (random weights)"
    code, out, err = _run(capsys, "predict", "cnn", *paths, "--json")
    assert code == 0 and err.strip() == note
    results = json.loads(out)
    assert len(results) == 3 and all(r["untrained"] is True for r in results)
    code, out, err = _run(capsys, "predict", "cnn", paths[0])
    assert code == 0 and err.strip() == note and out.startswith(paths[0])
    folder = tmp_path / "few"
    folder.mkdir()
    test = load_dataset("mnist", "test")
    (folder / "t10k-images-idx3-ubyte").write_bytes(_idx(test.images[:100]))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(_idx(test.labels[:100]))
    code, out, err = _run(capsys, "eval", "cnn", "--data", str(folder), "--json")
    assert code == 0 and err.strip() == note
    report = json.loads(out)
    assert report["untrained"] is True and report["n"] == 100


def test_summary_of_a_preset_name_is_still_the_preset(capsys):
    code, out, err = _run(capsys, "summary", "lenet")
    assert code == 0 and err == ""
    assert out.splitlines()[0] == "lenet"  # the preset's name, not the sample's file
    assert "conv1" in out and "28,886" in out


# ----- train checks where it will save before it trains -------------------------------------
def _train_to(capsys, out):
    # Data that cannot be loaded: an error about it would mean the destination was
    # checked only after the data (and so after training would have started).
    return _run(
        capsys, "train", "--model", "mlp", "--data", "/no/such/data", "--quiet", "--out", out
    )


@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("{tmp}/no/such/dir/x.nnviz", "does not exist"),
        ("{tmp}/notes.txt/x.nnviz", "is not a folder"),
        ("{tmp}/folder.nnviz", "is a folder"),
    ],
)
def test_train_refuses_a_destination_it_cannot_save_to_before_training(
    capsys, tmp_path, out, words
):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    (tmp_path / "folder.nnviz").mkdir()
    code, stdout, err = _train_to(capsys, out.format(tmp=tmp_path))
    assert code == 1 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnviz: error: ") and words in lines[0], err
    assert "/no/such/data" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only files and folders")
def test_train_refuses_a_read_only_destination(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    kept = tmp_path / "kept.nnviz"
    kept.write_bytes(b"a model someone keeps")
    kept.chmod(0o444)
    try:
        for out, words in ((locked / "x.nnviz", "cannot write in"), (kept, "read-only")):
            code, _, err = _train_to(capsys, str(out))
            assert code == 1 and words in err and len(err.strip().splitlines()) == 1, err
    finally:
        locked.chmod(0o755)
