"""Search every stored message (SQLite FTS5) and jump to the hit."""

from __future__ import annotations

import datetime as dt
import html

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout

from gui.colors import AMBER, css, muted, muted_label, palette_of, surface

HitRole = Qt.ItemDataRole.UserRole + 1
START, END = "\x02", "\x03"  # match markers: characters no message contains


def highlighted(snippet: str, palette: QPalette | None = None) -> str:
    """A search snippet as HTML, the matched words in bold on an amber tint of the palette's base."""
    mark = css(surface(palette or palette_of(), AMBER, 0.3))
    return html.escape(snippet).replace(START, f"<b style='background:{mark}'>").replace(END, "</b>")


class SearchDialog(QDialog):
    hit_chosen = Signal(int, int)  # conversation id, message id

    def __init__(self, history, parent=None) -> None:
        super().__init__(parent)
        self.history = history
        self.setWindowTitle("Search conversations")
        self.resize(640, 460)
        self.query = QLineEdit()
        self.query.setPlaceholderText("Words to find in any message (all must occur)")
        self.query.setClearButtonEnabled(True)
        self.results = QListWidget()
        self.results.setWordWrap(True)
        self.results.setAlternatingRowColors(True)
        self.status = QLabel("")
        muted_label(self.status)
        layout = QVBoxLayout(self)
        layout.addWidget(self.query)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.status)
        self._timer = QTimer(self, singleShot=True, interval=200, timeout=self.run_search)
        self.query.textChanged.connect(lambda _: self._timer.start())
        self.query.returnPressed.connect(self._open_first)
        self.results.itemActivated.connect(self._choose)

    def run_search(self) -> None:
        self.results.clear()
        text = self.query.text().strip()
        if not text:
            self.status.setText("")
            return
        store = self.history.store
        hits = self.history.safely(store.search, text, limit=200, marks=(START, END),
                                   default=[]) if store is not None else []
        pal, grey = self.results.palette(), css(muted(self.results.palette()))
        for hit in hits:
            when = dt.datetime.fromtimestamp(hit.created_at).strftime("%Y-%m-%d")
            who = "You" if hit.role == "user" else hit.role.capitalize()
            plain = hit.snippet.replace(START, "").replace(END, "")
            item = QListWidgetItem()  # the label below paints it; the plain text is the tooltip
            item.setToolTip(f"{hit.conversation_title or 'New chat'}  ·  {when}\n{who}: {plain}")
            item.setData(HitRole, (hit.conversation_id, hit.message_id))
            label = QLabel(f"<b>{html.escape(hit.conversation_title or 'New chat')}</b>"
                           f" <span style='color:{grey}'>· {when}</span><br>{who}: {highlighted(hit.snippet, pal)}")
            label.setWordWrap(True)
            label.setContentsMargins(6, 3, 6, 3)
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            item.setSizeHint(label.sizeHint())
            self.results.addItem(item)
            self.results.setItemWidget(item, label)
        self.status.setText(f"{len(hits)} message(s)" + (" (first 200)" if len(hits) == 200 else "")
                            if hits else "No message contains all of these words.")
        if hits:
            self.results.setCurrentRow(0)

    def _open_first(self) -> None:
        self._timer.stop()
        if self.results.count() == 0:
            self.run_search()
        item = self.results.currentItem() or self.results.item(0)
        if item is not None:
            self._choose(item)

    def _choose(self, item: QListWidgetItem) -> None:
        conversation_id, message_id = item.data(HitRole)
        self.hit_chosen.emit(conversation_id, message_id)
        self.accept()
