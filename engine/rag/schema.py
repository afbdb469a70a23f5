"""The documents database's schema, as ordered migrations (``PRAGMA user_version`` counts them).

Vectors are float32 blobs on the chunk row (dim * 4 bytes); the search keeps a
collection's matrix in memory (``vectors.py``). This Python's sqlite3 cannot
load extensions (no ``enable_load_extension``), so ``sqlite-vec`` is not an option.
"""

from __future__ import annotations

import sqlite3

from engine.rag.errors import CollectionError

V1 = """
CREATE TABLE collections (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    embedder    TEXT NOT NULL DEFAULT '',        -- '' = the default model, else a local folder
    dim         INTEGER NOT NULL DEFAULT 0,      -- vector size, fixed by the first indexed chunk
    generation  INTEGER NOT NULL DEFAULT 0,      -- bumped on every chunk change: the vector cache's key
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE TABLE sources (                           -- what the user dropped: files and folders
    id            INTEGER PRIMARY KEY,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    path          TEXT NOT NULL,
    is_folder     INTEGER NOT NULL,
    added_at      REAL NOT NULL,
    UNIQUE (collection_id, path)
);
CREATE TABLE files (
    id            INTEGER PRIMARY KEY,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    source_id     INTEGER REFERENCES sources(id) ON DELETE CASCADE,
    path          TEXT NOT NULL,
    size          INTEGER NOT NULL DEFAULT 0,
    mtime         REAL NOT NULL DEFAULT 0,
    hash          TEXT NOT NULL DEFAULT '',      -- sha256 of the bytes last indexed
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'indexed', 'skipped', 'missing', 'excluded')),
    reason        TEXT NOT NULL DEFAULT '',      -- why skipped, missing or excluded, or a reader's notice
    chunk_count   INTEGER NOT NULL DEFAULT 0,
    indexed_at    REAL,
    UNIQUE (collection_id, path)
);
CREATE INDEX files_status ON files(collection_id, status);
CREATE TABLE chunks (
    id            INTEGER PRIMARY KEY,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    file_id       INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,              -- 0, 1, 2... within the file
    start         INTEGER NOT NULL,              -- character offsets in the file's text
    end           INTEGER NOT NULL,
    text          TEXT NOT NULL,
    vector        BLOB NOT NULL                  -- float32[dim], unit length
);
CREATE INDEX chunks_file ON chunks(file_id, position);
CREATE INDEX chunks_collection ON chunks(collection_id);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TABLE conversation_collections (          -- conversations live in hearth.db: ids, no foreign key
    conversation_id INTEGER NOT NULL,
    collection_id   INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    PRIMARY KEY (conversation_id, collection_id)
);
CREATE TABLE reply_passages (                    -- the passages a stored reply was given, as they were
    message_id  INTEGER NOT NULL,                -- hearth.db messages.id
    number      INTEGER NOT NULL,                -- the [n] the reply cites
    path        TEXT NOT NULL,
    start       INTEGER NOT NULL,
    end         INTEGER NOT NULL,
    text        TEXT NOT NULL,
    score       REAL NOT NULL DEFAULT 0,
    collection  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (message_id, number)
);
"""

MIGRATIONS = [V1]
LATEST = len(MIGRATIONS)


def version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, path: str) -> None:
    from engine.store.schema import _statements

    if version(conn) > LATEST:
        raise CollectionError(f"{path} was written by a newer version of Hearth (schema {version(conn)}); "
                              "update Hearth, or set HEARTH_DATA_DIR to another folder.")
    while True:
        conn.execute("BEGIN IMMEDIATE")  # re-read under the write lock: another process may have migrated
        try:
            number = version(conn) + 1
            if number > LATEST:
                conn.execute("COMMIT")
                return
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
