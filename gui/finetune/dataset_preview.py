"""The data side of the fine-tuning view: a drop list of files and folders, and the dataset preview.

``FileDropList`` accepts files and folders dropped from the desktop (or added
with the buttons next to it). ``DatasetPreview`` shows every example with its
source file, kind, split and token count, the totals, and what was skipped and why.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QListWidget,
                               QPushButton, QSplitter, QTableView, QVBoxLayout, QWidget)

from engine.finetune.sources import skipped_summary
from gui.colors import muted_label

COLUMNS = ("Source", "Kind", "Split", "Tokens", "Text")
LINES_SHOWN = 200  # skipped lines of one file listed one by one (all are counted)


class FileDropList(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setToolTip("Drop files or folders here")
        self.hint = QLabel("Drop files or folders here: text, Markdown, code, PDF, DOCX, JSON/JSONL, CSV.")
        self.hint.setWordWrap(True)
        muted_label(self.hint)
        add_files, add_folder = QPushButton("Add files…"), QPushButton("Add folder…")
        remove, clear = QPushButton("Remove"), QPushButton("Clear")
        add_files.clicked.connect(self._add_files)
        add_folder.clicked.connect(self._add_folder)
        remove.clicked.connect(self._remove_selected)
        clear.clicked.connect(self.clear)
        buttons = QHBoxLayout()
        for b in (add_files, add_folder, remove, clear):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.hint)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

    def paths(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def add_paths(self, paths: list[str]) -> None:
        known = set(self.paths())
        added = False
        for p in paths:
            p = str(Path(p))
            if p not in known:
                self.list.addItem(p)
                known.add(p)
                added = True
        if added:
            self.changed.emit()

    def clear(self) -> None:
        if self.list.count():
            self.list.clear()
            self.changed.emit()

    def _remove_selected(self) -> None:
        rows = sorted((self.list.row(i) for i in self.list.selectedItems()), reverse=True)
        for row in rows:
            self.list.takeItem(row)
        if rows:
            self.changed.emit()

    def _add_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add training files")
        self.add_paths(files)

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of training files")
        if folder:
            self.add_paths([folder])

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        self.add_paths([p for p in paths if p])
        event.acceptProposedAction()


class PreviewModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list = []  # PreviewRow objects

    def set_rows(self, rows: list) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        values = (Path(row.source.split(":")[0].replace(" (end)", "")).name + _suffix(row.source), row.kind,
                  row.split, f"{'~' if getattr(row, 'estimated', False) else ''}{row.tokens:,}", row.text)
        if role == Qt.ItemDataRole.DisplayRole:
            return values[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            if index.column() == 3 and getattr(row, "estimated", False):
                return "Counted on the part read so far; the rest estimated from the file's size"
            return row.source if index.column() == 0 else row.text
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _suffix(source: str) -> str:
    """':12' for a line, '#3' for a JSON item, ' (end)' for the held-out end of a text."""
    name = source.rsplit("/", 1)[-1]
    for mark in (":", "#"):
        if mark in name:
            return mark + name.split(mark, 1)[1]
    return " (end)" if source.endswith(" (end)") else ""


class DatasetPreview(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.totals = QLabel("No dataset yet.")
        self.totals.setWordWrap(True)
        self.model = PreviewModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        for col in range(4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.skipped = QListWidget()
        self.skipped.setToolTip("Files and lines left out, and why")
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        self.skipped_label = QLabel("Skipped and notices")
        lower_layout.addWidget(self.skipped_label)
        lower_layout.addWidget(self.skipped)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(lower)
        split.setSizes([300, 90])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.totals)
        layout.addWidget(split, 1)

    def show_dataset(self, built) -> None:
        from engine.finetune.data import about  # data.py imports torch: not at the window's start-up

        s = built.stats
        train, val = about(s, "train"), about(s, "val")
        self.totals.setText(
            f"<b>{train}{s['train_examples']:,}</b> training and <b>{val}{s['val_examples']:,}</b> validation "
            f"sequences · {train}{s['train_tokens']:,} + {val}{s['val_tokens']:,} tokens · {s['records']:,} "
            f"examples from {s['files_used']} of {s['files']} files · {s['duplicates']} duplicates removed"
            + (" · <i>~ estimated from the sizes: a big corpus is read in full only as far as a run needs</i>"
               if train or val else ""))
        self.model.set_rows(built.rows)
        self.skipped.clear()
        for item in built.skipped:
            if not item.lines:
                self.skipped.addItem(f"Skipped {item.path}: {item.reason}")
                continue
            self.skipped.addItem(f"Skipped {item.path}: {item.headline}:")
            for where, why in item.lines[:LINES_SHOWN]:
                self.skipped.addItem(f"        {where}: {why}")
            if item.count > LINES_SHOWN:
                self.skipped.addItem(f"        … and {item.count - LINES_SHOWN:,} more")
        for notice in built.notices:
            self.skipped.addItem(notice)
        self.skipped_label.setText(f"Skipped: {skipped_summary(built.skipped)} · notices: {len(built.notices)}")

    def show_message(self, text: str) -> None:
        self.totals.setText(text)
        self.model.set_rows([])
        self.skipped.clear()
