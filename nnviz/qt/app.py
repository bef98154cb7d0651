"""Start the desktop app: QApplication, the main window, the default model and data."""

from __future__ import annotations

import gc
import os
import sys
import threading

from nnviz.core.errors import NnvizError

# How often the GIL may pass between threads: shorter than Python's 5 ms default so the
# window gets its turn beside the training thread, long enough that the trainer's own
# Python (a large share of a small MLP's step) is not interrupted all the time.
GIL_SWITCH_INTERVAL_S = 0.002
# Set (to anything), the app starts training as soon as it is up: the crash-recovery
# test uses it to have a real app process training when it kills it.
TRAIN_AT_START_ENV = "NNVIZ_TRAIN_AT_START"


def default_model_path() -> str:
    """The trained lenet sample shipped with the package (the preset if it is missing)."""
    from importlib.resources import files

    sample = files("nnviz.sample_models") / "lenet.nnviz"
    return str(sample) if sample.is_file() else "lenet"


def create_window(  # noqa: ANN201 - Qt types are imported lazily
    model: str | None = None, *, remember_layout: bool = True, open_model: bool = True
):
    """A QApplication (reused if one exists) and a main window with a model loaded.

    With ``open_model=False`` the window comes back without a model and
    ``open_first_model`` fills it.
    """
    app, window = create_shell(remember_layout=remember_layout)
    attach(window)
    if open_model:
        open_first_model(window, model)
    return app, window


def create_shell(*, remember_layout: bool = True):  # noqa: ANN201
    """The QApplication and the bare main window: Qt only, no torch (a few tenths of a second)."""
    from PySide6.QtWidgets import QApplication

    from nnviz.qt.main_window import MainWindow, app_settings
    from nnviz.qt.theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("nnviz")
    app.setOrganizationName("nnviz")
    apply_theme(app, str(app_settings().value("theme", "system")))
    return app, MainWindow(remember_layout=remember_layout)


def import_torch_side() -> None:
    """torch and nnviz's Qt-free modules: the slow part of start-up (1.1 s to 2.7 s on
    our two-core machines), which ``run_app`` does on a background thread while the
    window is on screen."""
    import torch  # noqa: F401

    import nnviz.core.modelfile
    import nnviz.state  # noqa: F401


def attach(window) -> None:  # noqa: ANN001
    """Give the shown window its Session and panels (on the GUI thread)."""
    import pyqtgraph as pg
    import torch

    # The views run small forward passes on the GUI thread. With torch's default thread
    # pool those passes spun against the training thread for 50-100 ms on two cores;
    # one thread keeps each pass around a millisecond.
    torch.set_num_threads(1)
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    window.attach()


def open_first_model(window, model: str | None) -> None:  # noqa: ANN001
    """The model asked for on the command line, else the lenet sample; a bad file is a
    message and a fresh lenet, so the app always opens."""
    from nnviz.core.modelfile import load_model

    try:
        loaded = load_model(model or default_model_path())
    except NnvizError as exc:
        loaded = load_model("lenet")
        window.session.set_model(loaded)
        window.show_error(f"{exc}\nOpened a fresh lenet instead.")  # after: a new model clears
        return
    window.session.set_model(loaded)


def load_default_data(window) -> None:  # noqa: ANN001
    """Bundled MNIST (a fraction of a second); errors become a message."""
    from nnviz.core.data import load_splits, release_file_cache

    try:
        window.session.set_data(load_splits("mnist"), "mnist")
    except NnvizError as exc:
        window.show_error(str(exc))
    release_file_cache()  # the splits hold their own copies


def _warm_up_training() -> None:
    """Import the training code and take one optimizer step in the background, so the
    first Train does not wait for them (torch's compiler, which a plain first optimizer
    would import with sympy, stays out: see nnviz.core.lean_optim)."""
    import torch

    from nnviz.core import lean_optim, training

    weight = torch.zeros(1, requires_grad=True)
    optimizer = training.make_optimizer(training.TrainConfig(), [weight])
    weight.sum().backward()
    lean_optim.step(optimizer)


def finish_start_up(window) -> threading.Thread:  # noqa: ANN001
    """What can wait until the window is on screen: data, a GC freeze, the optimizer import."""
    load_default_data(window)
    # Start-up made ~200k objects that never die; freezing them keeps full collections
    # (90 ms each) from stalling the GUI.
    gc.collect()
    gc.freeze()
    warm_up = threading.Thread(target=_warm_up_training, name="nnviz-warm-up", daemon=True)
    warm_up.start()
    return warm_up


def run_app(model: str | None = None, screenshot: str | None = None) -> int:
    """Open the main window; with ``screenshot``, render it to that PNG and exit.

    The window goes on screen first, with Qt alone; torch imports on a background thread
    meanwhile, and the panels, the model and the data fill the window once it is in.

    With the environment variable ``NNVIZ_EXIT_WHEN_SHOWN`` set, print ``nnviz-shown``
    once the shown window has had its first event-loop turn, ``nnviz-ready`` once the
    model is open in it, and exit 0 (``nnviz bench`` times start-up with it).

    Otherwise unsaved training is autosaved, and work a crashed app left behind is
    offered back once the window is up (``keep_unsaved_work``).
    """
    from PySide6.QtCore import QTimer

    # A shorter GIL switch interval keeps the window smooth beside the training thread
    # (a 10 ms heartbeat's p99 went from 5.4 to 1.3 ms at 1 ms), and beside the torch import here.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app, window = create_shell(remember_layout=screenshot is None)
    window.show()
    timing = bool(os.environ.get("NNVIZ_EXIT_WHEN_SHOWN"))
    if timing:
        QTimer.singleShot(0, lambda: print("nnviz-shown", flush=True))
    failure: list[BaseException] = []

    def import_in_background() -> None:
        try:
            import_torch_side()
        except BaseException as exc:  # noqa: BLE001 - reported on the GUI thread
            failure.append(exc)

    importer = threading.Thread(target=import_in_background, name="nnviz-import", daemon=True)
    threads = [importer]
    poll = QTimer(window)
    poll.setInterval(15)

    def when_imported() -> None:
        if importer.is_alive():
            return
        poll.stop()
        if failure:
            print(f"nnviz: error: cannot start: {failure[0]}", file=sys.stderr)
            app.exit(1)
            return
        # Building twenty panels holds the GUI thread for about a second: say so first.
        window.loading.setText("Building the views…")
        window.loading.repaint()
        attach(window)
        open_first_model(window, model)
        if timing:
            print("nnviz-ready", flush=True)
            window.session.set_dirty(False)
            window.close()
            app.exit(0)
            return
        threads.append(finish_start_up(window))
        if screenshot:
            QTimer.singleShot(800, lambda: _save_screenshot(app, window, screenshot))
            return
        keep_unsaved_work(window)
        if os.environ.get(TRAIN_AT_START_ENV):
            window.train()

    poll.timeout.connect(when_imported)
    importer.start()
    poll.start()
    code = app.exec()
    for thread in threads:  # never leave an import running into interpreter shutdown
        thread.join(10)
    close_down(window)
    return code


def keep_unsaved_work(window) -> None:  # noqa: ANN001
    """Autosave unsaved training from now on, and offer back what a crashed app left
    (once the window is up with its model and data). Not in screenshot or timing runs."""
    from nnviz.qt.autosave import offer_recovery

    window.documents.autosave.start()
    offer_recovery(window)


def _save_screenshot(app, window, path: str) -> None:  # noqa: ANN001
    window.refresh_panels()
    ok = window.grab().save(path)
    if not ok:
        print(f"nnviz: error: cannot write {path}", file=sys.stderr)
    window.session.set_dirty(False)
    window.close()
    app.exit(0 if ok else 1)


def close_down(window) -> None:  # noqa: ANN001
    """Destroy the window and its pyqtgraph items while the QApplication still exists.

    Left to interpreter shutdown (they sit in reference cycles that ``gc.freeze`` put
    out of the collector's reach), they can be destroyed after the application, which
    crashes the process on its way out.
    """
    import shiboken6

    gc.unfreeze()
    if shiboken6.isValid(window):
        shiboken6.delete(window)
    gc.collect()
