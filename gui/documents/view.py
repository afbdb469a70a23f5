"""The Documents view: collections of your files, indexed in the background, searchable, usable in the chat.

Left: the collections (New, Rename, Delete). Right: the chosen collection's
files with their states and reasons (drop files or folders on the list, or use
Add files…/Add folder…), the indexing progress with an estimate, and a search box.

Indexing runs on the scheduler's own "documents" thread, so it never waits for,
or holds up, the chat's model; quick work (lists, searches) runs on a second
thread so it is not stuck behind a long indexing run. An indexing run stopped by
closing the app resumes when the app starts again (the files still waiting are
the work left).
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QInputDialog, QLabel, QListWidget, QListWidgetItem, QMenu,
                               QMessageBox, QProgressBar, QPushButton, QSplitter, QVBoxLayout, QWidget)

from engine.rag.index import IndexRequest
from engine.rag.search import SearchRequest
from engine.rag.tasks import CollectionEdit, collections_task, index_task, pending_task, search_task, warm_task
from gui.colors import RED, accent, css, muted_label
from gui.passages import INDEXING, QUERIES
from gui.documents.files_table import FilesTable
from gui.documents.search_panel import SearchPanel
from gui.worker import connect, submit_held

REFRESH_WHILE_INDEXING_MS = 1500
LIVE_FILE_LIST = 2000  # bigger collections refresh their file list when indexing ends, not every tick


class DocumentsView(QWidget):
    def __init__(self, window) -> None:
        super().__init__()
        self.window_ = window
        self.collections: list = []
        self.current = None  # the Collection shown
        self.indexing_id: int | None = None  # the collection being indexed
        self.index_queue: list[int] = []
        self.index_run = None  # the indexing task's TaskSignals
        self._tasks: set = set()  # quick tasks in flight (kept alive until they end)
        self._build()
        self._refresh_timer = QTimer(self, interval=REFRESH_WHILE_INDEXING_MS, timeout=self._refresh_files)
        self.refresh(select=QSettings().value("documents/collection", None, type=int))
        self._run(warm_task, device=INDEXING)  # the embedding model, loaded now rather than at the first search
        self._run(pending_task, done=self._resume)

    # -- layout ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.list = QListWidget()
        self.list.currentItemChanged.connect(self._on_selected)
        self.new_button = QPushButton("New…")
        new_menu = QMenu(self.new_button)
        new_menu.addAction("New collection…", self.new_collection)
        new_menu.addAction("New collection with another embedding model…", self.new_collection_with_model)
        self.new_button.setMenu(new_menu)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self.rename_collection)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(self.delete_collection)
        left_buttons = QHBoxLayout()
        for b in (self.new_button, self.rename_button, self.delete_button):
            left_buttons.addWidget(b)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(QLabel("<b>Collections</b>"))
        left_layout.addWidget(self.list, 1)
        left_layout.addLayout(left_buttons)

        self.title = QLabel("")
        self.title.setWordWrap(True)
        self.add_files_button = QPushButton("Add files…")
        self.add_files_button.clicked.connect(self.add_files)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.clicked.connect(self.add_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected files from the collection (the files stay on disk)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.rescan_button = QPushButton("Re-scan")
        self.rescan_button.setToolTip("Index new and changed files (unchanged files are not read again)")
        self.rescan_button.clicked.connect(lambda: self.start_indexing(self.current.id) if self.current else None)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop indexing; what is done is kept, and Re-scan carries on")
        self.stop_button.clicked.connect(self.stop_indexing)
        bar = QHBoxLayout()
        for b in (self.add_files_button, self.add_folder_button, self.remove_button, self.rescan_button,
                  self.stop_button):
            bar.addWidget(b)
        bar.addStretch(1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.progress_label = QLabel("")
        muted_label(self.progress_label)
        self.progress_label.setWordWrap(True)
        self.files = FilesTable()
        self.files.paths_dropped.connect(self.add_paths)
        self.files.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.files.customContextMenuRequested.connect(self._files_menu)
        self.search = SearchPanel()
        self.search.search_requested.connect(self.run_search)
        self.search.passage_opened.connect(self.open_passage)
        self.empty_hint = QLabel("Make a collection with <b>New…</b>, then drop files or folders on it: text, "
                                 "Markdown, reST, HTML, PDF, Word (.docx) and source code. Chat with it by choosing "
                                 "it under <b>Documents</b> in the chat.")
        self.empty_hint.setWordWrap(True)
        right_split = QSplitter(Qt.Orientation.Vertical)
        right_split.addWidget(self.files)
        right_split.addWidget(self.search)
        right_split.setSizes([320, 260])
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.title)
        right_layout.addLayout(bar)
        right_layout.addWidget(self.progress)
        right_layout.addWidget(self.progress_label)
        right_layout.addWidget(self.empty_hint)
        right_layout.addWidget(right_split, 1)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([220, 780])
        outer = QVBoxLayout(self)
        outer.addWidget(split)
        self.setAcceptDrops(True)
        self._update_buttons()

    # -- running engine tasks ----------------------------------------------------------------------------
    def _run(self, fn, *, done=None, device: str = QUERIES, **kwargs):
        return submit_held(self.window_.client, self._tasks, fn, on_error=self.window_.show_error, done=done,
                           device=device, **kwargs)

    def refresh(self, select: int | None = None, edit: CollectionEdit | None = None, with_files: bool = True) -> None:
        show = select if select is not None else (self.current.id if self.current else None)
        self._run(collections_task, done=self._show_overview, edit=edit or CollectionEdit(), show=show,
                  with_files=with_files)

    def _refresh_files(self) -> None:
        if self.current is not None:
            self.refresh(with_files=self.current.files <= LIVE_FILE_LIST)

    def _show_overview(self, overview) -> None:
        self.collections = overview.collections
        self.current = overview.selected
        self.list.blockSignals(True)
        self.list.clear()
        for c in overview.collections:
            item = QListWidgetItem(self._label(c))
            self.list.addItem(item)
            if overview.selected and c.id == overview.selected.id:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        if self.current is None and overview.collections:
            self.list.setCurrentRow(0)  # shows the first collection (a refresh through _on_selected)
        if overview.files is not None:
            self.files.show_files(overview.files)
        self._show_title()
        if overview.message:
            self.progress_label.setText(overview.message)
        self._update_buttons()

    def _label(self, c) -> str:
        state = " · indexing…" if c.id == self.indexing_id else (f" · {c.pending} waiting" if c.pending else "")
        return f"{c.name}\n{c.indexed}/{c.files} files, {c.chunks} passages{state}"

    def _show_title(self) -> None:
        c = self.current
        if c is None:
            self.title.setText("")
            return
        red = css(accent(self.palette(), RED))
        problems = f", <span style='color:{red}'>{c.problems} not readable or missing</span>" if c.problems else ""
        model = c.embedder or "all-MiniLM-L6-v2"
        self.title.setText(f"<b>{c.name}</b> — {c.indexed} of {c.files} files indexed, {c.chunks} passages"
                           f"{problems}. Embeddings: {model}.")

    def _update_buttons(self) -> None:
        has = self.current is not None
        for b in (self.rename_button, self.delete_button, self.add_files_button, self.add_folder_button,
                  self.remove_button, self.rescan_button):
            b.setEnabled(has)
        indexing = self.index_run is not None
        self.stop_button.setEnabled(indexing)
        self.progress.setVisible(indexing)
        self.search.setEnabled(has)
        self.empty_hint.setVisible(not self.collections)

    def _on_selected(self, item, _previous=None) -> None:
        if item is not None:
            collection_id = self.collections[self.list.row(item)].id  # rows follow self.collections
            QSettings().setValue("documents/collection", collection_id)
            self.search.results.clear()
            self.refresh(select=collection_id)

    # -- collections -------------------------------------------------------------------------------------
    def new_collection(self, embedder: str = "") -> None:
        name, ok = QInputDialog.getText(self, "New collection", "Name of the collection:")
        if ok and name.strip():
            self.refresh(edit=CollectionEdit("create", name=name, embedder=embedder))

    def new_collection_with_model(self) -> None:
        """A local sentence-embedding model folder (config.json, weights, tokenizer) instead of all-MiniLM-L6-v2."""
        folder = QFileDialog.getExistingDirectory(self, "Choose a sentence-embedding model folder")
        if folder:
            self.new_collection(folder)

    def rename_collection(self) -> None:
        if self.current is None:
            return
        name, ok = QInputDialog.getText(self, "Rename collection", "New name:", text=self.current.name)
        if ok and name.strip():
            self.refresh(edit=CollectionEdit("rename", collection=self.current.id, name=name))

    def delete_collection(self) -> None:
        if self.current is None:
            return
        answer = QMessageBox.question(
            self, "Delete collection", f"Delete the collection “{self.current.name}” and its index? Your files "
            "stay where they are; conversations that used it keep their text.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer != QMessageBox.StandardButton.Yes:
            return
        collection_id = self.current.id
        self.index_queue = [i for i in self.index_queue if i != collection_id]
        if self.indexing_id == collection_id and self.index_run is not None:
            self.index_run.cancel()
        self.current = None
        self.refresh(edit=CollectionEdit("delete", collection=collection_id))

    # -- files -------------------------------------------------------------------------------------------
    def add_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add files to the collection")
        if paths:
            self.add_paths(paths)

    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the collection")
        if folder:
            self.add_paths([folder])

    def add_paths(self, paths: list[str]) -> None:
        if self.current is None:
            self.window_.show_notice("Make or choose a collection first, then drop the files on it.")
            return
        collection_id = self.current.id
        task = self._run(collections_task, edit=CollectionEdit("add", collection=collection_id, paths=tuple(paths)),
                         show=collection_id)
        task.done.connect(lambda overview: (self._show_overview(overview), self.start_indexing(collection_id)))

    def remove_selected(self) -> None:
        paths = self.files.selected_paths()
        if self.current is None or not paths:
            self.window_.show_notice("Select the files to remove in the list first.")
            return
        self.refresh(edit=CollectionEdit("remove", collection=self.current.id, paths=tuple(paths)))

    def _files_menu(self, pos) -> None:
        paths = self.files.selected_paths()
        if self.current is None or not paths:
            return
        collection_id = self.current.id
        menu = QMenu(self)
        menu.addAction("Read again", lambda: self._reread(collection_id, paths))
        menu.addAction("Remove from the collection", self.remove_selected)
        menu.exec(self.files.viewport().mapToGlobal(pos))

    def _reread(self, collection_id: int, paths: list[str]) -> None:
        task = self._run(collections_task, edit=CollectionEdit("rescan", collection=collection_id, paths=tuple(paths)),
                         show=collection_id)
        task.done.connect(lambda overview: (self._show_overview(overview), self.start_indexing(collection_id)))

    # -- indexing ----------------------------------------------------------------------------------------
    def _resume(self, collection_ids: list[int]) -> None:
        for collection_id in collection_ids:
            self.start_indexing(collection_id)
        if collection_ids:
            self.progress_label.setText("Carrying on with indexing that was stopped when Hearth last closed…")

    def start_indexing(self, collection_id: int) -> None:
        if collection_id == self.indexing_id or collection_id in self.index_queue:
            return
        self.index_queue.append(collection_id)
        if self.index_run is None:
            self._next_index()

    def _next_index(self) -> None:
        if not self.index_queue:
            return
        collection_id = self.index_queue.pop(0)
        self.indexing_id = collection_id
        self.progress.setValue(0)
        self.index_run = self._run(index_task, device=INDEXING, request=IndexRequest(collection_id))
        connect(self.index_run, progress=self._on_progress, done=self._on_indexed,
                cancelled=lambda _partial: self.progress_label.setText("Indexing stopped; Re-scan carries on."),
                ended=self._on_index_ended)
        self._refresh_timer.start()
        self._update_buttons()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress_label.setText(message)

    def _on_indexed(self, result) -> None:
        text = f"{result.collection}: {result.summary()}"
        if result.notice:
            text += " " + result.notice
        self.progress_label.setText(text)

    def _on_index_ended(self) -> None:
        self.index_run = None
        self.indexing_id = None
        self._refresh_timer.stop()
        self.refresh()
        self._update_buttons()
        self._next_index()

    def stop_indexing(self) -> None:
        self.index_queue.clear()
        if self.index_run is not None:
            self.index_run.cancel()

    # -- search ------------------------------------------------------------------------------------------
    def run_search(self, query: str, mode: str) -> None:
        if self.current is None:
            return
        try:
            request = SearchRequest(query, (self.current.id,), k=10, mode=mode)
        except ValueError as exc:
            self.window_.show_error(str(exc))
            return
        self._run(search_task, done=self.search.show_passages, request=request)

    def open_passage(self, passage) -> None:
        from gui.passages import PassageDialog

        PassageDialog(self.window_, passage, self).exec()

    # -- drops anywhere on the view ----------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        from gui.file_drop_edit import local_paths

        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)
