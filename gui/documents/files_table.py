"""A collection's files: name, state, passages, and why a file was not indexed; takes dropped files/folders."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem

from gui.colors import AMBER, BLUE, RED, accent, muted
from gui.file_drop_edit import local_paths

STATUS_TEXT = {"indexed": "Indexed", "pending": "Waiting", "skipped": "Not readable", "missing": "Missing",
               "excluded": "Removed"}
STATUS_HUE = {"skipped": RED, "missing": AMBER, "pending": BLUE}  # "excluded" is muted (gui/colors.py)


class FilesTable(QTreeWidget):
    """Sorted here, in Python, by the clicked column (passages as numbers), not by QTreeWidget.

    Plain items with texts and tooltips only (the path is the first column's tooltip): no item ``setData``
    and no QTreeWidgetItem subclass, which PySide6 6.12.0 mishandled badly enough to abort Python
    (pyproject.toml leaves that version out); items go in with one ``addTopLevelItems`` call."""

    paths_dropped = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["File", "State", "Passages", "Details"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAcceptDrops(True)
        self._files: list = []
        self._sort = (0, Qt.SortOrder.AscendingOrder)
        header = self.header()
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        header.sectionClicked.connect(self._sort_by)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.setColumnWidth(0, 260)
        self.setColumnWidth(1, 100)
        self.setColumnWidth(2, 70)

    def _sort_by(self, column: int) -> None:
        same = self._sort[0] == column and self._sort[1] == Qt.SortOrder.AscendingOrder
        self._sort = (column, Qt.SortOrder.DescendingOrder if same else Qt.SortOrder.AscendingOrder)
        self.header().setSortIndicator(*self._sort)
        self.show_files(self._files)

    def _key(self, f):
        column = self._sort[0]
        if column == 2:
            return f.chunk_count if f.status == "indexed" else -1
        if column == 1:
            return STATUS_TEXT.get(f.status, f.status)
        if column == 3:
            return f.reason.lower()
        return Path(f.path).name.lower()

    def show_files(self, files) -> None:
        self._files = list(files)
        ordered = sorted(self._files, key=self._key, reverse=self._sort[1] == Qt.SortOrder.DescendingOrder)
        self.clear()
        items = []
        for f in ordered:
            detail = f.reason
            passages = str(f.chunk_count) if f.status == "indexed" else ""
            item = QTreeWidgetItem([Path(f.path).name, STATUS_TEXT.get(f.status, f.status), passages, detail])
            item.setToolTip(0, f.path)  # the full path; selected_paths() reads it back
            item.setToolTip(3, detail)
            if f.status in STATUS_HUE or f.status == "excluded":
                hue = STATUS_HUE.get(f.status)
                item.setForeground(1, QBrush(accent(self.palette(), hue) if hue else muted(self.palette())))
            items.append(item)
        self.addTopLevelItems(items)  # one insertion: 10,000 files in a fraction of a second

    def selected_paths(self) -> list[str]:
        return [i.toolTip(0) for i in self.selectedItems()]

    # -- dropping files and folders ----------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.paths_dropped.emit(paths)
