"""A line of text with bold and coloured parts, painted so that new text costs no layout.

Views that change a caption at every mouse move (the Draw panel's prediction, the Input
panel's lines) use it instead of a QLabel.
"""

from __future__ import annotations

import re
from html import unescape

from PySide6.QtCore import QEvent, QPointF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPaintEvent,
    QPalette,
    QStaticText,
)
from PySide6.QtWidgets import QSizePolicy, QWidget


class TextLine(QWidget):
    """One line of text with <b>bold</b> and <span style='color:#rrggbb'>coloured</span>
    parts, painted: a new text repaints it and nothing else.

    A QLabel asks its layout to recompute on every new text; mid-stroke the prediction
    changes at every move, and those requests climbed to the main window and repainted
    whole docks (the whole window, from the Input panel). This line keeps a constant
    size and elides what does not fit.
    """

    _TAG = re.compile(r"(<b>|</b>|<span style=['\"]color:\s*(#[0-9a-fA-F]{6})['\"]>|</span>)")

    def __init__(self, parent: QWidget | None = None, *, centred: bool = False) -> None:
        super().__init__(parent)
        self._text = ""
        self.centred = centred
        self._laid_out: dict[tuple[str, bool], QStaticText] = {}  # runs, laid out once
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        # It paints its whole rectangle: a new text repaints this line, not the panel
        # beneath it too.
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._fit_height()

    def _fit_height(self) -> None:
        self.setFixedHeight(self.fontMetrics().lineSpacing() + 4)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt)
        if event.type() == QEvent.Type.FontChange:
            self._laid_out.clear()
            self._fit_height()
        super().changeEvent(event)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802 - QLabel's name, as callers expect
        if text != self._text:
            self._text = text
            self.update()

    def clear(self) -> None:
        self.setText("")

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(200, self.height())

    def runs(self) -> list[tuple[str, bool, QColor | None]]:
        """The text as (words, bold, colour or None) runs, tags gone, entities decoded."""
        runs, bold, colours = [], False, []
        at = 0
        for match in self._TAG.finditer(self._text):
            if match.start() > at:
                runs.append(
                    (
                        unescape(self._text[at : match.start()]),
                        bold,
                        colours[-1] if colours else None,
                    )
                )
            tag = match.group(1)
            if tag == "<b>":
                bold = True
            elif tag == "</b>":
                bold = False
            elif tag == "</span>":
                if colours:
                    colours.pop()
            else:
                colours.append(QColor(match.group(2)))
            at = match.end()
        if at < len(self._text):
            runs.append((unescape(self._text[at:]), bold, colours[-1] if colours else None))
        return runs

    def _font(self, bold: bool) -> QFont:
        font = QFont(self.font())
        font.setBold(bold)
        return font

    def _static(self, words: str, bold: bool) -> QStaticText:
        """A run laid out once: the prediction's words change at every move of a stroke,
        but they come back again and again ("Prediction: ", "7", " (98.2%)")."""
        key = (words, bold)
        static = self._laid_out.get(key)
        if static is None:
            if len(self._laid_out) > 4000:  # every "(x.y%)" fits many times over
                self._laid_out.clear()
            static = QStaticText(words)
            static.setTextFormat(Qt.TextFormat.PlainText)
            static.prepare(font=self._font(bold))
            self._laid_out[key] = static
        return static

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt)
        with QPainter(self) as painter:
            painter.fillRect(self.rect(), self.palette().color(self.backgroundRole()))
            ink = self.palette().color(QPalette.ColorRole.WindowText)
            runs = self.runs()
            statics = [self._static(words, bold) for words, bold, _ in runs]
            room = self.width()
            total = sum(static.size().width() for static in statics)
            if total <= room:  # the usual case: laid-out runs, one after the other
                x = (room - total) / 2 if self.centred else 0.0
                for (_, bold, colour), static in zip(runs, statics, strict=True):
                    painter.setFont(self._font(bold))
                    painter.setPen(colour or ink)
                    y = (self.height() - static.size().height()) / 2
                    painter.drawStaticText(QPointF(x, y), static)
                    x += static.size().width()
                return
            # Too long: elided run by run, at the common baseline.
            metrics = self.fontMetrics()
            baseline = (self.height() + metrics.ascent() - metrics.descent()) // 2
            parts = []
            for words, bold, colour in runs:
                font = self._font(bold)
                parts.append((words, font, QFontMetrics(font), colour or ink))
            x = 0
            for words, font, m, colour in parts:
                shown = m.elidedText(words, Qt.TextElideMode.ElideRight, room - x)
                painter.setFont(font)
                painter.setPen(colour)
                painter.drawText(x, baseline, shown)
                x += m.horizontalAdvance(shown)
                if x >= room:
                    break


def plain_text(rich: str) -> str:
    """What a reader sees of simple rich text: no tags, entities decoded."""
    return unescape(re.sub(r"<[^>]*>", "", rich))
