"""The chat window keeps its conversations: saved as sent and streamed, alternatives, branches,
search, presets, export/import, lazy loading, and a database that cannot be used."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog

from engine.generation import GenerationResult
from engine.store import Store

INFO = {"name": "FakeModel", "path": "/fake", "device": "cpu", "dtype": "float32", "context_length": 2048,
        "parameters": 1}
REPLIES: list[str] = []  # what the fake model answers next (then "reply N")


def fake_load(session, *, on_text=None, on_progress=None, cancel=None, config=None):
    return dict(INFO)


def stream(words, on_text, cancel, delay=0.0):
    out = []
    for word in words:
        if cancel.cancelled:
            break
        out.append(word)
        on_text(word)
        time.sleep(delay)
    reason = "cancelled" if cancel.cancelled else "eos"
    return GenerationResult(text="".join(out), new_tokens=len(out), prompt_tokens=10, finish_reason=reason,
                            tok_s=50.0, ttft_s=0.01, elapsed_s=0.1)


def fake_chat(session, *, on_text=None, on_progress=None, cancel=None, messages=(), system_prompt="",
              sampling=None, model_path=None):
    session.state.setdefault("seen", []).append(([m.content for m in messages], system_prompt))
    if messages[-1].content == "long":
        return stream([f"w{i} " for i in range(150)], on_text, cancel, delay=0.01)
    text = REPLIES.pop(0) if REPLIES else f"reply {len(session.state['seen'])}"
    return stream([text], on_text, cancel)


def fake_continue(session, *, on_text=None, on_progress=None, cancel=None, messages=(), partial="",
                  system_prompt="", sampling=None, model_path=None):
    session.state["continued"] = ([m.content for m in messages], partial)
    return stream([" and the rest."], on_text, cancel)


@pytest.fixture
def make_window(qtbot, monkeypatch):
    import engine.tasks
    import gui.chat.view
    from fake_window import open_main_window

    monkeypatch.setattr(engine.tasks, "load_task", fake_load)
    monkeypatch.setattr(gui.chat.view, "chat_task", fake_chat)
    monkeypatch.setattr(engine.tasks, "continue_task", fake_continue)
    REPLIES.clear()
    windows = []

    def make():
        win = open_main_window(qtbot)
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.close()


@pytest.fixture
def window(make_window):
    return make_window()


def send(qtbot, win, text):
    chat = win.chat
    with qtbot.waitSignal(chat.reply_finished, timeout=10000):
        chat.input.setPlainText(text)
        qtbot.keyClick(chat.input, Qt.Key.Key_Return)


def shown(win):
    return [(i.role, i.content) for i in win.chat.model.items]


def stored_thread(conversation_id):
    with Store() as store:
        return [(m.role, m.content, m.status) for m in store.current_path(conversation_id)]


def click_arrow(qtbot, win, row, step):
    """Click the ‹ (-1) or › (+1) of a message header, found the way the view hit-tests it."""
    from gui.chat.alternatives import arrow_at
    from gui.chat.list_model import MetaRole

    chat = win.chat
    index = chat.model.index(row)
    rect = chat.list.visualRect(index)
    for y in range(rect.top(), rect.top() + 40):
        for x in range(rect.right(), rect.left(), -1):
            if arrow_at(rect, chat.list.font(), index.data(MetaRole), False, QPoint(x, y)) == step:
                qtbot.mouseClick(chat.list.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, y))
                return
    raise AssertionError("no arrow drawn")


def test_messages_are_saved_and_come_back_in_a_new_window(qtbot, make_window):
    win = make_window()
    send(qtbot, win, "Hi there")
    send(qtbot, win, "Second question")
    conversation_id = win.chat.saved.conversation_id
    assert stored_thread(conversation_id) == [("user", "Hi there", "complete"), ("assistant", "reply 1", "complete"),
                                              ("user", "Second question", "complete"),
                                              ("assistant", "reply 2", "complete")]
    assert [i.text(0) for i in win.chat.sidebar.items()] == ["Hi there"]
    win.close()
    again = make_window()
    sidebar = again.chat.sidebar
    assert [i.text(0) for i in sidebar.items()] == ["Hi there"] and sidebar.groups() == ["Today"]
    sidebar.tree.setCurrentItem(sidebar.items()[0])
    assert shown(again)[-1] == ("assistant", "reply 2")
    send(qtbot, again, "Third")  # the model sees the whole stored thread
    seen = again.client.session.state["seen"][-1][0]
    assert seen == ["Hi there", "reply 1", "Second question", "reply 2", "Third"]


def test_a_streaming_reply_is_committed_while_it_grows(qtbot, window):
    chat = window.chat
    chat.input.setPlainText("long")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: chat.saved.conversation_id is not None, timeout=5000)
    conversation_id = chat.saved.conversation_id

    def partial_in_database():
        conn = sqlite3.connect(window.chat.saved.store.path)
        try:
            row = conn.execute("SELECT content, status FROM messages WHERE conversation_id = ? AND role = "
                               "'assistant'", (conversation_id,)).fetchone()
        finally:
            conn.close()
        return row is not None and row[1] == "streaming" and row[0].startswith("w0 w1 ")

    qtbot.waitUntil(partial_in_database, timeout=10000)
    with qtbot.waitSignal(chat.reply_finished, timeout=10000):
        pass
    assert stored_thread(conversation_id)[-1][2] == "complete"


def test_regenerate_keeps_alternatives_and_the_arrows_step_through_them(qtbot, window):
    REPLIES.extend(["first answer", "second answer"])
    send(qtbot, window, "Question")
    with qtbot.waitSignal(window.chat.reply_finished, timeout=5000):
        window.chat.regenerate_button.click()
    assert shown(window)[-1] == ("assistant", "second answer")
    meta = window.chat.model.items[1].meta
    assert (meta["alternative"], meta["alternatives"]) == (2, 2)
    click_arrow(qtbot, window, 1, -1)
    assert shown(window)[-1] == ("assistant", "first answer")
    assert window.chat.model.items[1].meta["alternative"] == 1
    click_arrow(qtbot, window, 1, +1)
    assert shown(window)[-1] == ("assistant", "second answer")
    assert stored_thread(window.chat.saved.conversation_id)[-1][1] == "second answer"  # remembered


def test_editing_an_earlier_message_branches_and_the_old_branch_stays(qtbot, window):
    REPLIES.extend(["A1", "A2", "A1 edited"])
    send(qtbot, window, "Q1")
    send(qtbot, window, "Q2")
    window.chat.edit_message(0)
    assert window.chat.input.toPlainText() == "Q1" and shown(window) == []
    assert "new branch" in window.chat.hint.text()
    send(qtbot, window, "Q1, better")
    assert shown(window) == [("user", "Q1, better"), ("assistant", "A1 edited")]
    assert window.chat.model.items[0].meta["alternatives"] == 2
    window.chat.step_alternative(0, -1)  # back to the original branch, all of it
    assert shown(window) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2")]


def test_search_jumps_to_a_hit_deep_in_a_long_conversation(qtbot, window):
    from gui.chat.history import PAGE
    from gui.chat.search_dialog import SearchDialog

    with Store() as store:
        rows = [("user" if i % 2 == 0 else "assistant", f"filler message {i}") for i in range(400)]
        rows[201] = ("assistant", "the secret word is pomegranate")
        long_id = store.import_thread("Long one", "", rows).id
        target = store.path_ids(long_id)[201]
    window.chat.sidebar.refresh()
    dialog = SearchDialog(window.chat.saved, window.chat)
    qtbot.addWidget(dialog)
    dialog.hit_chosen.connect(lambda c, m: window.chat.open_conversation(c, reveal=m))
    dialog.query.setText("pomegran")
    dialog.run_search()
    assert dialog.results.count() == 1 and "secret word is pomegranate" in dialog.results.item(0).toolTip()
    label = dialog.results.itemWidget(dialog.results.item(0))
    assert ">pomegranate</b>" in label.text()  # the match is highlighted
    dialog._choose(dialog.results.item(0))
    chat = window.chat
    row = chat.model.row_of(target)
    assert row is not None and chat.list.currentIndex().row() == row
    assert chat.saved.conversation_id == long_id
    assert 400 - 201 <= len(chat.model.items) < 400 - 201 + PAGE  # pages from the hit down to the newest, no more
    assert chat.saved.older_ids


def test_a_conversation_of_thousands_of_messages_opens_lazily(qtbot, window):
    from gui.chat.history import PAGE

    with Store() as store:
        rows = [("user" if i % 2 == 0 else "assistant", f"message {i}") for i in range(3000)]
        conversation_id = store.import_thread("Huge", "", rows).id
    chat = window.chat
    chat.open_conversation(conversation_id)
    assert len(chat.model.items) == PAGE and chat.model.items[-1].content == "message 2999"
    bar = chat.list.verticalScrollBar()
    bar.setValue(bar.minimum())
    qtbot.waitUntil(lambda: len(chat.model.items) == 2 * PAGE, timeout=5000)
    assert chat.model.items[0].content == f"message {3000 - 2 * PAGE}"


def test_presets_set_the_conversation_prompt_and_sampling(qtbot, window):
    chat = window.chat
    chat.presets.choose(chat.saved.store.preset_named("Coder").id)
    assert chat.system_prompt.toPlainText().startswith("You are an expert programmer")
    assert window.sampling_panel.config().temperature == pytest.approx(0.2)
    send(qtbot, window, "sort a list")
    assert window.client.session.state["seen"][-1][1].startswith("You are an expert programmer")
    conversation = chat.saved.conversation()
    assert conversation.preset_id == chat.presets.current_id() and conversation.sampling.temperature == 0.2
    chat.system_prompt.setPlainText("Answer in French.")
    qtbot.waitUntil(lambda: chat.saved.conversation().system_prompt == "Answer in French.", timeout=5000)
    assert chat.saved.conversation().preset_id is None and chat.presets.combo.currentText() == "Custom"
    chat.new_chat()
    chat.open_conversation(conversation.id)  # reopening brings the conversation's own prompt back
    assert chat.system_prompt.toPlainText() == "Answer in French."


def test_export_and_import_from_the_file_menu(qtbot, window, tmp_path, monkeypatch):
    send(qtbot, window, "Export me")
    actions = {a.text(): a for a in window.file_menu.actions()}
    target = tmp_path / "chat"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    actions["Export conversation as Markdown…"].trigger()
    assert "## User\n\nExport me" in (tmp_path / "chat.md").read_text()
    actions["Export conversation as JSON…"].trigger()
    data = json.loads((tmp_path / "chat.json").read_text())
    assert data["messages"] == [{"role": "user", "content": "Export me"}, {"role": "assistant", "content": "reply 1"}]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "chat.json"), ""))
    actions["Import conversation (JSON)…"].trigger()
    assert len(window.chat.sidebar.items()) == 2 and shown(window)[0] == ("user", "Export me")
    bad = tmp_path / "bad.json"
    bad.write_text('{"messages": [{"role": "bard", "content": "x"}]}')
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    actions["Import conversation (JSON)…"].trigger()
    assert window.error_banner.isVisible() and "role 'bard'" in window.error_banner.text()
    assert len(window.chat.sidebar.items()) == 2


def test_an_interrupted_reply_can_be_continued(qtbot, window):
    with Store() as store:
        conv = store.create_conversation()
        store.add_message(conv.id, "user", "Tell a story")
        store.add_message(conv.id, "assistant", "Once upon a time", status="interrupted")
    chat = window.chat
    chat.sidebar.refresh()
    chat.open_conversation(conv.id)
    assert chat.model.items[1].meta["finish_reason"] == "interrupted"
    with qtbot.waitSignal(chat.reply_finished, timeout=5000):
        chat.continue_reply(1)
    assert shown(window)[-1] == ("assistant", "Once upon a time and the rest.")
    assert window.client.session.state["continued"] == (["Tell a story"], "Once upon a time")
    assert stored_thread(conv.id)[-1] == ("assistant", "Once upon a time and the rest.", "complete")


def test_a_damaged_database_is_reported_and_the_chat_still_works(qtbot, make_window, data_dir):
    (data_dir / "hearth.db").write_bytes(b"garbage" * 1000)
    win = make_window()
    assert win.notice_banner.isVisible() and "damaged" in win.notice_banner.text()
    send(qtbot, win, "still here")
    assert shown(win)[-1] == ("assistant", "reply 1")
    assert any(p.name.startswith("hearth.db.damaged-") for p in data_dir.iterdir())


def test_a_database_from_a_newer_hearth_turns_history_off_with_a_message(qtbot, make_window, data_dir):
    from engine.store import schema

    with sqlite3.connect(data_dir / "hearth.db") as conn:
        conn.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    win = make_window()
    assert win.notice_banner.isVisible() and "newer version" in win.notice_banner.text()
    send(qtbot, win, "works unsaved")
    assert shown(win) == [("user", "works unsaved"), ("assistant", "reply 1")]


def test_delete_a_reply_after_confirming_shows_its_alternative(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    REPLIES.extend(["kept", "deleted"])
    send(qtbot, window, "Q")
    with qtbot.waitSignal(window.chat.reply_finished, timeout=5000):
        window.chat.regenerate_button.click()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    window.chat.delete_message(1)
    assert shown(window)[-1] == ("assistant", "deleted")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.chat.delete_message(1)
    assert shown(window) == [("user", "Q"), ("assistant", "kept")]
    assert window.chat.model.items[1].meta["alternatives"] == 1
    assert stored_thread(window.chat.saved.conversation_id)[-1][1] == "kept"


def test_closing_the_window_mid_reply_keeps_the_partial_reply_interrupted(qtbot, window):
    chat = window.chat
    chat.input.setPlainText("long")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: chat.model.items[-1].content.count("w") >= 3, timeout=5000)
    conversation_id = chat.saved.conversation_id
    window.close()
    role, content, status = stored_thread(conversation_id)[-1]
    assert role == "assistant" and status == "interrupted" and content.startswith("w0 w1 w2 ")
