"""A dismissible message strip at the top of the window, for errors and notices."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton

STYLES = {
    "error": "background: #fdecea; color: #611a15; border: 1px solid #f5c2c0;",
    "notice": "background: #fff8e1; color: #5d4200; border: 1px solid #ffe08a;",
}


class Banner(QFrame):
    def __init__(self, kind: str, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName(f"{kind}Banner")
        self.setStyleSheet(f"QFrame#{kind}Banner {{ {STYLES[kind]} border-radius: 4px; }}")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return self.label.text()
