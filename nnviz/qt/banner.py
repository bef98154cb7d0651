"""A message strip at the top of the window: errors reach the user here, the app goes on."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget


class MessageBanner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBanner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(text="✕", autoRaise=True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str, kind: str = "error") -> None:
        colours = {"error": ("#fde2e1", "#8a1c14"), "info": ("#e3f0fd", "#0d3c6e")}
        bg, fg = colours.get(kind, colours["info"])
        # The dismiss button in the message's colour: in the dark theme's light text it
        # was all but invisible on the pale strip.
        self.setStyleSheet(
            f"#messageBanner {{ background: {bg}; }} QLabel, QToolButton {{ color: {fg}; }}"
        )
        self.label.setText(text)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""
