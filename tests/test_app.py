"""The desktop app, offscreen, with real widgets, real MNIST and a real training thread."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from nnviz.core.data import load_splits
from nnviz.core.models import build_model, get_spec
from nnviz.state import COMPLETED, PAUSED, RUNNING, STOPPED


def _steps(win):
    snap = win.session.snapshot
    return snap.step if snap is not None else win.session.history.last_step


def test_opens_on_the_lenet_sample_with_docks_in_the_view_menu(window):
    assert window.session.loaded.display_name == "lenet.nnviz"
    assert "lenet.nnviz" in window.windowTitle()
    assert window.session.trainable
    view_entries = {a.text() for a in window.view_menu.actions()}
    for dock in window.docks.values():
        assert dock.windowTitle() in view_entries
        assert dock.features() & dock.DockWidgetFeature.DockWidgetClosable
        assert dock.features() & dock.DockWidgetFeature.DockWidgetFloatable


def test_train_pause_step_resume_stop(window, qtbot):
    start = window.session.history.last_step
    window.train()
    assert window.session.status == RUNNING
    qtbot.waitUntil(lambda: _steps(window) > start + 5, timeout=10000)
    window.pause()
    qtbot.waitUntil(lambda: window.session.status == PAUSED, timeout=5000)
    paused_at = _steps(window)
    qtbot.wait(150)
    assert _steps(window) == paused_at
    window.step()
    qtbot.waitUntil(lambda: _steps(window) == paused_at + 1, timeout=5000)
    window.train()  # resume
    qtbot.waitUntil(lambda: _steps(window) > paused_at + 5, timeout=10000)
    window.stop_training()
    assert not window.runner.active
    assert window.session.status == STOPPED
    loss = window.panels["loss"]
    window.refresh_panels()
    assert loss.point_count() == len(window.session.history.step)
    assert "[*]" in window.windowTitle() and window.isWindowModified()


def test_live_learning_rate_change_is_applied_and_marked(window, qtbot):
    window.train()
    qtbot.waitUntil(lambda: _steps(window) > 3, timeout=10000)
    window.panels["training"].lr.setValue(0.0123)
    qtbot.waitUntil(
        lambda: any(c["name"] == "lr" for c in window.session.history.changes), timeout=5000
    )
    window.stop_training()
    change = [c for c in window.session.history.changes if c["name"] == "lr"][-1]
    assert change["value"] == pytest.approx(0.0123)
    assert window.runner.trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.0123)


def test_views_use_snapshot_weights_not_the_training_module(window, qtbot):
    window.train()
    qtbot.waitUntil(lambda: _steps(window) > 10, timeout=10000)
    window.pause()
    qtbot.waitUntil(lambda: window.session.status == PAUSED, timeout=5000)
    window.runner.poll()
    s = window.session
    assert s.view_model is not s.train_model
    snap = window.runner.trainer.latest_snapshot()
    for key, value in s.view_model.state_dict().items():
        assert torch.equal(value, torch.from_numpy(snap.weights[key].copy()))
    window.stop_training()


def test_closing_while_training_stops_the_thread_quickly(window, qtbot):
    window.train()
    qtbot.waitUntil(lambda: _steps(window) > 3, timeout=10000)
    thread = window.runner._thread
    started = time.perf_counter()
    assert window.close()
    assert time.perf_counter() - started < 2.0
    assert thread.isFinished()
    assert not window.runner.active


def test_closing_a_dirty_model_can_save_it_or_cancel(window, qtbot, monkeypatch, tmp_path):
    window.step()
    qtbot.waitUntil(lambda: window.session.dirty, timeout=5000)
    monkeypatch.setattr(window.documents, "ask_to_save", lambda: "cancel")
    assert not window.close()
    assert window.isVisible()
    window.session.path = tmp_path / "kept.nnviz"
    monkeypatch.setattr(window.documents, "ask_to_save", lambda: "save")
    assert window.close()
    assert (tmp_path / "kept.nnviz").is_file()


def test_bad_model_file_shows_an_error_and_the_app_still_works(window, qtbot, tmp_path):
    bad = tmp_path / "broken.pt2"
    bad.write_bytes(b"PK\x03\x04 this is not a real archive")
    assert not window.documents.open_path(str(bad))
    assert "broken.pt2" in window.banner.text
    assert window.session.loaded.display_name == "lenet.nnviz"
    window.step()
    qtbot.waitUntil(
        lambda: _steps(window) > window.session.history.epochs[-1]["step"], timeout=5000
    )


def test_an_error_message_takes_room_in_the_window_until_dismissed(window, qtbot):
    window.show_error("something went wrong")
    qtbot.waitUntil(lambda: window.banner.height() > 10, timeout=2000)
    assert window.banner.visibleRegion().boundingRect().height() > 10  # not squeezed to 0
    window.banner.hide()
    qtbot.waitUntil(lambda: window.banner.height() == 0 or not window.banner.isVisible())
    assert window.centralWidget().height() == 0


def test_a_long_error_is_whole_across_the_top_of_the_window(window, qtbot):
    window.showNormal()
    window.resize(1200, 800)
    long = " ".join(["The model and the data do not fit each other."] * 8)
    window.show_error(f"{long}\nSecond line.\nThird line.")
    banner, label = window.banner, window.banner.label
    qtbot.waitUntil(lambda: banner.height() > 3 * label.fontMetrics().lineSpacing())
    # Every line of the wrapped text has its room: nothing cut after a line and a half.
    assert label.height() >= label.heightForWidth(label.width())
    top = banner.mapTo(window, banner.rect().bottomLeft()).y()
    docks = [d for d in window.docks.values() if not d.visibleRegion().isEmpty()]
    assert docks
    assert all(d.geometry().top() >= top for d in docks), "above every dock"
    assert banner.width() >= window.width() - 2, "across the window"


def test_an_error_goes_when_the_model_or_the_data_is_replaced(window, qtbot):
    window.show_error("cannot open broken.pt2")
    assert window.banner.text
    window.session.set_data(window.session.data, "mnist")
    assert not window.banner.text
    window.show_error("something about the model")
    window.documents.new_from_preset("mlp")
    assert not window.banner.text


def test_a_start_up_error_stays_when_the_first_data_arrives(qtbot, tmp_path):
    from nnviz.qt.app import create_window, load_default_data, open_first_model

    broken = tmp_path / "broken.nnviz"
    broken.write_bytes(b"not a model")
    _, win = create_window(open_model=False)
    qtbot.addWidget(win)
    open_first_model(win, str(broken))
    assert "Opened a fresh lenet instead" in win.banner.label.text()
    assert win.session.data is None
    win.show()
    load_default_data(win)
    assert "broken.nnviz" in win.banner.text
    win.session.set_dirty(False)


def test_the_window_shows_before_torch_is_imported(tmp_path):
    # The shell is what a person sees within a fraction of a second of `nnviz`; torch
    # (over a second to import) comes after it is on screen.
    script = (
        "import sys\n"
        "from nnviz.qt.app import create_shell\n"
        "app, window = create_shell(remember_layout=False)\n"
        "window.show()\n"
        "app.processEvents()\n"
        "assert window.isVisible()\n"
        "assert not window.act_train.isEnabled()\n"
        "print(sorted(m for m in ('torch', 'pyqtgraph', 'numpy') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_save_and_reopen_keeps_weights_and_history(window, qtbot, tmp_path):
    window.documents.new_from_preset("mlp-3b1b")
    window.train()
    qtbot.waitUntil(lambda: _steps(window) > 20, timeout=10000)
    window.stop_training()
    trained = {k: v.clone() for k, v in window.session.view_model.state_dict().items()}
    path = tmp_path / "mine.nnviz"
    assert window.documents.save_to(path)
    assert not window.isWindowModified() and "mine.nnviz" in window.windowTitle()
    steps = window.session.history.last_step
    window.documents.new_from_preset("lenet")
    assert window.documents.open_path(str(path))
    assert window.session.history.last_step == steps
    for key, value in window.session.view_model.state_dict().items():
        assert torch.equal(value, trained[key])
    assert str(path.resolve()) in window.documents.recent_files()


def test_exported_model_opens_view_only(window, tmp_path):
    model = build_model(get_spec("lenet"), seed=1).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (torch.zeros(2, 1, 28, 28),), dynamic_shapes=({0: batch},))
    path = tmp_path / "exported.pt2"
    torch.export.save(program, path)
    assert window.documents.open_path(str(path))
    assert not window.session.trainable
    assert not window.act_train.isEnabled()
    window.train()
    assert "inspected but not trained" in window.banner.text


def test_dropping_a_model_file_opens_it(window, tmp_path):
    path = tmp_path / "dropped.nnviz"
    window.documents.new_from_preset("mlp")
    window.documents.save_to(path)
    window.documents.new_from_preset("lenet")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = window.rect().center()
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(pos, *args)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(window, QDropEvent(QPointF(pos), *args))
    assert window.session.loaded.display_name == "dropped.nnviz"


def test_dropping_an_image_on_the_window_draws_it_on_the_canvas(window, qtbot, tmp_path):
    from PIL import Image

    test = load_splits("mnist", n_val=100, limit=800).test
    label = int(test.labels[0])
    path = tmp_path / "digit.png"
    Image.fromarray(test.images[0]).save(path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = window.rect().center()
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, QDragEnterEvent(pos, *args))
    QApplication.sendEvent(window, QDropEvent(QPointF(pos), *args))
    assert window.session.loaded.display_name == "lenet.nnviz"  # not taken for a model
    # the canvas hands its drawing to the views on the next frame
    qtbot.waitUntil(lambda: "digit.png" in window.session.current_input.description, timeout=3000)
    assert int(window.session.probabilities().argmax()) == label


def test_restore_all_switched_off_units_from_the_model_menu(window):
    before = window.session.probabilities().copy()
    assert not window.act_restore_units.isEnabled()
    window.session.switch_off("fc1", 3)
    window.session.clamp("conv1", 0, 2.0)
    assert window.act_restore_units.isEnabled()
    assert not (window.session.probabilities() == before).all()
    window.act_restore_units.trigger()
    assert not window.session.interventions
    assert (window.session.probabilities() == before).all()
    assert not window.act_restore_units.isEnabled()


def test_layout_is_remembered_and_can_be_reset(window, qtbot):
    from nnviz.qt.app import create_window

    window.docks["loss"].setVisible(False)
    window.close()
    _, again = create_window()
    qtbot.addWidget(again)
    again.show()
    # Restored once the window has settled with its model open (the next turn of the loop).
    qtbot.waitUntil(lambda: not again.docks["loss"].isVisible())
    again.reset_layout()
    assert again.docks["loss"].isVisible()
    again.close()


def test_training_to_the_end_completes(window, qtbot):
    window.session.config.epochs = 1
    window.session.config.batch_size = 64
    window.documents.new_from_preset("mlp-3b1b")
    window.session.config.epochs = 1
    window.train()
    qtbot.waitUntil(lambda: window.session.status == COMPLETED, timeout=20000)
    assert window.session.history.epochs[-1]["val_accuracy"] is not None


def test_screenshot_command(tmp_path):
    out = tmp_path / "shot.png"
    result = subprocess.run(
        [sys.executable, "-m", "nnviz", "gui", "--screenshot", str(out)],
        cwd=tmp_path,  # like a user anywhere: not the checkout, whose nnviz/ would shadow
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    from PIL import Image

    with Image.open(out) as image:
        assert image.size == (1600, 1000)
        assert len(image.convert("L").getcolors(maxcolors=1 << 20)) > 10  # not a blank frame


def _fake_fashion(file_server, monkeypatch, delay=0.0):
    """Serve stand-ins under the Fashion-MNIST names on loopback: the bundled MNIST files."""
    import hashlib
    from importlib.resources import files

    from nnviz.core import download

    mnist = files("nnviz.resources") / "mnist"
    content = {
        "images": (mnist / "t10k-images-idx3-ubyte.gz").read_bytes(),
        "labels": (mnist / "t10k-labels-idx1-ubyte.gz").read_bytes(),
    }
    server = file_server({})
    server.delay = delay
    remote = []
    for f in download.FASHION_MNIST_FILES:
        body = content["images" if "images" in f.name else "labels"]
        server.files[f.name] = body
        remote.append(
            download.RemoteFile(
                f.name, hashlib.md5(body).hexdigest(), (server.url(f.name),), f.dataset, len(body)
            )
        )
    monkeypatch.setattr(download, "FASHION_MNIST_FILES", tuple(remote))
    return server


def test_fashion_mnist_downloads_with_a_progress_dialog(window, qtbot, file_server, monkeypatch):
    _fake_fashion(file_server, monkeypatch)
    window.documents.use_data("fashion-mnist")
    qtbot.waitUntil(lambda: window.session.data_source == "fashion-mnist", timeout=20000)
    assert window.session.data.classes[0] == "T-shirt/top"
    checked = [a.data() for a in window.data_group.actions() if a.isChecked()]
    assert checked == ["fashion-mnist"]


def test_cancelled_download_keeps_the_data_and_says_so(window, qtbot, file_server, monkeypatch):
    from PySide6.QtWidgets import QProgressDialog, QPushButton

    _fake_fashion(file_server, monkeypatch, delay=0.02)
    window.documents.use_data("fashion-mnist")
    qtbot.waitUntil(lambda: window.findChild(QProgressDialog) is not None, timeout=5000)
    dialog = window.findChild(QProgressDialog)
    cancel = next(b for b in dialog.findChildren(QPushButton) if b.text() == "Cancel")
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.documents._download is None, timeout=10000)
    assert window.session.data_source == "mnist"
    assert "cancelled" in window.statusBar().currentMessage().lower()


def test_nan_loss_is_a_message_and_the_app_goes_on(window, qtbot):
    window.documents.new_from_preset("mlp")
    panel = window.panels["training"]
    panel.optimizer.setCurrentText("sgd")
    panel.lr.setValue(10.0)
    window.session.config.momentum = 0.0
    window.session.config.lr = 1e12  # beyond the spin box, to be sure it blows up
    window.train()
    qtbot.waitUntil(lambda: window.session.status == "failed", timeout=20000)
    assert "try a lower learning rate" in window.banner.text
    for value in window.session.view_model.state_dict().values():
        assert torch.isfinite(value).all()
    window.session.config.lr = 0.01
    window.step()  # still usable
    qtbot.waitUntil(lambda: window.session.status == "paused", timeout=5000)


def test_dark_theme_toggle(window):
    from PySide6.QtGui import QPalette

    window.set_theme("dark")
    dark = QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness()
    window.set_theme("light")
    light = QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness()
    assert dark < 100 < light


def test_watchable_pace_from_the_panel(window, qtbot):
    panel = window.panels["training"]
    panel.fast.setChecked(False)
    panel.pace.setValue(4)  # 20 steps/s
    assert window.session.config.steps_per_second == 20
    start = window.session.history.last_step
    window.train()
    qtbot.wait(1000)
    window.stop_training()
    assert 8 <= window.session.history.last_step - start <= 30


def test_custom_architecture_from_the_model_menu(window, qtbot):
    from PySide6.QtCore import QTimer

    from nnviz.qt.architecture_dialog import ArchitectureDialog

    seen = []

    def build_in_dialog():
        dialog = QApplication.activeModalWidget()
        seen.append(dialog)
        index = dialog.preset_combo.findData("mlp-3b1b")
        dialog.preset_combo.setCurrentIndex(index)
        dialog.preset_combo.activated.emit(index)
        dialog.accept()

    QTimer.singleShot(200, build_in_dialog)
    window.act_custom.trigger()
    assert isinstance(seen[0], ArchitectureDialog)
    s = window.session
    assert s.loaded.kind == "spec" and s.trainable
    assert sum(p.numel() for p in s.view_model.parameters()) == 13002
    window.step()
    qtbot.waitUntil(lambda: s.history.last_step == 1, timeout=5000)


def test_a_panel_in_a_dock_that_scrolls_still_follows_and_one_behind_a_tab_waits(
    window, qtbot, show_digit
):
    """A panel its children cover, whose last rows its dock scrolls out of sight, is on
    screen and redraws; a panel behind another tab is not."""
    window.showNormal()
    window.resize(1366, 740)
    window.show_error("a message three lines tall\nsecond\nthird")  # the docks get shorter
    panel, scroll = window.panels["activations"], window.docks["activations"].widget()
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().maximum() > 0, timeout=3000)
    assert panel.is_shown()  # on screen, though Qt's visible region of it may be empty
    behind = window.panels["feature_maps"]  # the Activations tab is in front of it
    assert behind.isVisible() is False or not behind.is_shown()
    drawn = panel.last_redraw
    show_digit(window.session, window.session.data, 3)
    qtbot.waitUntil(lambda: panel.last_redraw > drawn, timeout=3000)
