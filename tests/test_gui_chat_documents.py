"""The chat with documents: collections per conversation, the per-message switch, each reply's sources."""

from __future__ import annotations

import pytest

from engine.rag.search import Passage
from test_gui_store_chat import fake_chat, fake_continue, fake_load, send, stream

PASSAGE_TEXT = "The bank by the river lends money."


def fake_documents_chat(session, *, on_text=None, on_progress=None, cancel=None, messages=(), retrieval=None,
                        system_prompt="", sampling=None, model_path=None):
    session.state.setdefault("grounded", []).append((messages[-1].content, retrieval.collections))
    result = stream(["The bank lends money [1]."], on_text, cancel)
    path = session.state["path"]
    result.passages = [Passage(1, "Notes", path, 0, 0, len(PASSAGE_TEXT), PASSAGE_TEXT, 0.03, 1, 2, number=1)]
    return result


@pytest.fixture
def make_window(qtbot, monkeypatch, tmp_path):
    import engine.tasks
    import gui.chat.documents
    import gui.chat.view
    from fake_window import open_main_window

    monkeypatch.setattr(engine.tasks, "load_task", fake_load)
    monkeypatch.setattr(gui.chat.view, "chat_task", fake_chat)
    monkeypatch.setattr(engine.tasks, "continue_task", fake_continue)
    monkeypatch.setattr(gui.chat.documents, "documents_chat_task", fake_documents_chat)
    (tmp_path / "bank.md").write_text(PASSAGE_TEXT + "\n")
    windows = []

    def make():
        win = open_main_window(qtbot)
        win.client.session.state["path"] = str(tmp_path / "bank.md")
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.close()


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory):
    """Collections made with the tiny embedder: the window loads their model when it starts (warm_task)."""
    from tiny_embedder import make_tiny_embedder

    return make_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder"))


def _collection(name: str, embedder_dir) -> int:
    from engine.rag import collections as c
    from engine.rag.db import DocsDatabase

    with DocsDatabase() as db:
        return c.create_collection(db, name, embedder=str(embedder_dir)).id


def test_replies_use_the_chosen_collections_show_their_sources_and_come_back(qtbot, make_window, tmp_path,
                                                                           embedder_dir):
    notes = _collection("Notes", embedder_dir)
    _collection("Other", embedder_dir)
    win = make_window()
    bar = win.chat.documents
    qtbot.waitUntil(lambda: len(bar.collections) == 2, timeout=20000)
    assert bar.button.text() == "none" and not bar.use.isEnabled()

    send(qtbot, win, "Plain question")  # no collection chosen: the ordinary chat
    assert "grounded" not in win.client.session.state and not bar.sources.isVisible()

    bar._fill_menu()
    action = next(a for a in bar.menu.actions() if a.text().startswith("Notes"))
    action.trigger()
    assert bar.button.text() == "Notes" and bar.use.isEnabled() and bar.active
    send(qtbot, win, "Who lends money?")
    assert win.client.session.state["grounded"] == [("Who lends money?", (notes,))]
    qtbot.waitUntil(lambda: bar.sources.isVisible(), timeout=10000)
    assert bar.sources.list.count() == 1 and "[1] bank.md" in bar.sources.list.item(0).text()
    reply_id = win.chat.model.items[-1].meta["id"]
    win.chat.resize(900, 700)
    bar.sources.toggle.setChecked(True)
    win.grab().save(str(tmp_path / "chat-documents.png"))

    from PySide6.QtWidgets import QMenu

    menu = QMenu()
    opened = []
    bar.open_passage = opened.append  # the dialog itself is tested with the Documents view
    bar.extend_menu(menu, reply_id)
    source = [a for a in menu.actions() if a.text().startswith("Open source [1] bank.md")]
    assert len(source) == 1
    source[0].trigger()
    assert opened and opened[0].text == PASSAGE_TEXT

    bar.use.setChecked(False)  # this message without the documents
    send(qtbot, win, "Thanks")
    assert len(win.client.session.state["grounded"]) == 1
    assert bar.use.isChecked(), "the switch is for one message"
    conversation_id = win.chat.saved.conversation_id
    qtbot.waitUntil(lambda: not bar._tasks, timeout=10000)
    win.close()

    again = make_window()
    bar = again.chat.documents
    again.chat.open_conversation(conversation_id)
    qtbot.waitUntil(lambda: bar.selected == {notes} and reply_id in bar.passages, timeout=20000)
    assert bar.passages[reply_id][0].text == PASSAGE_TEXT
    assert bar.sources.isVisibleTo(again) and bar.sources.list.count() == 1
    again.chat.new_chat()
    assert bar.selected == set() and not bar.sources.isVisibleTo(again)


def _citation_point(win, row: int, text: str):
    """Where ``text`` (e.g. "[1]") is drawn in the thread's viewport: the middle of its second character."""
    from PySide6.QtCore import QPoint

    from gui.chat.delegate import HEADER, MARGIN, PAD

    view = win.chat.list
    index = win.chat.model.index(row)
    rect = view.visualRect(index)
    doc = win.chat.delegate._row_document(index, rect.width() - 2 * (PAD + MARGIN), view.palette())
    cursor = doc.find(text)
    assert not cursor.isNull()
    block = cursor.block()
    at = cursor.selectionStart() - block.position() + 1
    line = block.layout().lineForTextPosition(at)
    x = line.cursorToX(at)
    x = x[0] if isinstance(x, tuple) else x
    top = doc.documentLayout().blockBoundingRect(block).top() + line.y() + line.height() / 2
    return doc, QPoint(int(rect.left() + MARGIN + PAD + x + 2), int(rect.top() + MARGIN + PAD + HEADER + top))


def test_clicking_a_citation_in_a_reply_opens_its_passage(qtbot, make_window, tmp_path, embedder_dir):
    import test_gui_store_chat
    from PySide6.QtCore import Qt

    _collection("Notes", embedder_dir)
    win = make_window()
    bar = win.chat.documents
    qtbot.waitUntil(lambda: len(bar.collections) == 1, timeout=20000)
    test_gui_store_chat.REPLIES[:] = ["Plain reply citing [1] with no sources."]
    send(qtbot, win, "Plain question")  # no collection yet: "[1]" is only text
    bar._fill_menu()
    next(a for a in bar.menu.actions() if a.text().startswith("Notes")).trigger()
    send(qtbot, win, "Who lends money?")
    assert win.chat.model.items[-1].content == "The bank lends money [1]."
    win.resize(1100, 900)
    win.chat.list.scrollToBottom()
    qtbot.wait(50)  # the resize and the scroll laid out
    opened = []
    bar.open_passage = opened.append  # the dialog itself is tested with the Documents view
    viewport = win.chat.list.viewport()

    doc, point = _citation_point(win, 1, "[1]")
    assert viewport.rect().contains(point)
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=point)
    assert opened == [], "a reply without sources has no links"

    reply = len(win.chat.model.items) - 1
    doc, point = _citation_point(win, reply, "[1]")
    assert viewport.rect().contains(point)
    assert win.chat.delegate.citation_at(win.chat.list.visualRect(win.chat.model.index(reply)),
                                         win.chat.model.index(reply), point, win.chat.list.palette()) == 1
    win.grab().save(str(tmp_path / "chat-citation.png"))
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=point)
    assert len(opened) == 1 and opened[0].number == 1 and opened[0].text == PASSAGE_TEXT

    _, elsewhere = _citation_point(win, reply, "bank")
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=elsewhere)
    assert len(opened) == 1, "clicking the reply's text elsewhere opens nothing"
