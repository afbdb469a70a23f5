"""The Documents view against a real scheduler: resume, file states, drop, search, passage dialog, collections."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory):
    from tiny_embedder import make_tiny_embedder

    return make_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder"))


@pytest.fixture
def window():
    from texttools_fakes import FakeWindow

    w = FakeWindow(None)
    yield w
    w.close()


@pytest.fixture
def notes(tmp_path, embedder_dir):
    """A collection whose files were found but not indexed yet (as if the app closed mid-run)."""
    from engine.rag import collections as c
    from engine.rag.db import DocsDatabase
    from engine.rag.scan import scan_collection

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "bank.md").write_text("# Loans\n\nThe bank by the river lends money for a boat.\n")
    (folder / "sea.txt").write_text("Ships sail over the sea at night.\n")
    (folder / "empty.txt").write_text("")
    with DocsDatabase() as db:
        collection = c.create_collection(db, "Notes", embedder=str(embedder_dir))
        c.add_sources(db, collection.id, [str(folder)])
        scan_collection(db, collection.id)
    return folder


def _rows(view):
    table = view.files
    return {table.topLevelItem(i).text(0): (table.topLevelItem(i).text(1), table.topLevelItem(i).text(3))
            for i in range(table.topLevelItemCount())}


def test_documents_view_resumes_lists_searches_and_opens_passages(window, qtbot, notes, monkeypatch, tmp_path):
    from gui.passages import PassageDialog
    from gui.documents.view import DocumentsView

    view = DocumentsView(window)
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitUntil(lambda: view.current is not None and view.current.indexed == 2 and view.index_run is None,
                    timeout=60000)
    rows = _rows(view)
    assert rows["bank.md"][0] == "Indexed" and rows["empty.txt"] == ("Not readable", "the file is empty.")
    assert "2 of 3 files indexed" in view.title.text()

    (tmp_path / "extra.md").write_text("A cat sleeps on the mat by the river.\n")
    view.add_paths([str(tmp_path / "extra.md")])
    qtbot.waitUntil(lambda: "extra.md" in _rows(view) and _rows(view)["extra.md"][0] == "Indexed", timeout=60000)
    assert "1 file(s) indexed" in view.progress_label.text()

    view.search.query.setText("river money")
    view.search.mode.setCurrentIndex(1)  # words only: the tiny embedder's vectors are random
    view.search._search()
    qtbot.waitUntil(lambda: view.search.results.count() > 0, timeout=20000)
    first = view.search.results.item(0)
    assert "bank.md" in first.text()
    passage = view.search.passages[0]
    view.grab().save(str(tmp_path / "documents.png"))

    dialog = PassageDialog(window, passage, view)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.position.text().startswith("Line"), timeout=20000)
    selections = dialog.text.extraSelections()
    cursor = selections[0].cursor
    assert cursor.selectedText() == passage.text.replace("\n", "\u2029")
    assert "# Loans" in dialog.text.toPlainText()

    view.files.topLevelItem(0).setSelected(True)
    removed = view.files.topLevelItem(0).text(0)
    view.remove_selected()
    qtbot.waitUntil(lambda: _rows(view).get(removed, ("",))[0] in ("Removed", ""), timeout=20000)
    assert not window.errors


def test_collections_are_made_renamed_and_deleted_from_the_view(window, qtbot, monkeypatch, embedder_dir):
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    from gui.documents.view import DocumentsView

    view = DocumentsView(window)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: not view._tasks, timeout=20000)
    assert view.empty_hint.isVisibleTo(view)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Manuals", True))
    view.new_collection()
    qtbot.waitUntil(lambda: view.current is not None and view.current.name == "Manuals", timeout=20000)
    assert view.list.count() == 1 and view.add_files_button.isEnabled()
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("manuals", True))
    view.new_collection()  # a duplicate name: one clear message
    qtbot.waitUntil(lambda: bool(window.errors), timeout=20000)
    assert "already a collection" in window.errors[-1]
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(embedder_dir))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Own model", True))
    view.new_collection_with_model()
    qtbot.waitUntil(lambda: view.current is not None and view.current.name == "Own model", timeout=20000)
    assert view.current.embedder == str(embedder_dir) and embedder_dir.name in view.title.text()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(embedder_dir.parent))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Wrong model", True))
    view.new_collection_with_model()  # not a model folder: one clear message, nothing made
    qtbot.waitUntil(lambda: "not a model folder" in window.errors[-1], timeout=20000)
    view.list.setCurrentRow(0)
    qtbot.waitUntil(lambda: view.current is not None and view.current.name == "Manuals", timeout=20000)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Handbooks", True))
    view.rename_collection()
    qtbot.waitUntil(lambda: view.current is not None and view.current.name == "Handbooks", timeout=20000)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    view.delete_collection()
    qtbot.waitUntil(lambda: view.list.count() == 1 and not view._tasks, timeout=20000)
    assert [c.name for c in view.collections] == ["Own model"]


def test_the_file_list_sorts_passages_as_numbers_and_keeps_paths(qtbot):
    from engine.rag.collections import FileEntry
    from gui.documents.files_table import FilesTable

    table = FilesTable()
    qtbot.addWidget(table)
    table.show_files([FileEntry(1, "/d/b.md", 1, 0, "indexed", "", 9, 1),
                      FileEntry(2, "/d/a.md", 1, 0, "indexed", "", 10, 1),
                      FileEntry(3, "/d/c.txt", 1, 0, "skipped", "the file is empty.", 0, 1)])
    assert [table.topLevelItem(i).text(0) for i in range(3)] == ["a.md", "b.md", "c.txt"]
    table._sort_by(2)
    assert [table.topLevelItem(i).text(2) for i in range(3)] == ["", "9", "10"]
    table._sort_by(2)
    assert [table.topLevelItem(i).text(2) for i in range(3)] == ["10", "9", ""]
    table.topLevelItem(0).setSelected(True)
    assert table.selected_paths() == ["/d/a.md"]
