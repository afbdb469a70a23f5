"""Search a collection: a query box, the ranked passages (with their BM25 and vector ranks), open one."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, \
    QWidget

from gui.colors import muted_label
from gui.passages import passage_snippet, passage_title

MODES = [("Hybrid (words + meaning)", "hybrid"), ("Words only (BM25)", "bm25"), ("Meaning only (vectors)", "vector")]


class SearchPanel(QWidget):
    search_requested = Signal(str, str)  # query, mode
    passage_opened = Signal(object)  # the Passage

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search this collection (Enter)")
        self.query.returnPressed.connect(self._search)
        self.mode = QComboBox()
        for label, key in MODES:
            self.mode.addItem(label, key)
        self.passages: list = []  # what the rows show
        self.results = QListWidget()
        self.results.setWordWrap(True)
        self.results.setAlternatingRowColors(True)
        self.results.itemActivated.connect(self._open)
        self.results.itemDoubleClicked.connect(self._open)
        self.status = QLabel("")
        muted_label(self.status)
        row = QHBoxLayout()
        row.addWidget(self.query, 1)
        row.addWidget(self.mode)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.status)

    def _search(self) -> None:
        if self.query.text().strip():
            self.status.setText("Searching…")
            self.search_requested.emit(self.query.text(), self.mode.currentData())

    def show_passages(self, passages) -> None:
        self.passages = list(passages)  # by row (no item setData: see gui/documents/files_table.py)
        self.results.clear()
        for rank, passage in enumerate(passages, start=1):
            ranks = f"words #{passage.bm25_rank or '–'}, meaning #{passage.vector_rank or '–'}"
            item = QListWidgetItem(f"{rank}. {passage_title(passage)}   ({ranks})\n{passage_snippet(passage)}")
            item.setToolTip(passage.path)
            self.results.addItem(item)
        self.status.setText(f"{len(passages)} passage(s); double-click one to open it in its file."
                            if passages else "No passage matches.")

    def _open(self, item: QListWidgetItem) -> None:
        self.passage_opened.emit(self.passages[self.results.row(item)])
