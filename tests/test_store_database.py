"""Opening the database: migrations, damaged files, newer schemas, read-only files, locks, big messages."""

from __future__ import annotations

import sqlite3

import pytest

from engine.store import Store, StoreLockedError, StoreReadOnlyError, StoreVersionError
from engine.store import db as dbmod
from engine.store import schema


def make_v1_database(path):
    conn = sqlite3.connect(path, isolation_level=None)
    schema.migrate(conn, str(path), upto=1)
    conn.execute("INSERT INTO conversations (id, title, created_at, updated_at) VALUES (1, 'Old chat', 1, 1)")
    conn.execute("INSERT INTO messages (id, conversation_id, role, content, created_at, updated_at) "
                 "VALUES (1, 1, 'user', 'a question about penguins', 1, 1)")
    conn.execute("INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at, updated_at) "
                 "VALUES (2, 1, 1, 'assistant', 'penguins live in the south', 1, 1)")
    conn.execute("UPDATE conversations SET current_leaf_id = 2")
    conn.close()


def test_a_newer_app_opens_an_older_database(data_dir):
    path = data_dir / "hearth.db"
    make_v1_database(path)
    with Store() as store:
        assert schema.version(store.db.conn) == schema.LATEST
        assert [m.content for m in store.current_path(1)] == ["a question about penguins",
                                                              "penguins live in the south"]
        assert {h.message_id for h in store.search("penguins")} == {1, 2}  # old messages indexed
        assert len(store.presets()) == 5
    backup = data_dir / f"hearth.db.before-v{schema.LATEST}"
    with sqlite3.connect(backup) as old:  # the pre-upgrade copy is kept
        assert old.execute("PRAGMA user_version").fetchone()[0] == 1


def test_a_database_from_a_newer_hearth_is_refused_untouched(data_dir):
    path = data_dir / "hearth.db"
    with Store():
        pass
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    with pytest.raises(StoreVersionError, match="newer version of Hearth"):
        Store()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST + 1


def test_a_damaged_database_is_kept_aside_and_the_user_told(data_dir):
    path = data_dir / "hearth.db"
    garbage = b"this is not sqlite at all " * 500
    path.write_bytes(garbage)
    with Store() as store:
        assert "damaged" in store.notice and "kept as" in store.notice
        assert store.list_conversations() == []
        store.create_conversation("fresh")
    kept = [p for p in data_dir.iterdir() if p.name.startswith("hearth.db.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes() == garbage  # never overwritten
    with Store() as store:  # the new one is healthy: no second notice
        assert store.notice == "" and store.list_conversations()[0].title == "fresh"


def test_a_database_with_damaged_pages_is_detected(data_dir):
    path = data_dir / "hearth.db"
    with Store() as store:
        conv = store.create_conversation()
        for i in range(200):
            store.add_message(conv.id, "user", f"message {i} " + "x" * 2000)
        store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(page * 3, len(data) - page, page * 2):  # scribble over many pages, header intact
        data[offset + 8: offset + 200] = b"\xff" * 192
    path.write_bytes(bytes(data))
    with Store() as store:
        assert "damaged" in store.notice
    assert any(p.name.startswith("hearth.db.damaged-") for p in data_dir.iterdir())


def test_a_read_only_database_can_be_read_but_writes_get_a_clear_error(data_dir, monkeypatch):
    with Store() as store:
        conv = store.create_conversation("Keep me")
        store.add_message(conv.id, "user", "hello")
    real_access = dbmod.os.access
    monkeypatch.setattr(dbmod.os, "access", lambda p, mode: False if mode == dbmod.os.W_OK else real_access(p, mode))
    with Store() as store:
        assert store.read_only
        assert store.list_conversations()[0].title == "Keep me"
        with pytest.raises(StoreReadOnlyError, match="read-only"):
            store.add_message(conv.id, "user", "more")


def test_a_lock_held_too_long_gives_a_typed_error_and_loses_nothing(data_dir, monkeypatch):
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_S", 0.2)
    with Store() as store:
        conv = store.create_conversation()
        store.add_message(conv.id, "user", "saved before the lock")
        other = sqlite3.connect(data_dir / "hearth.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            with pytest.raises(StoreLockedError, match="busy"):
                store.add_message(conv.id, "user", "blocked")
            assert [m.content for m in store.current_path(conv.id)] == ["saved before the lock"]  # reads work
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.add_message(conv.id, "user", "after the lock")
        assert len(store.current_path(conv.id)) == 2


def test_a_message_of_several_megabytes_round_trips_and_is_searchable():
    big = ("lorem ipsum dolor sit amet " * 200_000) + "needleword"
    with Store() as store:
        conv = store.create_conversation()
        message = store.add_message(conv.id, "user", big)
        assert len(store.message(message.id).content) == len(big) > 5_000_000
        assert [h.message_id for h in store.search("needleword")] == [message.id]
