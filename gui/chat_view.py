"""The chat view: the conversation, the message box, Send/Stop, Regenerate, system prompt.

Follow a message: ``send`` puts it in the ChatModel and submits ``engine.jobs.chat_job``
to the worker; streamed chunks arrive as ``chunk_received`` and are buffered,
then flushed into the model every 40 ms (so a fast model cannot flood the
event loop); ``finished`` / ``cancelled`` / ``failed`` close the reply.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QListView, QMenu, QPlainTextEdit,
                               QPushButton, QVBoxLayout, QWidget)

from engine.config import ChatMessage
from engine.jobs import chat_job
from gui.chat_delegate import ChatDelegate
from gui.chat_input import ChatInput
from gui.chat_model import ChatItem, ChatModel

FLUSH_MS = 40
CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)


class ChatView(QWidget):
    reply_finished = Signal(object)  # the GenerationResult, or None after an error

    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        self.client = window.client
        self.task_id: int | None = None
        self.sampling_override = None  # the self-test asks for greedy decoding without touching settings
        self._buffer: list[str] = []
        self.model = ChatModel(self)
        self.delegate = ChatDelegate(self)
        self._build()
        self._flush_timer = QTimer(self, interval=FLUSH_MS, timeout=self._flush)
        self.client.chunk_received.connect(self._on_chunk)
        self.client.finished.connect(self._on_finished)
        self.client.cancelled.connect(self._on_cancelled)
        self.client.failed.connect(self._on_failed)
        window.model_changed.connect(lambda info: self._update_buttons())
        self._update_buttons()

    # -- layout -------------------------------------------------------------
    def _build(self) -> None:
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setPlaceholderText("System prompt (optional): how the assistant should behave")
        self.system_prompt.setMaximumHeight(54)
        self.list = QListView()
        self.list.setModel(self.model)
        self.list.setItemDelegate(self.delegate)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setWordWrap(True)
        self.list.setContextMenuPolicy(self.list.contextMenuPolicy().CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.doubleClicked.connect(lambda index: self.edit_message(index.row()))
        self.model.rowsInserted.connect(lambda *a: self.list.scrollToBottom())
        self.input = ChatInput()
        self.input.submitted.connect(self.send)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the reply (Esc)")
        self.stop_button.clicked.connect(self.stop)
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.clicked.connect(self.regenerate)
        self.new_button = QPushButton("New chat")
        self.new_button.clicked.connect(self.new_chat)
        self.hint = QLabel("")
        self.hint.setStyleSheet("color: #777")
        buttons = QHBoxLayout()
        buttons.addWidget(self.hint, 1)
        for b in (self.new_button, self.regenerate_button, self.stop_button, self.send_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.system_prompt)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.input)
        layout.addLayout(buttons)
        QShortcut(QKeySequence("Esc"), self, activated=self.stop)

    # -- state --------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.task_id is not None

    def _update_buttons(self) -> None:
        loaded = self.window.model_info is not None
        self.send_button.setEnabled(loaded and not self.busy)
        self.stop_button.setEnabled(self.busy)
        has_reply = any(i.role == "assistant" for i in self.model.items)
        self.regenerate_button.setEnabled(loaded and not self.busy and has_reply)
        self.new_button.setEnabled(not self.busy)
        self.hint.setText("" if loaded else "Loading the model…")

    def history(self) -> list[ChatMessage]:
        """The messages the model sees: user and finished assistant turns."""
        return [ChatMessage(i.role, i.content) for i in self.model.items
                if i.role in ("user", "assistant") and not i.streaming and i.content]

    # -- actions ------------------------------------------------------------
    def send(self) -> None:
        text = self.input.toPlainText()
        if not text.strip() or self.busy:
            return
        if self.window.model_info is None:
            self.window.show_notice("The model is still loading; your message is kept in the box.")
            return
        self.input.clear()
        self.model.append(ChatItem("user", text))
        self._start_reply()

    def regenerate(self) -> None:
        if self.busy or self.window.model_info is None:
            return
        last_user = max((r for r, i in enumerate(self.model.items) if i.role == "user"), default=None)
        if last_user is None:
            return
        self.model.remove_from(last_user + 1)
        self.delegate.forget(last_user + 1)
        self._start_reply()

    def edit_message(self, row: int) -> None:
        """Put an earlier message of yours back in the box; the conversation restarts from there."""
        if self.busy or not 0 <= row < len(self.model.items) or self.model.items[row].role != "user":
            return
        self.input.setPlainText(self.model.items[row].content)
        self.model.remove_from(row)
        self.delegate.forget(row)
        self.input.setFocus()
        self._update_buttons()

    def stop(self) -> None:
        if self.task_id is not None:
            self.client.cancel(self.task_id)

    def new_chat(self) -> None:
        if self.busy:
            return
        self.model.clear()
        self.delegate.forget()
        self._update_buttons()

    def _start_reply(self) -> None:
        messages = self.history()
        self.model.append(ChatItem("assistant", "", {"model": self.window.model_info.get("name")}, streaming=True))
        self.task_id = self.client.submit(chat_job, messages=messages,
                                          system_prompt=self.system_prompt.toPlainText(),
                                          sampling=self.sampling_override or self.window.sampling_panel.config())
        self._flush_timer.start()
        self._update_buttons()

    # -- worker signals -------------------------------------------------------
    def _on_chunk(self, task_id: int, text: str) -> None:
        if task_id == self.task_id:
            self._buffer.append(text)

    def _flush(self) -> None:
        if self._buffer:
            bar = self.list.verticalScrollBar()
            at_bottom = bar.value() >= bar.maximum() - 4
            self.model.append_to_last("".join(self._buffer))
            self._buffer.clear()
            if at_bottom:
                self.list.scrollToBottom()

    def _close_reply(self, result, reason: str | None = None) -> None:
        self._flush()
        self._flush_timer.stop()
        self.task_id = None
        row = len(self.model.items) - 1
        item = self.model.items[row]
        meta = dict(item.meta)
        if result is not None:
            meta.update(tok_s=result.tok_s, new_tokens=result.new_tokens, finish_reason=result.finish_reason)
            self.window.report_generation(result)
            if result.notice:
                self.window.show_notice(result.notice)
        elif reason:
            meta["finish_reason"] = reason
        self.model.update(row, streaming=False, meta=meta)
        if not item.content and (result is None or result.finish_reason == "cancelled"):
            self.model.remove_from(row)  # nothing was written: leave no empty bubble
        self._update_buttons()
        self.reply_finished.emit(result)

    def _on_finished(self, task_id: int, result) -> None:
        if task_id == self.task_id:
            self._close_reply(result)

    def _on_cancelled(self, task_id: int, result) -> None:
        if task_id == self.task_id:
            self._close_reply(result, "cancelled")

    def _on_failed(self, task_id: int, message: str, error_type: str) -> None:
        if task_id == self.task_id:
            self._close_reply(None, "error")
            self.model.append(ChatItem("error", message))
            self.window.show_error(message)

    # -- context menu -----------------------------------------------------------
    def _context_menu(self, pos) -> None:
        index = self.list.indexAt(pos)
        if not index.isValid():
            return
        item = self.model.items[index.row()]
        menu = QMenu(self)
        menu.addAction("Copy message", lambda: QGuiApplication.clipboard().setText(item.content))
        blocks = CODE_BLOCK.findall(item.content)
        if blocks:
            menu.addAction("Copy code block" + ("s" if len(blocks) > 1 else ""),
                           lambda: QGuiApplication.clipboard().setText("\n".join(b.rstrip("\n") for b in blocks)))
        if item.role == "user" and not self.busy:
            menu.addAction("Edit and resend", lambda: self.edit_message(index.row()))
        if item.role == "assistant" and index.row() == len(self.model.items) - 1 and not self.busy:
            menu.addAction("Regenerate", self.regenerate)
        menu.exec(self.list.viewport().mapToGlobal(pos))
