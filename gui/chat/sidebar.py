"""The list of stored conversations beside the chat: pinned first, then by day, newest first.

Groups: Pinned, Today, Yesterday, Previous 7 days, Previous 30 days, then by
month. The filter box narrows by title; "Search messages…" opens full-text
search. The context menu renames (in place), pins, duplicates, exports and
deletes (after a confirmation).
"""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QHBoxLayout, QLineEdit, QMenu, QMessageBox, QPushButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from gui.colors import muted

IdRole = Qt.ItemDataRole.UserRole + 1
LIST_LIMIT = 2000  # the newest conversations shown; older ones are reached through the filter box


def day_group(timestamp: float, today: dt.date | None = None) -> str:
    """The heading a conversation last updated at ``timestamp`` is listed under."""
    today = today or dt.date.today()
    day = dt.datetime.fromtimestamp(timestamp).date()
    age = (today - day).days
    if age <= 0:
        return "Today"
    if age == 1:
        return "Yesterday"
    if age < 7:
        return "Previous 7 days"
    if age < 30:
        return "Previous 30 days"
    return day.strftime("%B %Y") if day.year != today.year else day.strftime("%B")


class ConversationSidebar(QWidget):
    conversation_selected = Signal(int)
    new_chat_requested = Signal()
    search_requested = Signal()
    export_requested = Signal(int, str)  # conversation id, "md" or "json"
    conversation_deleted = Signal(int)

    def __init__(self, history, parent=None) -> None:
        super().__init__(parent)
        self.history = history  # gui.chat.history.ChatHistory (its store may be None)
        self._current: int | None = None
        self._refreshing = False
        self.new_button = QPushButton("New chat")
        self.new_button.clicked.connect(self.new_chat_requested)
        self.search_button = QPushButton("Search…")
        self.search_button.setToolTip("Search every message (Ctrl+Shift+F)")
        self.search_button.clicked.connect(self.search_requested)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by title")
        self.filter.setClearButtonEnabled(True)
        self._filter_timer = QTimer(self, singleShot=True, interval=150, timeout=self.refresh)
        self.filter.textChanged.connect(lambda _: self._filter_timer.start())
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(False)
        self.tree.setIndentation(6)
        self.tree.setUniformRowHeights(True)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.currentItemChanged.connect(self._on_current_changed)
        self.tree.itemChanged.connect(self._on_item_renamed)
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.search_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 4, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree, 1)
        self.setEnabled(history.store is not None)
        self.refresh()
        if history.store is None:
            QTreeWidgetItem(self.tree, ["Chat history is off"]).setToolTip(0, history.error)

    @property
    def store(self):
        return self.history.store

    # -- listing ---------------------------------------------------------------------------------------------
    def refresh(self, select: int | None = None) -> None:
        """Rebuild the list from the database, keeping (or moving to) the selected conversation."""
        if select is not None:
            self._current = select
        conversations = self.history.safely(self.store.list_conversations, filter_text=self.filter.text(),
                                            limit=LIST_LIMIT, default=[]) if self.store else []
        self._refreshing = True
        try:
            self.tree.clear()
            groups: dict[str, QTreeWidgetItem] = {}
            today = dt.date.today()
            for conversation in conversations:
                name = "Pinned" if conversation.pinned else day_group(conversation.updated_at, today)
                if name not in groups:
                    groups[name] = self._group_item(name)
                item = QTreeWidgetItem(groups[name], [conversation.title or "New chat"])
                item.setData(0, IdRole, conversation.id)
                item.setToolTip(0, f"{conversation.title}\n{conversation.message_count} messages · updated "
                                   f"{dt.datetime.fromtimestamp(conversation.updated_at):%Y-%m-%d %H:%M}")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                if conversation.id == self._current:
                    self.tree.setCurrentItem(item)
            self.tree.expandAll()
        finally:
            self._refreshing = False

    def _group_item(self, name: str) -> QTreeWidgetItem:
        group = QTreeWidgetItem(self.tree, [name])
        group.setFlags(Qt.ItemFlag.ItemIsEnabled)
        font = group.font(0)
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 0.9)
        group.setFont(0, font)
        group.setForeground(0, muted(self.tree.palette()))
        return group

    def items(self) -> list[QTreeWidgetItem]:
        """Conversation rows in display order (group headings left out)."""
        out = []
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            out += [group.child(i) for i in range(group.childCount())]
        return out

    def groups(self) -> list[str]:
        return [self.tree.topLevelItem(g).text(0) for g in range(self.tree.topLevelItemCount())]

    def item_for(self, conversation_id: int) -> QTreeWidgetItem | None:
        return next((i for i in self.items() if i.data(0, IdRole) == conversation_id), None)

    def set_current(self, conversation_id: int | None) -> None:
        """Follow the chat view (a new chat has no row yet) without re-emitting a selection."""
        self._current = conversation_id
        item = self.item_for(conversation_id) if conversation_id is not None else None
        self._refreshing = True
        try:
            self.tree.setCurrentItem(item) if item is not None else self.tree.clearSelection()
        finally:
            self._refreshing = False

    def _on_current_changed(self, item, previous) -> None:
        if self._refreshing or item is None or item.data(0, IdRole) is None:
            return
        self._current = item.data(0, IdRole)
        self.conversation_selected.emit(self._current)

    # -- actions ---------------------------------------------------------------------------------------------
    def _context_menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        if item is None or item.data(0, IdRole) is None:
            return
        conversation_id = item.data(0, IdRole)
        conversation = self.history.safely(self.store.conversation, conversation_id)
        if conversation is None:
            return
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.tree.editItem(item, 0))
        menu.addAction("Unpin" if conversation.pinned else "Pin to top", lambda: self.set_pinned(
            conversation_id, not conversation.pinned))
        menu.addAction("Duplicate", lambda: self.duplicate(conversation_id))
        menu.addSeparator()
        menu.addAction("Export as Markdown…", lambda: self.export_requested.emit(conversation_id, "md"))
        menu.addAction("Export as JSON…", lambda: self.export_requested.emit(conversation_id, "json"))
        menu.addSeparator()
        menu.addAction("Delete…", lambda: self.delete(conversation_id))
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    def _on_item_renamed(self, item, column: int) -> None:
        if self._refreshing or item.data(0, IdRole) is None:
            return
        renamed = self.history.safely(self.store.rename_conversation, item.data(0, IdRole), item.text(0))
        if renamed is not None:
            QTimer.singleShot(0, lambda: self.refresh())  # show the cleaned title (not inside itemChanged)

    def rename(self, conversation_id: int, title: str) -> None:
        self.history.safely(self.store.rename_conversation, conversation_id, title)
        self.refresh()

    def set_pinned(self, conversation_id: int, pinned: bool) -> None:
        self.history.safely(self.store.set_pinned, conversation_id, pinned)
        self.refresh()

    def duplicate(self, conversation_id: int) -> None:
        copy = self.history.safely(self.store.duplicate_conversation, conversation_id)
        if copy is not None:
            self.refresh(select=copy.id)
            self.conversation_selected.emit(copy.id)

    def delete(self, conversation_id: int, confirm: bool = True) -> bool:
        conversation = self.history.safely(self.store.conversation, conversation_id)
        if conversation is None:
            return False
        if confirm:
            answer = QMessageBox.question(
                self, "Delete conversation",
                f"Delete “{conversation.title or 'New chat'}” and its {conversation.message_count} messages? "
                "This cannot be undone.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.history.safely(self.store.delete_conversation, conversation_id)
        if self._current == conversation_id:
            self._current = None
        self.refresh()
        self.conversation_deleted.emit(conversation_id)
        return True
