"""Shared fixtures: real bundled MNIST in small slices, and no network beyond loopback."""

from __future__ import annotations

import importlib.resources
import ipaddress
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def _is_loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Tests may talk to servers they start on 127.0.0.1, nothing else; no real cache either."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise OSError(f"test tried to reach {address!r}: tests never use the internet")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setenv("NNVIZ_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def small_mnist():
    """A few hundred real MNIST digits: 600 to train on, 200 validation, 500 test."""
    from nnviz.core.data import load_splits

    splits = load_splits("mnist", n_val=200, seed=0, limit=600)
    return splits


@pytest.fixture(autouse=True)
def _own_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Qt settings (layout, recent files, theme) go to a fresh folder per test."""
    folder = tmp_path_factory.mktemp("settings")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    try:
        from PySide6.QtCore import QSettings
    except ImportError:  # the headless lane
        return
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))


class FileServer:
    """A loopback HTTP server with Range support that can misbehave on request."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str | None]] = []  # (name, Range header)
        self.cut_half = False  # announce the full length, send half, hang up
        self.ignore_range = False  # answer Range requests with 200 and the whole file
        self.delay = 0.0  # seconds between 8 KiB writes
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = False  # so server_close() joins the handler threads
        self.httpd.owner = self
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output clean
        pass

    def do_GET(self):
        owner = self.server.owner
        name = self.path.lstrip("/")
        range_header = self.headers.get("Range")
        owner.requests.append((name, range_header))
        body = owner.files.get(name)
        if body is None:
            self.send_error(404)
            return
        size = len(body)
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and not owner.ignore_range:
            start = int(match[1])
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if owner.cut_half:
            body = body[: len(body) // 2]
        try:
            for i in range(0, len(body), 8192):
                self.wfile.write(body[i : i + 8192])
                self.wfile.flush()
                if owner.delay:
                    time.sleep(owner.delay)
        except OSError:
            pass  # the client hung up (a cancelled download)
        self.close_connection = True


@pytest.fixture
def file_server():
    """Start loopback file servers: ``file_server({"name": bytes})``; closed after the test."""
    servers = []

    def start(files: dict[str, bytes]) -> FileServer:
        servers.append(FileServer(files))
        return servers[-1]

    yield start
    for srv in servers:
        srv.close()


@pytest.fixture
def qtbot(qtbot):  # noqa: ANN001, ANN201
    """pytest-qt's bot, but a widget given to ``addWidget`` stays alive until the test's
    teardown has closed it. pytest-qt keeps only a weak reference: a shown top-level
    panel that a test held in a local lived on through reference cycles alone after the
    test returned, and a garbage collection set off by the allocations in its own first
    paint (pyqtgraph's ImageItem.render) deleted it mid-paint: a segfault in
    ImageItem.paint, in about half the CI runs, whenever the collector happened to run
    there."""
    kept = []
    add = qtbot.addWidget

    def add_widget(widget, **kwargs):  # noqa: ANN001, ANN003, ANN202
        kept.append(widget)
        add(widget, **kwargs)

    qtbot.addWidget = qtbot.add_widget = add_widget
    yield qtbot
    kept.clear()


@pytest.fixture(scope="module")
def data():
    """Real MNIST for the panel tests: 500 digits to train on, 100 validation, 500 test."""
    from nnviz.core.data import load_splits

    return load_splits("mnist", n_val=100, limit=500)


@pytest.fixture
def row_major_images():
    """Image panels expect row-major arrays, as the app sets at start-up."""
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major")


@pytest.fixture
def one_torch_thread():
    """As the app runs (app.py): on a shared two-core machine, more threads only wait."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _show_digit(session, data, index):  # noqa: ANN001
    image, label = data.test.images[index] / 255.0, int(data.test.labels[index])
    session.set_input(image, label, f"MNIST test #{index}")


@pytest.fixture
def show_digit():
    """Make test digit ``index`` the input: ``show_digit(session, data, index)``."""
    return _show_digit


@pytest.fixture
def open_session():
    """A Session as the app has one after File > Open: ``open_session(source, data,
    index=0)`` opens ``source`` (a path, a preset name or a loaded model), takes ``data``
    as MNIST and shows test digit ``index`` as the input (None: no input)."""
    from nnviz.core.modelfile import LoadedModel, load_model
    from nnviz.state import Session

    def open_(source, data, index=0):  # noqa: ANN001, ANN202
        s = Session()
        s.set_model(source if isinstance(source, LoadedModel) else load_model(source))
        s.set_data(data, "mnist")
        if index is not None:
            _show_digit(s, data, index)
        return s

    return open_


@pytest.fixture(scope="session")
def exported_lenet(tmp_path_factory):
    """The lenet sample exported with a dynamic batch, as a user's .pt2 file: its path.
    Opened, it is a foreign, view-only model."""
    import torch

    from nnviz.core.modelfile import load_model

    module = load_model(
        str(importlib.resources.files("nnviz.sample_models") / "lenet.nnviz")
    ).module
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(
        module, (torch.zeros(2, 1, 28, 28),), dynamic_shapes=({0: batch},)
    )
    path = tmp_path_factory.mktemp("export") / "lenet.pt2"
    torch.export.save(program, path)
    return str(path)


@pytest.fixture
def train_steps():
    """Train ``steps`` real steps, statistics after each, then stop as the Stop button does:
    ``train_steps(model, data, steps, history=None, **config)``; returns the Trainer, its
    events waiting in ``poll()``."""
    from nnviz.core.training import TrainConfig, Trainer

    def train(model, data, steps, history=None, **config):  # noqa: ANN001, ANN202
        cfg = TrainConfig(**{"batch_size": 32, "epochs": 1, "stats_interval_s": 1e-9, **config})
        trainer = Trainer(model, data, cfg, history=history)
        run = trainer.steps()
        for _ in range(steps):
            next(run)
        trainer.stop()
        for _ in run:
            pass
        return trainer

    return train


@pytest.fixture
def train_and_publish():
    """Train the session's model in this thread and publish every ``every`` steps as the
    runner would: ``train_and_publish(session, data, steps, every=5)``; returns the
    published weights by step."""
    from nnviz.core.training import TrainConfig, Trainer

    def train(session, data, steps, every=5):  # noqa: ANN001, ANN202
        trainer = Trainer(
            session.train_model,
            data,
            TrainConfig(batch_size=32, epochs=10, snapshot_interval_s=0.0),
            history=session.history,
        )
        start, published = session.history.last_step, {}
        for report in trainer.steps():
            if (report.step - start) % every == 0:
                snapshot = trainer.latest_snapshot()
                session.publish(snapshot, trainer.poll())
                published[snapshot.step] = snapshot.weights
            if report.step - start >= steps:
                break
        return published

    return train


@pytest.fixture
def show_panel(qtbot):
    """Put a panel on screen at a dock's size and draw it once; closed after the test."""
    panels = []

    def show(panel_type, session, size=(740, 400)):  # noqa: ANN001, ANN202
        panel = panel_type(session)
        qtbot.addWidget(panel)
        panel.resize(*size)
        panel.show()
        qtbot.waitExposed(panel)
        assert panel.refresh()  # a new panel has everything still to draw
        panels.append(panel)
        return panel

    yield show
    for panel in panels:
        panel.close_panel()


@pytest.fixture
def window(qtbot, monkeypatch):
    """The app's window on screen over the lenet sample and 800 real digits (batch 16,
    never finishing), never asking to save; training stopped after the test."""
    from nnviz.core.data import load_splits
    from nnviz.qt.app import create_window

    _, win = create_window()
    qtbot.addWidget(win)
    win.session.set_data(load_splits("mnist", n_val=100, limit=800), "mnist")
    win.session.config.epochs = 1000
    win.session.config.batch_size = 16
    monkeypatch.setattr(win.documents, "ask_to_save", lambda: "discard")
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.runner.stop()
