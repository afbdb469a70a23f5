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
    paths_dropped = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["File", "State", "Passages", "Details"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAcceptDrops(True)
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        header = self.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.setColumnWidth(0, 260)
        self.setColumnWidth(1, 100)
        self.setColumnWidth(2, 70)

    def show_files(self, files) -> None:
        self.setSortingEnabled(False)
        self.clear()
        for f in files:
            detail = f.reason or ("" if f.status != "indexed" else "")
            item = QTreeWidgetItem([Path(f.path).name, STATUS_TEXT.get(f.status, f.status),
                                    str(f.chunk_count) if f.status == "indexed" else "", detail])
            item.setToolTip(0, f.path)
            item.setToolTip(3, detail)
            item.setData(0, Qt.ItemDataRole.UserRole, f.path)
            item.setData(2, Qt.ItemDataRole.DisplayRole, f.chunk_count if f.status == "indexed" else None)
            if f.status in STATUS_HUE or f.status == "excluded":
                hue = STATUS_HUE.get(f.status)
                item.setForeground(1, QBrush(accent(self.palette(), hue) if hue else muted(self.palette())))
            self.addTopLevelItem(item)
        self.setSortingEnabled(True)

    def selected_paths(self) -> list[str]:
        return [i.data(0, Qt.ItemDataRole.UserRole) for i in self.selectedItems()]

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
