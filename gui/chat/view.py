"""The chat view: conversations sidebar, the thread, the message box, Send/Stop, Regenerate, system prompt.

Follow a message: ``send`` commits it to the store (``ChatHistory``), puts it in
the ChatModel and submits ``engine.tasks.chat_task`` to the scheduler; the reply's
own task signals (gui/worker.py) bring its chunks, which are buffered, then flushed into the
model every 40 ms (so a fast model cannot flood the event loop) and into the
store's ReplyRecorder (committed about once a second); ``done`` /
``cancelled`` / ``failed`` close the reply.

Regenerate adds an alternative reply; editing an earlier message of yours
starts a new branch. Both keep what was there: the ‹ n/m › arrows in a
message's header step between alternatives.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QListView, QMenu, QMessageBox,
                               QPlainTextEdit, QPushButton, QSplitter, QVBoxLayout, QWidget)

from engine.config import ChatMessage
from engine.tasks import chat_task
from engine.store.messages import LEAF
from gui.chat.alternatives import arrow_at
from gui.chat.delegate import ChatDelegate
from gui.chat.documents import DocumentsBar
from gui.chat.history import ChatHistory, item_for
from gui.chat.input_box import ChatInput
from gui.chat.list_model import ChatItem, ChatModel, MetaRole, StreamingRole
from gui.chat.sidebar import ConversationSidebar
from gui.colors import muted_label
from gui.chat.presets_bar import PresetsBar

FLUSH_MS = 40
SAVE_SETTINGS_MS = 600
CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)


class ChatView(QWidget):
    reply_finished = Signal(object)  # the GenerationResult, or None after an error

    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        self.client = window.client
        self.task = None  # the reply being written: its TaskSignals (gui/worker.py), or None
        self.sampling_override = None  # the self-test asks for greedy decoding without touching settings
        self._buffer: list[str] = []
        self._branch_parent = LEAF  # where the next message goes: the leaf, or an edited message's parent
        self._loading = False  # filling the widgets from a stored conversation: do not save them back
        self.saved = ChatHistory(window.show_error)
        self.model = ChatModel(self)
        self.delegate = ChatDelegate(self)
        self._build()
        self._flush_timer = QTimer(self, interval=FLUSH_MS, timeout=self._flush)
        self._settings_timer = QTimer(self, singleShot=True, interval=SAVE_SETTINGS_MS, timeout=self._save_settings)
        window.model_changed.connect(lambda info: self._update_buttons())
        window.sampling_panel.changed.connect(self._on_settings_edited)
        if hasattr(window, "installEventFilter"):
            window.installEventFilter(self)  # coming back to the window: show chats another instance saved
        self._update_buttons()
        if self.saved.error:  # a notice, not an error: loading the model clears errors, and the chat still works
            window.show_notice(self.saved.error)
        elif self.saved.notice:
            window.show_notice(self.saved.notice)

    # -- layout -------------------------------------------------------------
    def _build(self) -> None:
        self.sidebar = ConversationSidebar(self.saved)
        self.sidebar.conversation_selected.connect(self.open_conversation)
        self.sidebar.new_chat_requested.connect(self.new_chat)
        self.sidebar.search_requested.connect(self.search)
        self.sidebar.export_requested.connect(self.export)
        self.sidebar.conversation_deleted.connect(self._on_conversation_deleted)
        self.presets = PresetsBar(self.saved)
        self.presets.preset_chosen.connect(self.apply_preset)
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setPlaceholderText("System prompt (optional): how the assistant should behave")
        self.system_prompt.setMaximumHeight(54)
        self.system_prompt.textChanged.connect(self._on_settings_edited)
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
        self.list.viewport().installEventFilter(self)
        self.list.verticalScrollBar().valueChanged.connect(self._maybe_load_older)
        self.model.rowsInserted.connect(self._on_rows_inserted)
        self.input = ChatInput()
        self.documents = DocumentsBar(self.window, self)  # collections, the per-message switch, sources
        self.list.clicked.connect(lambda index: self.documents.show_reply((index.data(MetaRole) or {}).get("id")))
        self.delegate.citable = lambda meta: self.documents.cited(meta.get("id"))  # its "[n]" become links
        self.documents.passages_changed.connect(self.list.viewport().update)
        self.list.setMouseTracking(True)  # a pointing hand over a citation
        self.input.submitted.connect(self.send)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the reply (Esc)")
        self.stop_button.clicked.connect(self.stop)
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.setToolTip("Write another reply; the current one stays as an alternative (‹ n/m ›)")
        self.regenerate_button.clicked.connect(self.regenerate)
        self.continue_button = QPushButton("Continue anyway")
        self.continue_button.setToolTip("The reply was stopped because it began to repeat itself: carry it on "
                                        "with the repetition guard off")
        self.continue_button.clicked.connect(lambda: self.continue_reply(len(self.model.items) - 1, guard=False))
        self.new_button = QPushButton("New chat")
        self.new_button.clicked.connect(self.new_chat)
        self.new_button.hide()  # the sidebar has one; this stays for keyboard users of older layouts
        self.hint = QLabel("")
        muted_label(self.hint)
        buttons = QHBoxLayout()
        buttons.addWidget(self.hint, 1)
        for b in (self.new_button, self.continue_button, self.regenerate_button, self.stop_button, self.send_button):
            buttons.addWidget(b)
        chat = QWidget()
        layout = QVBoxLayout(chat)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.presets)
        layout.addWidget(self.system_prompt)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.documents.sources)
        layout.addWidget(self.documents)
        layout.addWidget(self.input)
        layout.addLayout(buttons)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(chat)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([230, 800])
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.splitter)
        QShortcut(QKeySequence("Esc"), self, activated=self._escape)
        QShortcut(QKeySequence("Alt+Left"), self, activated=lambda: self._step_selected(-1))
        QShortcut(QKeySequence("Alt+Right"), self, activated=lambda: self._step_selected(+1))

    def install_menus(self, file_menu) -> None:
        """File menu entries for conversations (called by the main window once its menus exist)."""
        file_menu.addSeparator()
        file_menu.addAction("Search conversations…", QKeySequence("Ctrl+Shift+F"), self.search)
        file_menu.addAction("Import conversation (JSON)…", self.import_json)
        file_menu.addAction("Export conversation as Markdown…", lambda: self.export(self.saved.conversation_id, "md"))
        file_menu.addAction("Export conversation as JSON…", lambda: self.export(self.saved.conversation_id, "json"))

    # -- state --------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.task is not None

    def _update_buttons(self) -> None:
        loaded = self.window.model_info is not None
        self.send_button.setEnabled(loaded and not self.busy)
        self.stop_button.setEnabled(self.busy)
        has_reply = any(i.role == "assistant" for i in self.model.items)
        self.regenerate_button.setEnabled(loaded and not self.busy and has_reply)
        last = self.model.items[-1] if self.model.items else None
        looped = last is not None and last.role == "assistant" and last.meta.get("finish_reason") == "repetition"
        self.continue_button.setVisible(looped and not self.busy and "id" in last.meta)
        self.continue_button.setEnabled(loaded)
        self.new_button.setEnabled(not self.busy)
        self.sidebar.new_button.setEnabled(not self.busy)
        self.sidebar.tree.setEnabled(not self.busy)
        if not loaded:
            self.hint.setText("Loading the model…")
        elif self._branch_parent is not LEAF:
            self.hint.setText("Editing: sending starts a new branch; the old one stays (Esc cancels).")
        else:
            self.hint.setText("")

    def history(self) -> list[ChatMessage]:
        """The messages shown that the model sees: user and finished assistant turns."""
        return [ChatMessage(i.role, i.content) for i in self.model.items
                if i.role in ("user", "assistant") and not i.streaming and i.content]

    # -- conversations ------------------------------------------------------
    def open_conversation(self, conversation_id: int | None, reveal: int | None = None) -> None:
        """Show a stored conversation (``reveal``: a message to bring into view, e.g. a search hit)."""
        if self.busy:
            return
        if reveal is not None:
            self.saved.safely(self.saved.store.show_message, reveal)
        self._branch_parent = LEAF
        self.model.set_items(self.saved.open(conversation_id))
        self.documents.show_conversation(conversation_id, [i.meta.get("id") for i in self.model.items
                                                           if i.role == "assistant"])
        conversation = self.saved.conversation()
        self._loading = True
        try:
            self.system_prompt.setPlainText(conversation.system_prompt if conversation else "")
            if conversation is not None and conversation.sampling is not None:
                self.window.sampling_panel.set_config(conversation.sampling)
            self.presets.show_preset(conversation.preset_id if conversation else None)
        finally:
            self._loading = False
        self.sidebar.set_current(conversation_id)
        if reveal is not None:
            self.scroll_to_message(reveal)
        else:
            self.list.scrollToBottom()
        self._update_buttons()

    def scroll_to_message(self, message_id: int) -> bool:
        while self.model.row_of(message_id) is None and self.saved.older_ids:
            self._load_older()
        row = self.model.row_of(message_id)
        if row is None:
            return False
        index = self.model.index(row)
        self.list.setCurrentIndex(index)
        self.list.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtTop)
        return True

    def new_chat(self) -> None:
        if self.busy:
            return
        self.saved.open(None)
        self._branch_parent = LEAF
        self.model.clear()
        self.documents.show_conversation(None, [])
        self.sidebar.set_current(None)
        self._update_buttons()

    def apply_preset(self, preset) -> None:
        self._loading = True
        try:
            self.system_prompt.setPlainText(preset.system_prompt)
            self.window.sampling_panel.set_config(preset.sampling)
        finally:
            self._loading = False
        self.saved.save_settings(system_prompt=preset.system_prompt, sampling=preset.sampling, preset_id=preset.id)

    def _on_settings_edited(self, *_) -> None:
        if not self._loading and self.saved.conversation_id is not None:
            self._settings_timer.start()

    def _save_settings(self) -> None:
        """Edited system prompt or sampling: this conversation now has its own (a "Custom" preset)."""
        self.presets.show_preset(None)
        self.saved.save_settings(system_prompt=self.system_prompt.toPlainText(),
                                 sampling=self.window.sampling_panel.config(), clear_preset=True)

    def search(self) -> None:
        from gui.chat.search_dialog import SearchDialog

        dialog = SearchDialog(self.saved, self)
        dialog.hit_chosen.connect(lambda conversation_id, message_id: self.open_conversation(conversation_id,
                                                                                             reveal=message_id))
        dialog.exec()

    def export(self, conversation_id: int | None, fmt: str) -> None:
        from gui.chat.exchange import export_conversation

        if conversation_id is None:
            self.window.show_notice("Nothing to export yet: this chat has no messages.")
            return
        path = export_conversation(self, self.saved, conversation_id, fmt)
        if path is not None:
            self.window.show_notice(f"Exported to {path}")

    def import_json(self) -> None:
        from gui.chat.exchange import import_conversation

        conversation_id = import_conversation(self, self.saved)
        if conversation_id is not None:
            self.sidebar.refresh(select=conversation_id)
            self.open_conversation(conversation_id)

    def _on_conversation_deleted(self, conversation_id: int) -> None:
        if conversation_id == self.saved.conversation_id:
            self.new_chat()

    # -- actions ------------------------------------------------------------
    def send(self) -> None:
        text = self.input.toPlainText()
        if not text.strip() or self.busy:
            return
        if self.window.model_info is None:
            self.window.show_notice("The model is still loading; your message is kept in the box.")
            return
        new_conversation = self.saved.conversation_id is None
        message_id = self.saved.add_user_message(
            text, self._branch_parent, system_prompt=self.system_prompt.toPlainText(),
            sampling=self.window.sampling_panel.config(), preset_id=self.presets.current_id())
        self._branch_parent = LEAF
        self.input.clear()
        stored = self.saved.safely(self.saved.store.message, message_id) if message_id is not None else None
        self.model.append(item_for(stored) if stored is not None else ChatItem("user", text))
        if new_conversation or stored is not None:
            self.sidebar.refresh(select=self.saved.conversation_id)
        self.documents.attach(self.saved.conversation_id)
        self._start_reply(message_id)

    def regenerate(self) -> None:
        """Another reply to your last message; the one shown now stays as an alternative."""
        if self.busy or self.window.model_info is None:
            return
        last_user = max((r for r, i in enumerate(self.model.items) if i.role == "user"), default=None)
        if last_user is None:
            return
        self.model.remove_from(last_user + 1)
        self._start_reply(self.model.items[last_user].meta.get("id"))

    def edit_message(self, row: int) -> None:
        """Put an earlier message of yours back in the box; sending it starts a new branch from there."""
        if self.busy or not 0 <= row < len(self.model.items) or self.model.items[row].role != "user":
            return
        item = self.model.items[row]
        stored = self.saved.safely(self.saved.store.message, item.meta["id"]) if "id" in item.meta else None
        self._branch_parent = stored.parent_id if stored is not None else LEAF
        self.input.setPlainText(item.content)
        self.model.remove_from(row)
        self.input.setFocus()
        self._update_buttons()

    def cancel_edit(self) -> None:
        if self._branch_parent is not LEAF and not self.busy:
            self.input.clear()
            self.open_conversation(self.saved.conversation_id)

    def step_alternative(self, row: int, step: int) -> None:
        """Show the previous (-1) or next (+1) alternative of the message in ``row``, with its branch."""
        if self.busy or not 0 <= row < len(self.model.items) or "id" not in self.model.items[row].meta:
            return
        shown = self.saved.safely(self.saved.store.step_alternative, self.model.items[row].meta["id"], step)
        if shown is None:
            return
        self._branch_parent = LEAF
        self.model.replace_from(row, self.saved.tail_from(shown.id))
        self.list.setCurrentIndex(self.model.index(row))
        self._update_buttons()

    def continue_reply(self, row: int, guard: bool = True) -> None:
        """Carry on an interrupted or stopped reply in place (``guard=False``: even if it repeats itself)."""
        item = self.model.items[row]
        if self.busy or self.window.model_info is None or item.role != "assistant" or "id" not in item.meta:
            return
        from engine.tasks import continue_task

        stored = self.saved.safely(self.saved.store.message, item.meta["id"])
        if stored is None:
            return
        self.model.remove_from(row + 1)
        self.saved.continue_reply(stored.id)
        self.model.update(row, streaming=True)
        messages = self.saved.thread(stored.parent_id) or []
        sampling = self.sampling_override or self.window.sampling_panel.config()
        if not guard:
            sampling = sampling.with_(repetition_guard=False)
        self._watch(self.client.submit(continue_task, label="continue reply", messages=messages,
                                       partial=stored.content, system_prompt=self.system_prompt.toPlainText(),
                                       sampling=sampling))
        self._flush_timer.start()
        self._update_buttons()

    def delete_message(self, row: int, confirm: bool = True) -> None:
        item = self.model.items[row]
        if self.busy or "id" not in item.meta:
            return
        if confirm and QMessageBox.question(
                self, "Delete message", "Delete this message and everything after it in this branch?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel) != QMessageBox.StandardButton.Yes:
            return
        self.saved.safely(self.saved.store.delete_message, item.meta["id"])
        self.model.replace_from(row, [])
        leaf_tail = self._tail_after(row)
        if leaf_tail:
            self.model.replace_from(row, leaf_tail)
        self._update_buttons()

    def _tail_after(self, row: int) -> list[ChatItem]:
        """After a delete: the rows of the branch now shown from ``row`` on."""
        ids = self.saved.safely(self.saved.store.path_ids, self.saved.conversation_id, default=[])
        shown = {i.meta.get("id") for i in self.model.items}
        rest = [i for i in ids if i not in shown and i not in self.saved.older_ids]
        return [item_for(m) for m in self.saved.safely(self.saved.store.messages, rest, default=[])]

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _escape(self) -> None:
        if self.busy:
            self.stop()
        else:
            self.cancel_edit()

    def _start_reply(self, parent_id: int | None = None) -> None:
        messages = self.saved.thread(parent_id) or self.history()
        name = self.window.model_info.get("name")
        sampling = self.sampling_override or self.window.sampling_panel.config()
        reply_id = self.saved.start_reply(parent_id, name, sampling)
        meta = {"model": name} if reply_id is None else {"model": name, "id": reply_id}
        self.model.append(ChatItem("assistant", "", meta, streaming=True))
        task_fn, extra = self.documents.reply_task(chat_task)  # with documents: a cited answer
        self._watch(self.client.submit(task_fn, label="chat reply", messages=messages,
                                       system_prompt=self.system_prompt.toPlainText(), sampling=sampling, **extra))
        self._flush_timer.start()
        self._update_buttons()

    # -- the reply's task signals ---------------------------------------------
    def _watch(self, task) -> None:
        self.task = task
        task.chunk.connect(self._on_chunk)
        task.done.connect(self._on_finished)
        task.cancelled.connect(self._on_cancelled)
        task.failed.connect(self._on_failed)

    def _on_chunk(self, text: str) -> None:
        self._buffer.append(text)

    def _flush(self) -> None:
        if self._buffer:
            bar = self.list.verticalScrollBar()
            at_bottom = bar.value() >= bar.maximum() - 4
            text = "".join(self._buffer)
            self.model.append_to_last(text)
            self.saved.on_text(text)
            self._buffer.clear()
            if at_bottom:
                self.list.scrollToBottom()

    def _close_reply(self, result, reason: str | None = None) -> None:
        self._flush()
        self._flush_timer.stop()
        self.task = None
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
        empty = not item.content and (result is None or result.finish_reason == "cancelled")
        stored = self.saved.end_reply(result, failed=result is None, empty=empty)
        if stored is not None:
            meta.update(alternative=stored.alternative[0], alternatives=stored.alternative[1])
        self.model.update(row, streaming=False, meta=meta)
        self.documents.reply_finished(meta.get("id"), result)
        if empty:
            self.model.remove_from(row)  # nothing was written: leave no empty bubble
        self.sidebar.refresh()
        self._update_buttons()
        self.reply_finished.emit(result)

    def _on_finished(self, result) -> None:
        self._close_reply(result)

    def _on_cancelled(self, result) -> None:
        self._close_reply(result, "cancelled")

    def _on_failed(self, message: str, error_type: str) -> None:
        self._close_reply(None, "error")
        self.model.append(ChatItem("error", message))
        self.window.show_error(message)

    def on_window_closing(self) -> None:
        """The window closes mid-reply: keep what came, marked interrupted (it can be continued)."""
        if self.busy:
            self._flush()
            self.saved.end_reply(None, failed=True)
        if self.saved.store is not None:
            store, self.saved.store = self.saved.store, None  # late worker signals find no store, not a closed one
            store.close()

    # -- lazy loading of long threads -------------------------------------------
    def _maybe_load_older(self, value: int) -> None:
        if value == self.list.verticalScrollBar().minimum() and self.saved.older_ids:
            QTimer.singleShot(0, self._load_older)

    def _load_older(self) -> None:
        items = self.saved.older()
        if not items:
            return
        bar = self.list.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        self.model.prepend(items)
        self.list.doItemsLayout()
        bar.setValue(bar.maximum() - from_bottom)  # keep the message under the mouse in place

    def _on_rows_inserted(self, parent, first: int, last: int) -> None:
        if last == self.model.rowCount() - 1 and first > 0 or self.model.rowCount() == last - first + 1:
            self.list.scrollToBottom()

    # -- mouse and context menu ---------------------------------------------------
    def eventFilter(self, watched, event) -> bool:
        if watched is self.window and event.type() == QEvent.Type.WindowActivate and not self.busy:
            self.sidebar.refresh()
        if watched is self.list.viewport() and event.type() == QEvent.Type.MouseMove:
            if self._citation_at(event.position().toPoint()) is not None:
                watched.setCursor(Qt.CursorShape.PointingHandCursor)
            else:
                watched.unsetCursor()
        if watched is self.list.viewport() and event.type() == QEvent.Type.MouseButtonRelease:
            pos = event.position().toPoint()
            index = self.list.indexAt(pos)
            number = self._citation_at(pos) if event.button() == Qt.MouseButton.LeftButton else None
            if number is not None:  # "[n]" in a reply from documents: its passage n, in its file
                self.documents.open_cited((index.data(MetaRole) or {}).get("id"), number)
                return True
            if index.isValid():
                step = arrow_at(self.list.visualRect(index), self.list.font(), index.data(MetaRole) or {},
                                bool(index.data(StreamingRole)), pos)
                if step:
                    self.step_alternative(index.row(), step)
                    return True
        return super().eventFilter(watched, event)

    def _citation_at(self, pos) -> int | None:
        index = self.list.indexAt(pos)
        if not index.isValid():
            return None
        return self.delegate.citation_at(self.list.visualRect(index), index, pos, self.list.palette())

    def _step_selected(self, step: int) -> None:
        index = self.list.currentIndex()
        if index.isValid():
            self.step_alternative(index.row(), step)

    def _context_menu(self, pos) -> None:
        index = self.list.indexAt(pos)
        if not index.isValid():
            return
        row = index.row()
        item = self.model.items[row]
        menu = QMenu(self)
        menu.addAction("Copy message", lambda: QGuiApplication.clipboard().setText(item.content))
        self.documents.extend_menu(menu, item.meta.get("id"))  # "Open source [n]" for a reply from documents
        blocks = CODE_BLOCK.findall(item.content)
        if blocks:
            menu.addAction("Copy code block" + ("s" if len(blocks) > 1 else ""),
                           lambda: QGuiApplication.clipboard().setText("\n".join(b.rstrip("\n") for b in blocks)))
        if not self.busy:
            if item.meta.get("alternatives", 1) > 1:
                menu.addAction("Previous alternative (Alt+Left)", lambda: self.step_alternative(row, -1))
                menu.addAction("Next alternative (Alt+Right)", lambda: self.step_alternative(row, +1))
            if item.role == "user":
                menu.addAction("Edit (starts a new branch)", lambda: self.edit_message(row))
            last = row == len(self.model.items) - 1
            if item.role == "assistant" and last:
                menu.addAction("Regenerate", self.regenerate)
                if item.meta.get("finish_reason") in ("interrupted", "cancelled", "length") and "id" in item.meta:
                    menu.addAction("Continue", lambda: self.continue_reply(row))
                elif item.meta.get("finish_reason") == "repetition" and "id" in item.meta:
                    menu.addAction("Continue anyway (it was repeating itself)",
                                   lambda: self.continue_reply(row, guard=False))
            if "id" in item.meta:
                menu.addSeparator()
                menu.addAction("Delete message…", lambda: self.delete_message(row))
        menu.exec(self.list.viewport().mapToGlobal(pos))
