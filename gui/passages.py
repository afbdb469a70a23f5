"""Passages of documents wherever they are shown (the Documents view, the chat's sources): labels, and the dialog
that opens one in its file, highlighted. Also the scheduler threads the documents' tasks run on."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QTextEdit, QVBoxLayout

from engine.rag.locate import open_passage_task
from gui.colors import AMBER, accent, css, surface
from gui.worker import connect

INDEXING = "documents"  # the scheduler's thread for indexing: never in the way of the chat's model
QUERIES = "documents-query"  # lists, searches and links: quick, and not stuck behind a long indexing run


def passage_title(passage) -> str:
    number = f"[{passage.number}] " if passage.number else ""
    return f"{number}{Path(passage.path).name} · characters {passage.start}–{passage.end}"


def passage_snippet(passage, limit: int = 220) -> str:
    text = " ".join(passage.text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


class PassageDialog(QDialog):
    def __init__(self, window, passage, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(passage_title(passage))
        self.resize(760, 560)
        self.header = QLabel(f"<b>{passage.path}</b>")
        self.header.setWordWrap(True)
        self.position = QLabel("Opening the file…")
        self.notice = QLabel("")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(f"color: {css(accent(self.palette(), AMBER))}")
        self.notice.hide()
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setPlainText(passage.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for w in (self.header, self.position, self.notice):
            layout.addWidget(w)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self.task = connect(window.client.submit(open_passage_task, label="open passage", device=QUERIES,
                                                 path=passage.path, start=passage.start, end=passage.end,
                                                 passage_text=passage.text),
                            done=self.show_located, failed=lambda message, _t: self._say(message))

    def show_located(self, located) -> None:
        self.text.setPlainText(located.text)
        self.position.setText(f"Line {located.line}, characters {located.start}–{located.end} "
                              f"of {len(located.text):,}")
        if located.notice:
            self._say(located.notice)
        cursor = QTextCursor(self.text.document())
        cursor.setPosition(located.start)
        cursor.setPosition(located.end, QTextCursor.MoveMode.KeepAnchor)
        selection = QTextEdit.ExtraSelection()
        selection.cursor = cursor
        fmt = QTextCharFormat()
        fmt.setBackground(surface(self.text.palette(), AMBER, 0.3))  # the passage, on a light or dark theme
        selection.format = fmt
        self.text.setExtraSelections([selection])
        end = QTextCursor(self.text.document())
        end.movePosition(QTextCursor.MoveOperation.End)
        self.text.setTextCursor(end)  # scrolling to the end first puts the passage at the top, not the bottom
        start = QTextCursor(self.text.document())
        start.setPosition(located.start)
        self.text.setTextCursor(start)
        self.text.ensureCursorVisible()

    def _say(self, message: str) -> None:
        self.notice.setText(message)
        self.notice.show()
