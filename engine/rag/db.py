"""The documents database: its own SQLite file, ``$HEARTH_DATA_DIR/documents.db`` (WAL).

Why a file of its own rather than a table in hearth.db: indexing writes many
megabytes of text and vectors in many transactions; kept apart, a conversation
never waits behind an indexing write, a damaged or deleted index can never
take the chat history with it, and the history stays small to back up.
Conversations are linked by id (``conversation_collections``, ``reply_passages``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Iterator

from engine.rag import schema
from engine.rag.errors import CollectionError, CollectionsLockedError

DB_NAME = "documents.db"
BUSY_TIMEOUT_S = 5.0


def default_path() -> Path:
    from engine.paths import data_dir

    return data_dir() / DB_NAME


def translate(exc: sqlite3.Error, path: Path) -> CollectionError:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return CollectionsLockedError(
            f"The documents database {path} is locked by another Hearth (the app or hearth-cli) for more than "
            f"{BUSY_TIMEOUT_S:.0f} s. Nothing was changed; try again when it has finished.")
    if "readonly" in text or "read-only" in text or "permission" in text:
        return CollectionError(f"The documents database {path} cannot be written (read-only file or disk). "
                               "Nothing was changed.")
    if "full" in text:
        return CollectionError(f"The disk holding {path} is full; the last file was not indexed. Free some space.")
    if "malformed" in text or "not a database" in text:
        return CollectionError(f"The documents database {path} is damaged ({exc}). Move it away and index the "
                               "collections again; conversations are not affected (they live in hearth.db).")
    return CollectionError(f"Database error in {path}: {exc}")


_NOTICES: list[str] = []  # what opening found, for whichever view asks next (several threads open the file)


def take_notices() -> str:
    """Sentences the user must see about the documents database (each is given once)."""
    text = " ".join(_NOTICES)
    _NOTICES.clear()
    return text


class DocsDatabase:
    """One connection to documents.db (use one per thread)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.notice = ""  # for the user: a damaged file was kept aside
        try:
            self._conn = self._connect()
            try:
                healthy = self._conn.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok"
            except sqlite3.DatabaseError as exc:
                if "malformed" not in str(exc).lower() and "not a database" not in str(exc).lower():
                    raise
                healthy = False
            if not healthy:
                self._start_over()
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._enable_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")  # an index can be rebuilt: speed over power cuts
            schema.migrate(self._conn, str(self.path))
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn

    def _start_over(self) -> None:
        """A damaged file is kept aside (never overwritten) and an empty one started: the index can be rebuilt
        from the files, and conversations live elsewhere."""
        self._conn.close()
        backup = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            for suffix in ("", "-wal", "-shm"):
                side = Path(f"{self.path}{suffix}")
                if side.exists():
                    side.rename(f"{backup}{suffix}")
        except OSError as exc:
            raise CollectionError(f"The documents database {self.path} is damaged and could not be moved aside "
                                  f"({exc.strerror or exc}). Move it away by hand; conversations are not "
                                  "affected.") from exc
        self.notice = (f"The documents database was damaged; it was kept as {backup.name} and an empty one "
                       "started. Make the collections again (your files and conversations are untouched).")
        _NOTICES.append(self.notice)
        self._conn = self._connect()

    def _enable_wal(self) -> None:
        """A new file's switch to WAL answers "locked" at once when another process opens it too: retry."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CollectionError("The documents database is closed.")
        return self._conn

    def query(self, sql: str, params: tuple | list | dict = ()) -> list[sqlite3.Row]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def query_one(self, sql: str, params: tuple | list | dict = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is saved, or none."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise translate(exc, self.path) from exc
            raise

    def size_bytes(self) -> int:
        return sum(os.path.getsize(p) for p in (self.path, Path(f"{self.path}-wal")) if os.path.exists(p))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "DocsDatabase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
