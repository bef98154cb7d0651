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


def default_model_path() -> str:
    """The trained lenet sample shipped with the package (the preset if it is missing)."""
    from importlib.resources import files

    sample = files("nnviz.sample_models") / "lenet.nnviz"
    return str(sample) if sample.is_file() else "lenet"


def create_window(  # noqa: ANN201 - Qt types are imported lazily
    model: str | None = None, *, remember_layout: bool = True, open_model: bool = True
):
    """A QApplication (reused if one exists) and a main window with a model loaded.

    With ``open_model=False`` the window comes back empty and ``open_first_model``
    fills it: ``run_app`` shows the window first and opens the model right after.
    """
    import pyqtgraph as pg
    import torch
    from PySide6.QtWidgets import QApplication

    from nnviz.qt.main_window import MainWindow, app_settings
    from nnviz.qt.theme import apply_theme

    # The views run small forward passes on the GUI thread. With torch's default thread
    # pool those passes spun against the training thread for 50-100 ms on two cores;
    # one thread keeps each pass around a millisecond.
    torch.set_num_threads(1)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("nnviz")
    app.setOrganizationName("nnviz")
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    apply_theme(app, str(app_settings().value("theme", "system")))
    window = MainWindow(remember_layout=remember_layout)
    window.documents.update_recent_menu()
    if open_model:
        open_first_model(window, model)
    return app, window


def open_first_model(window, model: str | None) -> None:  # noqa: ANN001
    """The model asked for on the command line, else the lenet sample; a bad file is a
    message and a fresh lenet, so the app always opens."""
    from nnviz.core.modelfile import load_model

    try:
        loaded = load_model(model or default_model_path())
    except NnvizError as exc:
        loaded = load_model("lenet")
        window.show_error(f"{exc}\nOpened a fresh lenet instead.")
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
    """Make torch's first optimizer in the background: it imports torch._dynamo and sympy
    (about 800 modules, 1-2 s), which would otherwise freeze the window at the first Train."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


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

    With the environment variable ``NNVIZ_EXIT_WHEN_SHOWN`` set, print ``nnviz-shown``
    once the shown window has had its first event-loop turn, ``nnviz-ready`` once the
    model is open in it, and exit 0 (``nnviz bench`` times start-up with it).
    """
    from PySide6.QtCore import QTimer

    # A shorter GIL switch interval keeps the window smooth beside the training thread
    # (PITFALLS.md: heartbeat p99 5.4 ms -> 1.3 ms).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    # The window goes on screen first; the model, the data and the rest fill it on the
    # next turns of the event loop (building every panel for a model takes ~0.15 s).
    app, window = create_window(model, remember_layout=screenshot is None, open_model=False)
    window.show()
    if os.environ.get("NNVIZ_EXIT_WHEN_SHOWN"):
        # For `nnviz bench` (start-up time): say when the shown window has had its first
        # event-loop turn, and again once the model is open in it; then exit 0.
        def ready() -> None:
            open_first_model(window, model)
            print("nnviz-ready", flush=True)
            window.session.set_dirty(False)
            window.close()
            app.exit(0)

        QTimer.singleShot(0, lambda: print("nnviz-shown", flush=True))
        QTimer.singleShot(0, ready)
        code = app.exec()
        close_down(window)
        return code
    warm_up: list[threading.Thread] = []
    QTimer.singleShot(0, lambda: open_first_model(window, model))
    QTimer.singleShot(0, lambda: warm_up.append(finish_start_up(window)))
    if screenshot:

        def grab() -> None:
            window.refresh_panels()
            ok = window.grab().save(screenshot)
            if not ok:
                print(f"nnviz: error: cannot write {screenshot}", file=sys.stderr)
            window.session.set_dirty(False)
            window.close()
            app.exit(0 if ok else 1)

        QTimer.singleShot(800, grab)
    code = app.exec()
    for thread in warm_up:  # never leave an import running into interpreter shutdown
        thread.join(10)
    close_down(window)
    return code


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
