"""A dismissible message strip at the top of the window, for errors and notices."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton

from gui.colors import AMBER, RED, banner_style, palette_of

HUES = {"error": RED, "notice": AMBER}


class Banner(QFrame):
    def __init__(self, kind: str, parent=None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setObjectName(f"{kind}Banner")
        self._restyle()
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

    def _restyle(self) -> None:
        """Colours from the palette (gui/colors.py); again when the desktop theme changes."""
        # The application's palette: a style sheet changes the widget's own.
        sheet = f"QFrame#{self.kind}Banner {{ {banner_style(palette_of(), HUES[self.kind])} border-radius: 4px; }}"
        if sheet != self.styleSheet():  # setting a style sheet can itself send a palette change
            self.setStyleSheet(sheet)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._restyle()
        super().changeEvent(event)

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return self.label.text()
