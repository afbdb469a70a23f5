"""The database schema as an ordered list of migrations.

``PRAGMA user_version`` holds how many migrations a database has had. Opening
an older database runs the missing ones, each in its own transaction, so a
newer Hearth always opens an older file. Never edit a released migration: add
a new one at the end.
"""

from __future__ import annotations

import sqlite3

from engine.store.errors import StoreVersionError

# 1: conversations and the message tree (parent links; current leaf per conversation).
V1_CORE = """
CREATE TABLE conversations (
    id              INTEGER PRIMARY KEY,
    title           TEXT    NOT NULL DEFAULT '',
    title_auto      INTEGER NOT NULL DEFAULT 1,   -- still made from the first message (not renamed)
    pinned          INTEGER NOT NULL DEFAULT 0,
    system_prompt   TEXT    NOT NULL DEFAULT '',
    sampling        TEXT,                         -- JSON SamplingConfig, NULL: the app's default
    model           TEXT,                         -- the model last used here
    current_leaf_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL
);
CREATE INDEX conversations_recent ON conversations(pinned DESC, updated_at DESC);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id       INTEGER,                      -- NULL for a first message; subtrees are deleted by
                                                  -- the store (a cascade would recurse once per message)
    role            TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content         TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL DEFAULT 'complete'
                            CHECK (status IN ('complete', 'streaming', 'interrupted')),
    writer          TEXT,                         -- owner token of the process streaming into it
    active_child_id INTEGER,                      -- the child last shown: returning to a branch restores it
    model           TEXT,
    sampling        TEXT,                         -- JSON SamplingConfig used for this reply
    tok_s           REAL,
    new_tokens      INTEGER,
    finish_reason   TEXT,
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL
);
CREATE INDEX messages_children ON messages(conversation_id, parent_id, id);
CREATE INDEX messages_parent ON messages(parent_id);
CREATE INDEX messages_streaming ON messages(status) WHERE status = 'streaming';
"""

# 2: full-text search over every message (external-content FTS5, kept in step by triggers).
V2_SEARCH = """
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
"""

# 3: sampling presets, and which one a conversation uses.
V3_PRESETS = """
CREATE TABLE presets (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    system_prompt TEXT NOT NULL DEFAULT '',
    sampling      TEXT NOT NULL,                  -- JSON SamplingConfig
    builtin_key   TEXT UNIQUE,                    -- set for the shipped presets (they can be reset)
    position      INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
ALTER TABLE conversations ADD COLUMN preset_id INTEGER REFERENCES presets(id) ON DELETE SET NULL;
"""


def _seed_presets(conn: sqlite3.Connection) -> None:
    from engine.store.builtin_presets import insert_builtin_presets

    insert_builtin_presets(conn)


MIGRATIONS: list = [V1_CORE, V2_SEARCH, (V3_PRESETS, _seed_presets)]
LATEST = len(MIGRATIONS)


def version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, path: str, upto: int = LATEST) -> int:
    """Bring the database to version ``upto``; returns the version it had before."""
    before = version(conn)
    if before > LATEST:
        raise StoreVersionError(f"{path} was written by a newer version of Hearth (schema {before}, this "
                                f"version knows {LATEST}). Update Hearth, or set HEARTH_DATA_DIR to another folder.")
    while True:
        conn.execute("BEGIN IMMEDIATE")  # re-read under the write lock: another process may have migrated
        try:
            number = version(conn) + 1
            if number > upto:
                conn.execute("COMMIT")
                break
            step = MIGRATIONS[number - 1]
            script, after = step if isinstance(step, tuple) else (step, None)
            for statement in _statements(script):
                conn.execute(statement)
            if after is not None:
                after(conn)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return before


def _statements(script: str) -> list[str]:
    """Split a script into statements (executescript would commit our transaction)."""
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        out.append(buffer.strip())
    return out
