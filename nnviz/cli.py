"""The ``nnviz`` command line: train, summary, predict, eval, bench, and (default) the app.

Uses the core only; ``nnviz gui`` imports Qt lazily so the other commands never load it.
Exit codes: 0 success, 2 bad usage (argparse), 1 any other failure with one line
``nnviz: error: ...`` on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnviz import __version__

MNIST_CREDIT = (
    "MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, "
    "under the Creative Commons Attribution-Share Alike 3.0 license."
)


# predict and eval answer with a model's weights: a bare preset name would be random ones.
SAMPLES = ("lenet", "mlp", "mlp-3b1b")  # the trained models shipped in nnviz.sample_models
MODEL_TO_RUN = (
    "a .nnviz, .pt2 or TorchScript file, or a model name: lenet, mlp or mlp-3b1b "
    "(the trained samples), cnn (untrained)"
)
TRAINED_NAMES = (
    "The names lenet, mlp and mlp-3b1b mean the trained sample models shipped with nnviz "
    "(the files in nnviz/sample_models). Any other preset (cnn) or a spec .json is an "
    "untrained network with random weights: a note says so on stderr, and --json output "
    'has "untrained": true.'
)


class CliError(Exception):
    """A failure to report as one line and exit 1."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnviz",
        description="Watch a small neural network learn to read handwritten digits, "
        "and look inside it. With no command, opens the app.",
        epilog=MNIST_CREDIT,
    )
    p.add_argument("--version", action="version", version=f"nnviz {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("gui", help="open the app (the default)", description="Open the app.")
    g.add_argument("model", nargs="?", help="a .nnviz, .pt2 or TorchScript file, or a preset")
    g.add_argument("--screenshot", metavar="FILE.png", help="render the window to a PNG and exit")

    t = sub.add_parser("train", help="train a model and save it", description="Train a model.")
    t.add_argument(
        "--model", required=True, help="a preset (mlp-3b1b, mlp, lenet, cnn) or SPEC.json"
    )
    t.add_argument("--data", default="mnist", help="mnist (default), fashion-mnist, or a folder")
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=None, help="learning rate (default per optimizer)")
    t.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "adadelta"], default="adam")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    t.add_argument(
        "--val", type=int, default=5000, help="validation images held out (default 5000)"
    )
    t.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    t.add_argument("--out", required=True, metavar="FILE.nnviz", help="where to save the model")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("summary", help="layers, shapes and parameter counts of a model")
    s.add_argument("model", help="a preset name or a .nnviz, .pt2 or TorchScript file")
    s.add_argument("--json", action="store_true", help="print one JSON object")

    pr = sub.add_parser(
        "predict",
        help="classify drawings (PNG/JPG of any size)",
        description="Classify drawings (PNG/JPG of any size).",
        epilog=TRAINED_NAMES,
    )
    pr.add_argument("model", help=MODEL_TO_RUN)
    pr.add_argument("images", nargs="+", metavar="IMAGE")
    pr.add_argument("--json", action="store_true", help="print a JSON list")

    e = sub.add_parser(
        "eval",
        help="accuracy and confusion matrix on the test set",
        description="Accuracy and confusion matrix on the test set.",
        epilog=TRAINED_NAMES,
    )
    e.add_argument("model", help=MODEL_TO_RUN)
    e.add_argument("--data", default="mnist", help="mnist (default), fashion-mnist, or a folder")
    e.add_argument("--json", action="store_true", help="print one JSON object")

    b = sub.add_parser(
        "bench",
        help="measure training overhead, smoothness, start-up time and memory of the app",
        description="Benchmark the app on this machine (a few minutes; --quick: under one).",
    )
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--quick", action="store_true", help="shorter periods, under a minute")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nnviz`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    command = args.command or "gui"
    try:
        if command == "gui":
            from nnviz.qt.platform_check import x11_problem

            problem = x11_problem()  # Qt would abort the process with its own long message
            if problem is not None:
                print(f"nnviz: error: {problem}", file=sys.stderr)
                return 1
            from nnviz.qt.app import run_app  # Qt only when the app is asked for

            return run_app(getattr(args, "model", None), getattr(args, "screenshot", None))
        handler = {
            "train": _train,
            "summary": _summary,
            "predict": _predict,
            "eval": _eval,
            "bench": _bench,
        }
        return handler[command](args)
    except KeyboardInterrupt:
        print("nnviz: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into a reader that stopped (`nnviz eval ... | head`): not an error
        # to report; point stdout at devnull so the interpreter's final flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:  # every failure is one clear line, never a traceback
        print(f"nnviz: error: {_describe(exc)}", file=sys.stderr)
        return 1


def _describe(exc: BaseException) -> str:
    from nnviz.core.errors import NnvizError

    if isinstance(exc, (NnvizError, CliError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nnviz.core.checkpoint import Checkpoint, save_checkpoint
    from nnviz.core.data import load_splits
    from nnviz.core.evaluate import evaluate
    from nnviz.core.models import build_model, get_spec
    from nnviz.core.training import TrainConfig, Trainer

    out = Path(args.out)
    _check_destination(out)
    spec = get_spec(args.model)
    config = TrainConfig(
        optimizer=args.optimizer,
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=args.epochs,
        weight_decay=args.weight_decay,
        seed=args.seed,
        device=args.device,
    )
    data = load_splits(args.data, n_val=args.val, seed=args.seed, limit=args.limit)
    model = build_model(spec, seed=args.seed)
    trainer = Trainer(model, data, config)
    assert data.train is not None
    per_epoch = -(-len(data.train) // config.batch_size)
    bar = tqdm(total=per_epoch * config.epochs, unit="step", disable=args.quiet, dynamic_ncols=True)
    val_acc: float | None = None
    try:
        for report in trainer.steps():
            bar.update(1)
            if report.batch % 20 == 0 or report.batch == report.batches_per_epoch:
                postfix = {
                    "epoch": f"{report.epoch + 1}/{config.epochs}",
                    "loss": f"{report.loss:.4f}",
                    "acc": f"{report.accuracy:.3f}",
                }
                if trainer.history.epochs:
                    val_acc = trainer.history.epochs[-1]["val_accuracy"]
                if val_acc is not None:
                    postfix["val_acc"] = f"{val_acc:.4f}"
                bar.set_postfix(postfix, refresh=False)
    finally:
        bar.close()
    finished = trainer.finished
    if finished.reason == "failed":
        raise CliError(finished.message)
    final = evaluate(trainer.model, data.evaluation_set(), device=trainer.device)
    checkpoint = Checkpoint(
        spec=spec,
        state_dict={k: v.detach().cpu() for k, v in trainer.model.state_dict().items()},
        class_names=list(data.classes),
        train_config={
            **config.to_dict(),
            "data": args.data,
            "n_val": args.val,
            "limit": args.limit,
        },
        history={
            **trainer.history.to_dict(),
            "final": {
                "set": data.evaluation_set().name,
                "accuracy": final.accuracy,
                "loss": final.loss,
            },
        },
        extra={},
    )
    save_checkpoint(out, checkpoint)
    for epoch in trainer.history.epochs:
        if epoch["val_accuracy"] is not None:
            print(
                f"epoch {epoch['epoch'] + 1}: train loss {epoch['train_loss']:.4f}, "
                f"validation accuracy {epoch['val_accuracy']:.4f}"
            )
    print(
        f"{data.evaluation_set().name} accuracy: {final.accuracy:.4f} "
        f"({final.n} images); saved {out}"
    )
    return 0


def _check_destination(out: Path) -> None:
    """Refuse an --out the model could not be saved to, before any training is done."""
    if out.suffix != ".nnviz":
        raise CliError(f"--out must end in .nnviz, not {out.name!r}")
    if out.is_dir():
        raise CliError(f"--out {out} is a folder; give a file name ending in .nnviz")
    folder = out.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise CliError(f"cannot save to {out}: the folder {folder} {what}")
    if out.exists() and not os.access(out, os.W_OK):
        raise CliError(f"cannot save to {out}: the file is read-only")
    # What the save will do: make a file beside the destination (the atomic writer's
    # temporary file). Trying it is the one check that also finds read-only disks.
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{out.name}.", suffix=".tmp"):
            pass
    except OSError as exc:
        raise CliError(
            f"cannot save to {out}: cannot write in {folder} ({exc.strerror or exc})"
        ) from exc


def _load(source: str) -> Any:
    from nnviz.core.modelfile import load_model

    return load_model(source)


def _load_to_run(source: str) -> tuple[Any, bool]:
    """The model predict and eval run, and whether its weights are random.

    A sample's name (lenet, mlp, mlp-3b1b) means the trained sample, not its untrained
    preset: ``nnviz predict lenet`` once answered with random weights (11%, exit 0). An
    existing file of that name is still the file.
    """
    from importlib.resources import files

    if source in SAMPLES and not Path(source).exists():
        return _load(str(files("nnviz.sample_models") / f"{source}.nnviz")), False
    loaded = _load(source)
    untrained = loaded.kind in ("preset", "spec")
    if untrained:
        what = "preset" if loaded.kind == "preset" else "architecture"
        print(f"nnviz: note: '{source}' is an untrained {what} (random weights)", file=sys.stderr)
    return loaded, untrained


def _summary(args: argparse.Namespace) -> int:
    from nnviz.core.inspect import summarize

    loaded = _load(args.model)
    summary = summarize(loaded.program or loaded.module, tuple(loaded.input_shape))
    if args.json:
        _print_json(summary.to_dict())
    else:
        print(f"{loaded.display_name}")
        print(summary.format_table())
    return 0


def _predict(args: argparse.Namespace) -> int:
    import torch

    from nnviz.core.evaluate import predict_probabilities
    from nnviz.core.preprocess import load_image, preprocess_drawing

    loaded, untrained = _load_to_run(args.model)
    results: list[dict[str, Any]] = []
    for name in args.images:
        prep = preprocess_drawing(load_image(name))
        if not prep.has_ink:
            results.append(
                {"file": name, "prediction": None, "probabilities": None, "note": "no ink"}
            )
        else:
            x = torch.from_numpy(prep.image).reshape(1, 1, 28, 28)
            probs = predict_probabilities(loaded.module, x)[0]
            results.append(
                {
                    "file": name,
                    "prediction": int(probs.argmax()),
                    "probabilities": [round(float(p), 6) for p in probs],
                }
            )
        if untrained:
            results[-1]["untrained"] = True
    if args.json:
        _print_json(results)
        return 0
    for r in results:
        if r["prediction"] is None:
            print(f"{r['file']}: no ink")
        else:
            label = loaded.class_names[r["prediction"]]
            print(f"{r['file']}: {label} ({r['probabilities'][r['prediction']]:.1%})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from nnviz.core.data import load_splits
    from nnviz.core.evaluate import evaluate

    loaded, untrained = _load_to_run(args.model)
    data = load_splits(args.data, n_val=0)
    dataset = data.evaluation_set()
    result = evaluate(loaded.module, dataset)
    if args.json:
        report = {
            "accuracy": result.accuracy,
            "n": result.n,
            "confusion": result.confusion.tolist(),
        }
        if untrained:
            report["untrained"] = True
        _print_json(report)
        return 0
    print(
        f"{loaded.display_name} on {dataset.name}: accuracy {result.accuracy:.4f} "
        f"({result.n} images)"
    )
    names = [c[:5] for c in data.classes]
    print("confusion (rows: true label, columns: prediction)")
    print("       " + " ".join(f"{n:>5}" for n in names))
    for name, row in zip(names, result.confusion, strict=True):
        print(f"{name:>6} " + " ".join(f"{v:5d}" for v in row))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from nnviz.bench import format_report, run_bench  # loads Qt lazily, inside its functions

    def log(message: str) -> None:
        print(f"nnviz bench: {message}", file=sys.stderr, flush=True)

    result = run_bench(quick=args.quick, log=log)
    if args.json:
        _print_json(result)
    else:
        print(format_report(result))
    return 0
