"""The status bar and the news the window takes from a run, on the real window."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject

from nnviz.qt.runner import FLAT_OUT_POLL_S


class _Counter(QObject):
    def __init__(self, kind: QEvent.Type) -> None:
        super().__init__()
        self.kind, self.count = kind, 0

    def eventFilter(self, watched, event):  # noqa: N802, ANN001, ANN201
        if event.type() == self.kind:
            self.count += 1
        return False


def test_the_figures_change_without_relaying_out_the_bar(window, qtbot):
    status = window.status
    window.train()
    qtbot.waitUntil(lambda: "step" in status.position.text(), timeout=10000)
    status.clearMessage()  # "Training running" would time out and relay the bar out
    qtbot.wait(50)
    layouts = _Counter(QEvent.Type.LayoutRequest)
    status.installEventFilter(layouts)
    shown = status.position.text()
    qtbot.waitUntil(lambda: status.position.text() != shown, timeout=5000)
    qtbot.wait(600)  # a few more updates (4 a second)
    assert status.loss.text().startswith("loss ") and status.speed.text().endswith("samples/s")
    assert layouts.count == 0  # fixed-width fields: new text repaints the field alone
    # Each field whole, inside the bar, none over another.
    fields = [status.position, status.progress, status.loss, status.val, status.speed]
    boxes = sorted((f.geometry() for f in [*fields, status.eta]), key=lambda r: r.left())
    assert all(status.rect().contains(box) for box in boxes)
    assert all(a.right() < b.left() for a, b in zip(boxes, boxes[1:], strict=False))
    assert status.position.width() >= status.position.minimumWidth() > 100
    window.pause()


def test_news_is_taken_ten_times_a_second_while_training_runs_flat_out(window, qtbot):
    runner = window.runner
    polls = []
    real_poll = runner.poll
    runner.poll = lambda: (polls.append(1), real_poll())[1]
    window.train()
    qtbot.waitUntil(lambda: runner.flat_out, timeout=10000)
    polls.clear()
    qtbot.wait(1000)
    assert 3 <= len(polls) <= 1 / FLAT_OUT_POLL_S + 2
    runner.set_pace(20)  # a watchable pace: the news of every step, up to 30 times a second
    qtbot.waitUntil(lambda: not runner.flat_out, timeout=5000)
    polls.clear()
    qtbot.wait(1000)
    assert len(polls) > 1 / FLAT_OUT_POLL_S + 2
    window.pause()


def test_a_long_passing_message_is_cut_with_an_ellipsis_before_the_figures(window, qtbot):
    status = window.status
    window.showNormal()
    window.resize(1600, 900)  # room for a message left of the figures
    qtbot.waitUntil(lambda: status.position.x() > 300)
    long = "lenet.nnviz is a sample and opens read-only: Save asks where to keep it " * 4
    status.showMessage(long)
    assert status.currentMessage() == long  # kept whole; drawn cut
    shown = status.message_shown()
    assert shown.endswith("…") and len(shown) < len(long)
    assert status.fontMetrics().horizontalAdvance(shown) < status.position.x()
    status.showMessage("Saved")
    assert status.message_shown() == "Saved"
    # Drawn by the bar itself, left of the first figure.
    image = status.grab().toImage()
    text = status.palette().color(status.foregroundRole())
    assert any(
        image.pixelColor(x, y) == text
        for x in range(status.position.x())
        for y in range(image.height())
    )
