"""The conversations sidebar: grouped by day, filter, select, rename, pin, duplicate, delete with confirmation."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from PySide6.QtWidgets import QMessageBox

from gui.chat.history import ChatHistory
from gui.chat.sidebar import ConversationSidebar, IdRole, day_group

DAY = 86400


@pytest.fixture
def history():
    errors: list[str] = []
    h = ChatHistory(errors.append)
    h.errors = errors
    yield h
    h.store.close()


def make(history, title, days_ago=0.0, pinned=False):
    conv = history.store.create_conversation(title)
    history.store.add_message(conv.id, "user", f"about {title}")
    history.store.db.conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                                  (time.time() - days_ago * DAY, conv.id))
    if pinned:
        history.store.set_pinned(conv.id, True)
    return conv.id


def titles(sidebar):
    return [item.text(0) for item in sidebar.items()]


def test_day_groups():
    today = dt.date(2026, 11, 28)

    def ts(days):
        return time.mktime((today - dt.timedelta(days=days)).timetuple()) + 3600

    assert [day_group(ts(d), today) for d in (0, 1, 3, 12)] == ["Today", "Yesterday", "Previous 7 days",
                                                                  "Previous 30 days"]
    assert day_group(ts(60), today) == "September"
    assert day_group(ts(400), today) == "October 2025"


def test_grouped_by_day_newest_first_pinned_on_top(qtbot, history):
    make(history, "old", days_ago=3)
    make(history, "yesterday", days_ago=1.0)
    make(history, "now")
    make(history, "notes", days_ago=40, pinned=True)
    make(history, "earlier today", days_ago=0.0001)
    sidebar = ConversationSidebar(history)
    qtbot.addWidget(sidebar)
    assert sidebar.groups() == ["Pinned", "Today", "Yesterday", "Previous 7 days"]
    assert titles(sidebar) == ["notes", "now", "earlier today", "yesterday", "old"]


def test_filter_box_narrows_by_title(qtbot, history):
    for name in ("Python lists", "Bread recipe", "python decorators"):
        make(history, name)
    sidebar = ConversationSidebar(history)
    qtbot.addWidget(sidebar)
    sidebar.filter.setText("python")
    qtbot.waitUntil(lambda: len(titles(sidebar)) == 2, timeout=3000)
    assert set(titles(sidebar)) == {"Python lists", "python decorators"}


def test_selecting_renaming_pinning_duplicating(qtbot, history):
    first = make(history, "first", days_ago=1)
    make(history, "second")
    sidebar = ConversationSidebar(history)
    qtbot.addWidget(sidebar)
    with qtbot.waitSignal(sidebar.conversation_selected) as blocker:
        sidebar.tree.setCurrentItem(sidebar.item_for(first))
    assert blocker.args == [first]
    sidebar.item_for(first).setText(0, "  renamed   in place ")  # what inline editing does
    assert history.store.conversation(first).title == "renamed in place"
    sidebar.set_pinned(first, True)
    assert sidebar.groups()[0] == "Pinned" and titles(sidebar)[0] == "renamed in place"
    with qtbot.waitSignal(sidebar.conversation_selected) as blocker:
        sidebar.duplicate(first)
    copy_id = blocker.args[0]
    assert history.store.conversation(copy_id).title == "renamed in place (copy)"
    assert sidebar.tree.currentItem().data(0, IdRole) == copy_id


def test_delete_asks_first(qtbot, history, monkeypatch):
    doomed = make(history, "doomed")
    sidebar = ConversationSidebar(history)
    qtbot.addWidget(sidebar)
    asked = []

    def answer(choice):
        def question(*args, **kwargs):
            asked.append(args[2])
            return choice
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    assert not sidebar.delete(doomed)
    assert titles(sidebar) == ["doomed"] and "1 messages" in asked[0]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    with qtbot.waitSignal(sidebar.conversation_deleted):
        assert sidebar.delete(doomed)
    assert titles(sidebar) == [] and history.store.list_conversations() == []


def test_without_a_database_the_sidebar_is_disabled_not_broken(qtbot, data_dir):
    from engine.store import schema

    import sqlite3

    with sqlite3.connect(data_dir / "hearth.db") as conn:
        conn.execute(f"PRAGMA user_version = {schema.LATEST + 5}")
    h = ChatHistory(lambda text: None)
    assert h.store is None and "newer version" in h.error
    sidebar = ConversationSidebar(h)
    qtbot.addWidget(sidebar)
    assert not sidebar.isEnabled() and titles(sidebar) == []
    assert sidebar.tree.topLevelItem(0).text(0) == "Chat history is off"


def test_an_unusable_data_folder_turns_history_off_with_a_reason(qtbot, tmp_path, monkeypatch):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("HEARTH_DATA_DIR", str(not_a_folder))
    h = ChatHistory(lambda text: None)
    assert h.store is None and "is a file" in h.error
