"""Chat with your documents: which collections a conversation uses, the per-message switch, and each reply's sources.

``DocumentsBar`` sits above the message box: a **Documents** menu of
collections (remembered per conversation, in documents.db) and a **Use
documents** switch for the next message. When both are on, the reply is
written by ``engine.rag.tasks.documents_chat_task`` and comes back with the
numbered passages it was given; ``SourcesPanel`` (under the thread) lists
them for the selected reply — or the last one — and opens a passage in its
file. Passages are saved with the reply's id, so they come back with the
conversation.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMenu, QToolButton,
                               QVBoxLayout, QWidget)

from engine.rag.answer import RetrievalConfig
from engine.rag.tasks import CollectionEdit, collections_task, conversation_links_task, documents_chat_task
from gui.passages import QUERIES, passage_snippet, passage_title
from gui.worker import submit_held


class SourcesPanel(QWidget):
    """The passages a reply was given: a one-line header that expands into the list."""

    def __init__(self, window, parent=None) -> None:
        super().__init__(parent)
        self.window_ = window
        self.toggle = QToolButton()
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._expand)
        self.passages: list = []  # what the rows show
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setMaximumHeight(170)
        self.list.itemActivated.connect(self._open)
        self.list.itemDoubleClicked.connect(self._open)
        self.list.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.toggle)
        layout.addWidget(self.list)
        self.hide()

    def show_passages(self, passages: list, label: str = "this reply") -> None:
        self.passages = list(passages)  # by row (no item setData: see gui/documents/files_table.py)
        self.list.clear()
        if not passages:
            self.hide()
            return
        for p in passages:
            item = QListWidgetItem(f"{passage_title(p)}\n{passage_snippet(p, 300)}")
            item.setToolTip(f"{p.path}\nDouble-click to open the passage in its file")
            self.list.addItem(item)
        self.toggle.setText(f"Sources of {label}: {len(passages)} passage(s) — the reply cites them as [1], [2]…")
        self.show()

    def _expand(self, on: bool) -> None:
        self.list.setVisible(on)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def _open(self, item: QListWidgetItem) -> None:
        from gui.passages import PassageDialog

        PassageDialog(self.window_, self.passages[self.list.row(item)], self).exec()

    def open_number(self, number: int) -> bool:
        """Open the passage cited as [number] (False: there is none)."""
        for row, passage in enumerate(self.passages):
            if passage.number == number:
                self._open(self.list.item(row))
                return True
        return False


class DocumentsBar(QWidget):
    passages_changed = Signal()  # a reply's passages arrived: its "[n]" become links

    def __init__(self, window, parent=None) -> None:
        super().__init__(parent)
        self.window_ = window
        self.conversation_id: int | None = None
        self.selected: set[int] = set()  # collection ids this conversation uses
        self.collections: list = []
        self.passages: dict[int, list] = {}  # reply message id -> its passages
        self._tasks: set = set()
        self.sources = SourcesPanel(window)
        self.button = QToolButton()
        self.button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu = QMenu(self.button)
        self.menu.aboutToShow.connect(self._fill_menu)
        self.button.setMenu(self.menu)
        self.button.setToolTip("Collections of your documents this conversation answers from (make them in the "
                               "Documents view)")
        self.use = QCheckBox("Use documents for this message")
        self.use.setChecked(True)
        self.use.setToolTip("Off: the next reply is written without looking at the documents")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Documents:"))
        layout.addWidget(self.button)
        layout.addWidget(self.use)
        layout.addStretch(1)
        self._show_state()
        self.refresh_collections()

    # -- the engine side ---------------------------------------------------------------------------------
    def _run(self, fn, done=None, **kwargs):
        return submit_held(self.window_.client, self._tasks, fn, on_error=self.window_.show_error, done=done,
                           device=QUERIES, **kwargs)

    def refresh_collections(self) -> None:
        self._run(collections_task, done=self._on_collections, edit=CollectionEdit())

    def _on_collections(self, overview) -> None:
        self.collections = overview.collections
        known = {c.id for c in self.collections}
        self.selected &= known  # a collection deleted meanwhile
        self._show_state()

    # -- per conversation --------------------------------------------------------------------------------
    def show_conversation(self, conversation_id: int | None, reply_ids: list[int]) -> None:
        """A stored conversation was opened (None: a new chat): its collections and its replies' passages."""
        self.conversation_id = conversation_id
        self.passages = {}
        self.sources.show_passages([])
        if conversation_id is None:
            self.selected = set()
            self._show_state()
            return
        self._run(conversation_links_task, done=lambda links: self._on_links(conversation_id, links),
                  conversation_id=conversation_id, message_ids=[i for i in reply_ids if i is not None])

    def _on_links(self, conversation_id: int, links) -> None:
        if conversation_id != self.conversation_id:
            return  # another conversation was opened meanwhile
        self.selected = set(links.collection_ids)
        self.passages.update(links.passages)
        self.passages_changed.emit()
        self._show_state()
        if self.passages:
            last = max(self.passages)
            self.sources.show_passages(self.passages[last], "the last grounded reply")

    def attach(self, conversation_id: int | None) -> None:
        """A new chat got stored as ``conversation_id``: keep the collections chosen before it existed."""
        if conversation_id is not None and conversation_id != self.conversation_id:
            self.conversation_id = conversation_id
            if self.selected:
                self._run(conversation_links_task, conversation_id=conversation_id,
                          set_collections=sorted(self.selected))

    def _toggle(self, collection_id: int, on: bool) -> None:
        (self.selected.add if on else self.selected.discard)(collection_id)
        self._show_state()
        if self.conversation_id is not None:
            self._run(conversation_links_task, conversation_id=self.conversation_id,
                      set_collections=sorted(self.selected))

    # -- replies -----------------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return bool(self.selected) and self.use.isChecked()

    def reply_task(self, chat_task):
        """(task function, extra keyword arguments) for the next reply.

        The switch is for one message: once a reply has started without the documents, it is on again."""
        if not self.active:
            self.use.setChecked(True)
            return chat_task, {}
        return documents_chat_task, {"retrieval": RetrievalConfig(collections=tuple(sorted(self.selected)))}

    def reply_finished(self, reply_id: int | None, result) -> None:
        passages = list(getattr(result, "passages", None) or [])
        if not passages:
            return
        if reply_id is not None:
            self.passages[reply_id] = passages
            self.passages_changed.emit()
            self._run(conversation_links_task, conversation_id=self.conversation_id or 0,
                      save_passages={reply_id: passages})
        self.sources.show_passages(passages, "the last reply")

    def show_reply(self, reply_id: int | None) -> None:
        """A reply was selected in the thread: show its passages (if it had any)."""
        if reply_id in self.passages:
            self.sources.show_passages(self.passages[reply_id], "the selected reply")

    def extend_menu(self, menu: QMenu, reply_id: int | None) -> None:
        """A reply's context menu: one entry per passage it cites, opening it in its file."""
        passages = self.passages.get(reply_id, []) if reply_id is not None else []
        if passages:
            menu.addSeparator()
        for p in passages:
            menu.addAction(f"Open source {passage_title(p)}", lambda p=p: self.open_passage(p))

    def cited(self, reply_id: int | None) -> frozenset[int]:
        """The numbers a reply may cite: those of the passages it was given."""
        return frozenset(p.number for p in self.passages.get(reply_id, [])) if reply_id is not None else frozenset()

    def open_cited(self, reply_id: int | None, number: int) -> bool:
        """Open the passage a reply cites as [number] (False: it has none)."""
        passage = next((p for p in self.passages.get(reply_id, []) if p.number == number), None)
        if passage is not None:
            self.open_passage(passage)
        return passage is not None

    def open_passage(self, passage) -> None:
        from gui.passages import PassageDialog

        PassageDialog(self.window_, passage, self).exec()

    # -- the menu ----------------------------------------------------------------------------------------
    def _fill_menu(self) -> None:
        self.menu.clear()
        if not self.collections:
            empty = self.menu.addAction("No collections yet: make one in the Documents view")
            empty.setEnabled(False)
        for c in self.collections:
            action = QAction(f"{c.name}  ({c.indexed} files, {c.chunks} passages)", self.menu)
            action.setCheckable(True)
            action.setChecked(c.id in self.selected)
            action.toggled.connect(lambda on, cid=c.id: self._toggle(cid, on))
            self.menu.addAction(action)
        self.refresh_collections()  # for next time: collections made or indexed meanwhile

    def _show_state(self) -> None:
        names = [c.name for c in self.collections if c.id in self.selected]
        self.button.setText(", ".join(names) if names else "none")
        self.use.setEnabled(bool(names))
