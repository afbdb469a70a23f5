"""Notebook view: free writing with raw continuation (no chat template) from the cursor.

The text before the cursor is the prompt; the model's words are inserted at
the cursor as they stream, with the same sampling settings as chat. A token
counter shows how much of the model's context the text uses.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase, QKeySequence, QShortcut, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from engine.texttools.tasks import count_tokens_task, notebook_task
from gui.worker import connect, is_running


class NotebookView(QWidget):
    def __init__(self, window) -> None:
        super().__init__()
        self.window_ = window
        self.task = None  # the continuation being written: its TaskSignals (gui/worker.py)
        self.counter = None  # counting the tokens
        self._insert: QTextCursor | None = None  # where streamed text goes
        self._build()
        window.model_changed.connect(lambda _: self._count_timer.start())

    def _build(self) -> None:
        self.editor = QPlainTextEdit()
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.GeneralFont)
        font.setPointSize(max(font.pointSize(), 11))
        self.editor.setFont(font)
        self.editor.setPlaceholderText("Write freely. Put the cursor where the model should go on, and press "
                                       "Generate (Ctrl+Enter). No chat template: the model simply continues.")
        self.editor.textChanged.connect(self._on_text_changed)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Continue from the cursor (Ctrl+Enter)")
        self.generate_button.clicked.connect(self.generate)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.editor.undo)
        self.tokens = QLabel("")
        self.status = QLabel("")
        bar = QHBoxLayout()
        for w in (self.generate_button, self.stop_button, self.undo_button):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.tokens)
        column = QVBoxLayout(self)
        column.addLayout(bar)
        column.addWidget(self.editor, 1)
        column.addWidget(self.status)
        self._count_timer = QTimer(self, singleShot=True, interval=600)
        self._count_timer.timeout.connect(self._count)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.generate)

    def generate(self) -> None:
        if self.busy:
            return
        if self.window_.model_info is None:
            self.window_.show_error("No model is loaded yet. Wait for loading to finish, or choose a model.")
            return
        cursor = self.editor.textCursor()
        cursor.clearSelection()
        prompt = self.editor.toPlainText()[:cursor.position()]
        self._insert = QTextCursor(cursor)
        self._first_chunk = True
        self.status.setText("Writing…")
        self._set_busy(True)
        self.task = connect(self.window_.client.submit(notebook_task, label="notebook", text=prompt,
                                                       sampling=self.window_.sampling_panel.config()),
                            chunk=self._on_chunk, done=self._on_done, cancelled=self._on_stopped,
                            failed=self._on_failed, ended=lambda: self._set_busy(False))

    @property
    def busy(self) -> bool:
        return is_running(self.task)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _on_chunk(self, text: str) -> None:
        if self._insert is None:
            return
        # The whole continuation is one undo step: the first chunk opens it, the others join it.
        if self._first_chunk:
            self._insert.beginEditBlock()
            self._first_chunk = False
        else:
            self._insert.joinPreviousEditBlock()
        self._insert.insertText(text, QTextCharFormat())
        self._insert.endEditBlock()
        self.editor.setTextCursor(self._insert)
        self.editor.ensureCursorVisible()

    def _set_busy(self, busy: bool) -> None:
        self.generate_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.editor.setReadOnly(busy)  # typing while text streams in would interleave with it

    def _on_done(self, result) -> None:
        self._insert = None
        speed = f", {result.tok_s:.1f} tokens/s" if result.tok_s else ""
        self.status.setText(f"{result.new_tokens} new tokens{speed}."
                            + (f" {result.notice}" if result.notice else ""))
        self._count_timer.start()

    def _on_stopped(self, result) -> None:
        self._insert = None
        self.status.setText("Stopped.")
        self._count_timer.start()

    def _on_failed(self, message: str, error_type: str = "") -> None:
        self._insert = None
        self.status.setText("")
        self.window_.show_error(message)

    def _on_text_changed(self) -> None:
        if not self.busy:
            self._count_timer.start()

    def _count(self) -> None:
        if self.window_.model_info is None or self.busy:
            return
        if self.counter is not None:
            self.counter.abandon()  # its count is for text that changed since
        self.counter = connect(self.window_.client.submit(count_tokens_task, label="count tokens",
                                                          text=self.editor.toPlainText()),
                               done=self._show_tokens, failed=lambda *_: self.tokens.setText(""))

    def _show_tokens(self, count: int) -> None:
        context = (self.window_.model_info or {}).get("context_length")
        self.tokens.setText(f"{count:,} / {context:,} tokens" if context else f"{count:,} tokens")
