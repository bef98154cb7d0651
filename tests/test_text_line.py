"""The painted line of text the Draw and Input panels show their prediction in."""

from __future__ import annotations

from PySide6.QtGui import QColor

from nnviz.qt.panels.text_line import TextLine

RED = "#d03030"


def _inked_columns(line: TextLine, colour: QColor | None = None) -> list[int]:
    """Columns holding text pixels (of ``colour``, if given)."""
    image = line.grab().toImage()
    background = image.pixelColor(0, 0)
    columns = []
    for x in range(image.width()):
        for y in range(image.height()):
            pixel = image.pixelColor(x, y)
            if colour is None and pixel != background or pixel == colour:
                columns.append(x)
                break
    return columns


def test_runs_are_painted_centred_in_their_colours(qtbot):
    line = TextLine(centred=True)
    qtbot.addWidget(line)
    line.resize(400, line.height())
    line.show()
    line.setText(f"Prediction: <b>7</b> (98.0%) <span style='color:{RED}'>wrong</span>")
    assert [words for words, _, _ in line.runs()] == ["Prediction: ", "7", " (98.0%) ", "wrong"]
    inked = _inked_columns(line)
    left, right = inked[0], 400 - 1 - inked[-1]
    assert abs(left - right) <= 3  # centred
    red = _inked_columns(line, QColor(RED))
    assert red and red[0] > inked[-1] - 60  # the coloured run is the last word
    # A new text of the same length repaints in place: the old one is gone.
    line.setText("Prediction: <b>1</b> (50.0%)")
    assert not _inked_columns(line, QColor(RED))


def test_a_line_too_long_for_its_width_is_cut_with_an_ellipsis(qtbot):
    line = TextLine()
    qtbot.addWidget(line)
    line.resize(120, line.height())
    line.show()
    line.setText("<b>a very long prediction</b> that cannot fit in a narrow dock at all")
    inked = _inked_columns(line)
    assert inked[0] < 4 and 100 < inked[-1] < 120  # from the left edge to the right one
