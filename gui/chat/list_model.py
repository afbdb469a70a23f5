"""The conversation shown in the chat view, as a Qt list model (one row per message).

The view never reads the engine: the chat view applies what the worker sends
(``append_to_last`` for streamed chunks) on the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

RoleRole = Qt.ItemDataRole.UserRole + 1
ContentRole = Qt.ItemDataRole.UserRole + 2
MetaRole = Qt.ItemDataRole.UserRole + 3
StreamingRole = Qt.ItemDataRole.UserRole + 4
MessageRole = Qt.ItemDataRole.UserRole + 5


@dataclass
class ChatItem:
    role: str  # "user", "assistant", "error" or "notice"
    content: str
    meta: dict = field(default_factory=dict)  # id (stored message), model, tok_s, finish_reason, alternatives...
    streaming: bool = False


class ChatModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.items: list[ChatItem] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.items)

    def data(self, index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        item = self.items[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, ContentRole):
            return item.content
        if role == RoleRole:
            return item.role
        if role == MetaRole:
            return item.meta
        if role == StreamingRole:
            return item.streaming
        if role == MessageRole:
            return item
        return None

    def append(self, item: ChatItem) -> int:
        row = len(self.items)
        self.beginInsertRows(QModelIndex(), row, row)
        self.items.append(item)
        self.endInsertRows()
        return row

    def append_to_last(self, text: str) -> None:
        if not self.items:
            return
        self.items[-1].content += text
        self._changed(len(self.items) - 1)

    def update(self, row: int, **changes) -> None:
        item = self.items[row]
        for key, value in changes.items():
            setattr(item, key, value)
        self._changed(row)

    def remove_from(self, row: int) -> None:
        """Remove ``row`` and every message after it."""
        if row >= len(self.items):
            return
        self.beginRemoveRows(QModelIndex(), row, len(self.items) - 1)
        del self.items[row:]
        self.endRemoveRows()

    def prepend(self, items: list[ChatItem]) -> None:
        """Older messages, loaded lazily when the user scrolls to the top."""
        if not items:
            return
        self.beginInsertRows(QModelIndex(), 0, len(items) - 1)
        self.items[0:0] = items
        self.endInsertRows()

    def replace_from(self, row: int, items: list[ChatItem]) -> None:
        """Show another branch: rows from ``row`` on become ``items``."""
        self.remove_from(row)
        if items:
            self.beginInsertRows(QModelIndex(), row, row + len(items) - 1)
            self.items.extend(items)
            self.endInsertRows()

    def row_of(self, message_id: int) -> int | None:
        """The row showing the stored message ``message_id`` (None if not loaded)."""
        return next((r for r, item in enumerate(self.items) if item.meta.get("id") == message_id), None)

    def clear(self) -> None:
        self.beginResetModel()
        self.items = []
        self.endResetModel()

    def set_items(self, items: list[ChatItem]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.endResetModel()

    def _changed(self, row: int) -> None:
        index = self.index(row)
        self.dataChanged.emit(index, index, [ContentRole, MetaRole, StreamingRole])
