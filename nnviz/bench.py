"""``nnviz bench``: how much the app costs training, how smooth it stays, how fast it opens.

A benchmark, not a test: one run on this machine, figures beside their targets.

- train_overhead: samples/s of the bare core loop (a ``Trainer`` in a plain thread, no
  GUI) and of the same training inside the app (window shown, every dock open, the
  frame timer and the event loop running), steady state: a warm-up is skipped, then
  steps are counted over a fixed period. Bare and app runs are interleaved.
- event_loop: lateness of a 5 ms single-shot heartbeat, re-armed every tick, while
  lenet trains at full speed in the app (a repeating timer would hide delays).
- startup_s: ``python -m nnviz gui`` in a fresh process until the window is shown
  (it comes up with Qt alone, its menus and a "Loading" line; torch imports behind it);
  startup_ready_s: until the panels and the sample model are in it too
  (``NNVIZ_EXIT_WHEN_SHOWN`` makes the app say so and exit).
- canvas_latency: from a synthetic mouse move on the Draw panel's canvas (a stroke, one
  move every 20 ms, a 50 Hz mouse) until the drawing has been preprocessed, classified
  and every visible panel that follows the input has redrawn and painted, while lenet
  trains at full speed; in the window's default layout and size (1600x1000: Draw
  beside the Activations tab, Input in the left column; the other views behind tabs).
- peak_rss_mb: peak RSS of this process, which hosted the app, the bare trainers and
  the data for the measurements above (not the start-up child processes).

Qt is imported inside functions only, so ``nnviz.cli`` can import this module lazily.
"""

from __future__ import annotations

import functools
import operator
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

MODELS = ("mlp-3b1b", "lenet")
BATCH_SIZE = 64
HEARTBEAT_MS = 5
SHOWN_LINE = "nnviz-shown"
READY_LINE = "nnviz-ready"

# name -> (how to read it from the result, comparison, limit, unit)
TARGETS: dict[str, tuple[tuple[str, ...], str, float, str]] = {
    "lenet ratio": (("train_overhead", "lenet", "ratio"), ">=", 0.90, ""),
    "mlp-3b1b ratio": (("train_overhead", "mlp-3b1b", "ratio"), ">=", 0.75, ""),
    "event-loop p99": (("event_loop", "p99_ms"), "<=", 16.0, " ms"),
    "event-loop max": (("event_loop", "max_ms"), "<=", 50.0, " ms"),
    "canvas p95": (("canvas_latency", "p95_ms"), "<=", 16.0, " ms"),
    "startup": (("startup_s",), "<=", 2.0, " s"),
    "peak RSS": (("peak_rss_mb",), "<=", 600.0, " MB"),
}

Log = Callable[[str], None]


# ----- settings of one run --------------------------------------------------------------
def _plan(quick: bool) -> dict[str, Any]:
    return {
        "warmup_s": 1.0,
        "period_s": 4.0 if quick else 10.0,
        "repeats": 1 if quick else 3,  # bare/app pairs per model, interleaved; medians
        "event_loop_warmup_s": 2.0,
        "event_loop_s": 4.0 if quick else 10.0,
        "startup_runs": 1 if quick else 3,
        "canvas_moves": 100 if quick else 300,
    }


def _train_config(epochs: int = 1000) -> Any:  # noqa: ANN401 - TrainConfig, imported lazily
    """The app's default config at batch size 64, as fast as possible, never finishing."""
    from nnviz.core.training import TrainConfig

    return TrainConfig(batch_size=BATCH_SIZE, epochs=epochs, steps_per_second=None)


# ----- start-up -------------------------------------------------------------------------
def measure_startup(runs: int = 1, timeout_s: float = 60.0) -> tuple[float, float]:
    """Median seconds from spawning ``python -m nnviz gui`` to the window being shown, and
    to the sample model being open in it."""
    times = []
    with tempfile.TemporaryDirectory(prefix="nnviz-bench-") as config_home:
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "NNVIZ_EXIT_WHEN_SHOWN": "1",
            # a fresh settings folder: default layout, and the user's settings untouched
            "XDG_CONFIG_HOME": config_home,
        }
        for _ in range(runs):
            times.append(_one_startup(env, timeout_s))
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def _one_startup(env: dict[str, str], timeout_s: float) -> tuple[float, float]:
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "nnviz", "gui"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        # `-m` puts the working directory on sys.path; a source checkout there would
        # shadow the installed package.
        cwd=tempfile.gettempdir(),
        text=True,
    )
    killer = threading.Timer(timeout_s, child.kill)
    killer.start()
    try:
        seen: dict[str, float] = {}
        for line in child.stdout or ():
            if line.strip() in (SHOWN_LINE, READY_LINE):
                seen[line.strip()] = time.perf_counter() - start
            if READY_LINE in seen:
                break
        if SHOWN_LINE not in seen or READY_LINE not in seen:
            raise RuntimeError(f"the app exited (code {child.wait()}) without showing its window")
        child.stdout.read()
        code = child.wait()
    finally:
        killer.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
    if code != 0:
        raise RuntimeError(f"the app showed its window but exited with code {code}")
    return seen[SHOWN_LINE], seen[READY_LINE]


# ----- the app, hosted in this process --------------------------------------------------
def open_window(settings_dir: str) -> tuple[Any, Any]:
    """The app's window, shown offscreen with every dock open, as ``run_app`` sets it up."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings

    from nnviz.qt.app import create_window, finish_start_up

    _drop_offscreen_noise()
    # Keep the user's layout, theme and recent files out of it (and unchanged by it).
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, settings_dir)
    app, window = create_window()
    window.documents.ask_to_save = lambda: "discard"  # never a modal dialog while measuring
    window.show()
    finish_start_up(window).join()  # as run_app does once the window is up
    if window.session.data is None:
        raise RuntimeError("the app could not load its bundled MNIST")
    window.tile_all_panels()  # every panel open and on screen, none behind a tab
    spin(0.3)  # let it lay out and paint once
    return app, window


def _drop_offscreen_noise() -> None:
    """Hide the offscreen platform's "does not support propagateSizeHints()" lines."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(_mode: Any, _context: Any, message: str) -> None:  # noqa: ANN401
        if "propagateSizeHints" not in message:
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def close_window(window: Any) -> None:  # noqa: ANN401 - Qt type, imported lazily
    """Stop training, close the window without asking, and let Qt delete it."""
    from PySide6.QtCore import QCoreApplication, QEvent

    window.stop_training()
    window.session.set_dirty(False)
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()


def spin(seconds: float) -> None:
    """Run the Qt event loop for ``seconds``."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(max(0, round(seconds * 1000)), loop.quit)
    loop.exec()


def _load_preset(window: Any, name: str, settle_s: float = 5.0) -> None:  # noqa: ANN401
    """Open a sample model and let every panel draw it, as a person opens a model and
    then presses Train (the views' first drawing of a new model is not what is measured)."""
    from PySide6.QtCore import QCoreApplication

    from nnviz.core.modelfile import load_model

    window.session.set_model(load_model(name, seed=0))
    window.session.set_config(_train_config())
    end = time.perf_counter() + settle_s
    while time.perf_counter() < end and any(
        p.stale and p.is_shown() for p in window.panels.values()
    ):
        QCoreApplication.processEvents()
        time.sleep(0.005)
    spin(0.1)  # their paints


def _start_training(window: Any) -> Any:  # noqa: ANN401 - Qt and core types, imported lazily
    window.train()
    if window.runner.trainer is None or not window.runner.active:
        raise RuntimeError(f"training did not start: {window.statusBar().currentMessage()}")
    return window.runner.trainer


def measure_app_throughput(window: Any, warmup_s: float, period_s: float) -> float:  # noqa: ANN401
    """Samples/s of training started with ``window.train()`` while the event loop spins."""
    from PySide6.QtCore import QEventLoop, QTimer

    trainer = _start_training(window)
    marks: list[tuple[float, int]] = []
    loop = QEventLoop()

    def mark() -> None:
        marks.append((time.perf_counter(), trainer.history.last_step))
        if len(marks) == 2:
            loop.quit()

    QTimer.singleShot(round(warmup_s * 1000), mark)
    QTimer.singleShot(round((warmup_s + period_s) * 1000), mark)
    loop.exec()
    window.stop_training()
    (t0, s0), (t1, s1) = marks
    return (s1 - s0) * trainer.config.batch_size / (t1 - t0)


def measure_bare_throughput(name: str, data: Any, warmup_s: float, period_s: float) -> float:  # noqa: ANN401
    """Samples/s of the core loop alone: a ``Trainer`` in a plain thread, no GUI."""
    from nnviz.core.models import build_model, get_spec
    from nnviz.core.training import Trainer

    trainer = Trainer(build_model(get_spec(name), seed=0), data, _train_config())
    thread = threading.Thread(target=trainer.run, name=f"bench-{name}", daemon=True)
    thread.start()
    try:
        time.sleep(warmup_s)
        t0, s0 = time.perf_counter(), trainer.history.last_step
        time.sleep(period_s)
        t1, s1 = time.perf_counter(), trainer.history.last_step
    finally:
        trainer.stop()
        thread.join()
    if trainer.finished is not None and trainer.finished.reason == "failed":
        raise RuntimeError(trainer.finished.message)
    return (s1 - s0) * trainer.config.batch_size / (t1 - t0)


def measure_event_loop(
    duration_s: float, *, warmup_s: float = 0.0, interval_ms: int = HEARTBEAT_MS
) -> dict[str, float]:
    """How late a single-shot heartbeat timer fires, re-armed each tick (needs a QApplication).

    Runs the event loop for ``warmup_s + duration_s``; ticks in the warm-up are dropped.
    Lateness is now - armed - interval, in ms; a tick Qt fires a hair early counts as 0.
    """
    import numpy as np
    from PySide6.QtCore import QEventLoop, Qt, QTimer

    interval = interval_ms / 1000
    lateness: list[float] = []
    loop = QEventLoop()
    timer = QTimer()
    timer.setSingleShot(True)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    start = time.perf_counter()
    armed = start

    def tick() -> None:
        nonlocal armed
        now = time.perf_counter()
        if now - start >= warmup_s:
            lateness.append(max(0.0, now - armed - interval) * 1000)
        if now - start >= warmup_s + duration_s:
            loop.quit()
            return
        armed = time.perf_counter()
        timer.start(interval_ms)

    timer.timeout.connect(tick)
    armed = time.perf_counter()
    timer.start(interval_ms)
    loop.exec()
    timer.stop()
    values = np.asarray(lateness or [0.0])
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "max_ms": float(values.max()),
        "ticks": len(lateness),
    }


def measure_training_heartbeat(window: Any, duration_s: float, warmup_s: float) -> dict:  # noqa: ANN401
    """``measure_event_loop`` while lenet trains at full speed in the window."""
    _load_preset(window, "lenet")
    _start_training(window)
    try:
        return measure_event_loop(duration_s, warmup_s=warmup_s)
    finally:
        window.stop_training()


def measure_canvas_latency(window: Any, moves: int, warmup_s: float = 1.0) -> dict[str, float]:  # noqa: ANN401
    """Milliseconds from a mouse move on the canvas to every visible view showing it,
    with lenet training at full speed in the window."""
    import numpy as np
    from PySide6.QtCore import QCoreApplication, QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent

    _load_preset(window, "lenet")
    panel = window.panels["canvas"]
    canvas = panel.canvas
    _start_training(window)
    spin(warmup_s)
    followers = [p for p in window.panels.values() if p.listens_to(window.session.input_changed)]

    def send(kind: QEvent.Type, x: float, y: float, buttons: Qt.MouseButton) -> None:
        pos = QPointF(x * canvas.width(), y * canvas.height())
        moving = kind == QEvent.Type.MouseMove
        button = Qt.MouseButton.NoButton if moving else Qt.MouseButton.LeftButton
        event = QMouseEvent(
            kind, pos, canvas.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier
        )
        QCoreApplication.sendEvent(canvas, event)

    def shown(since: float) -> bool:
        # The input is the drawing and every visible view that follows it has redrawn
        # since the move (a view may be stale again by then from a new training snapshot,
        # which it draws at its next tick: that is not the stroke waiting).
        # (Whether a view is shown is asked only of those that have not redrawn: asking
        # every view cost the measurement itself a few tenths of a millisecond.)
        return panel.drawing_is_current() and all(
            p.last_redraw >= since or not p.is_shown() for p in followers
        )

    latencies: list[float] = []
    held = Qt.MouseButton.LeftButton
    try:
        stroke = 0
        while len(latencies) < moves:
            canvas.clear()
            x = 0.3 + 0.4 * (stroke % 5) / 4
            send(QEvent.Type.MouseButtonPress, x, 0.2, held)
            spin(0.020)  # the press is an event of the same 50 Hz stream as the moves
            for i in range(1, 21):  # a vertical stroke in 20 moves
                start = time.perf_counter()
                send(QEvent.Type.MouseMove, x, 0.2 + 0.6 * i / 20, held)
                while not shown(start) and time.perf_counter() - start < 1.0:
                    QCoreApplication.processEvents()
                QCoreApplication.processEvents()  # the paint events the redraws posted
                latencies.append((time.perf_counter() - start) * 1000)
                spin(max(0.0, 0.020 - (time.perf_counter() - start)))
            send(QEvent.Type.MouseButtonRelease, x, 0.8, Qt.MouseButton.NoButton)
            stroke += 1
    finally:
        window.stop_training()
    values = np.asarray(latencies[:moves])
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "max_ms": float(values.max()),
        "moves": len(values),
    }


# ----- the whole run --------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    import torch

    return {
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_bench(quick: bool = False, log: Log | None = None) -> dict[str, Any]:
    """Measure everything once; ``quick`` keeps the whole run under a minute."""
    say = log or (lambda _: None)

    def log(message: str) -> None:  # with the peak RSS so far, to see what raises it
        say(f"{message} (peak RSS so far {_peak_rss_mb():.0f} MB)")

    from nnviz.qt.app import GIL_SWITCH_INTERVAL_S
    from nnviz.qt.main_window import DEFAULT_SIZE

    plan = _plan(quick)
    machine = machine_info()

    log(f"start-up ({plan['startup_runs']} run(s))…")
    startup, ready = measure_startup(plan["startup_runs"])

    overhead: dict[str, dict[str, float]] = {}
    default_interval = sys.getswitchinterval()
    with tempfile.TemporaryDirectory(prefix="nnviz-bench-") as settings_dir:
        _, window = open_window(settings_dir)
        # What the app loaded (bundled MNIST, full training set), shared with the bare runs.
        data = window.session.data
        try:
            for name in MODELS:
                bare, app = [], []
                for i in range(plan["repeats"]):
                    log(f"{name}: bare core loop, run {i + 1}…")
                    sys.setswitchinterval(default_interval)
                    bare.append(
                        measure_bare_throughput(name, data, plan["warmup_s"], plan["period_s"])
                    )
                    log(f"{name}: in the app, run {i + 1}…")
                    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)  # what run_app sets
                    _load_preset(window, name)
                    app.append(measure_app_throughput(window, plan["warmup_s"], plan["period_s"]))
                b, a = statistics.median(bare), statistics.median(app)
                overhead[name] = {"bare": b, "app": a, "ratio": a / b}
            log("event-loop lateness while lenet trains…")
            heartbeat = measure_training_heartbeat(
                window, plan["event_loop_s"], plan["event_loop_warmup_s"]
            )
            log("canvas latency while lenet trains…")
            # As a person sees it: the default layout (Draw beside the views it drives) in
            # a window of the default size (tiling every panel made it 3,650 px tall).
            window.resize(*DEFAULT_SIZE)
            window.reset_layout()
            spin(0.3)
            canvas = measure_canvas_latency(window, plan["canvas_moves"])
        finally:
            close_window(window)
            sys.setswitchinterval(default_interval)
    machine["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    config = _train_config()
    result: dict[str, Any] = {
        "train_overhead": overhead,
        "event_loop": heartbeat,
        "canvas_latency": canvas,
        "startup_s": startup,
        "startup_ready_s": ready,
        "peak_rss_mb": _peak_rss_mb(),
        "machine": machine,
        "quick": quick,
        "settings": {"batch_size": BATCH_SIZE, "num_threads": config.num_threads, **plan},
    }
    result["targets"] = check_targets(result)
    return result


def check_targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target's figure, its limit as text, and whether the figure meets it."""
    out = {}
    for name, (path, op, limit, unit) in TARGETS.items():
        value = float(functools.reduce(operator.getitem, path, result))
        met = value >= limit if op == ">=" else value <= limit
        out[name] = {"value": value, "target": f"{op} {limit:g}{unit}", "met": met}
    return out


def format_report(result: dict[str, Any]) -> str:
    """The result as a table, each figure beside its target."""
    targets = check_targets(result)
    rows: list[tuple[str, str, str]] = []

    def row(label: str, figure: str, target: str | None = None) -> None:
        if target is None:
            rows.append((label, figure, ""))
        else:
            t = targets[target]
            rows.append((label, figure, f"{t['target']:<10} {'yes' if t['met'] else 'NO'}"))

    for name, o in result["train_overhead"].items():
        row(f"train {name}: bare", f"{o['bare']:,.0f} samples/s")
        row(f"train {name}: in app", f"{o['app']:,.0f} samples/s")
        row(f"train {name}: app/bare", f"{o['ratio']:.2f}", f"{name} ratio")
    ev = result["event_loop"]
    row(
        f"event loop ({HEARTBEAT_MS} ms heartbeat, lenet training): p50",
        f"{ev['p50_ms']:.2f} ms late",
    )
    row("event loop: p99", f"{ev['p99_ms']:.2f} ms late", "event-loop p99")
    row("event loop: max", f"{ev['max_ms']:.2f} ms late", "event-loop max")
    if "canvas_latency" in result:
        cv = result["canvas_latency"]
        row("canvas stroke to views shown (lenet training): p50", f"{cv['p50_ms']:.2f} ms")
        row("canvas: p95", f"{cv['p95_ms']:.2f} ms", "canvas p95")
    row("startup (command to window shown)", f"{result['startup_s']:.2f} s", "startup")
    if "startup_ready_s" in result:
        row("startup (command to sample model open)", f"{result['startup_ready_s']:.2f} s")
    row("peak RSS (app + bench process)", f"{result['peak_rss_mb']:.0f} MB", "peak RSS")

    m = result["machine"]
    head = (
        f"nnviz bench{' --quick' if result['quick'] else ''}: {m['cpus']} CPUs, "
        f"torch {m['torch']}, Python {m['python']}"
    )
    if "load_avg" in m:
        head += f", load average {m['load_avg'][0]:.2f}"
        if "load_avg_after" in m:
            head += f" (after: {m['load_avg_after'][0]:.2f})"
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [head, "", f"{'measure':<{w0}}  {'figure':>{w1}}  target     met"]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c}".rstrip() for a, b, c in rows]
    missed = [n for n, t in targets.items() if not t["met"]]
    lines += [
        "",
        "peak RSS is this process: the app plus the bare trainers (not the start-up children)",
        f"targets missed: {', '.join(missed)}" if missed else "all targets met",
    ]
    return "\n".join(lines)
