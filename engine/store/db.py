"""Opening the database safely: WAL, migrations, damaged files kept aside, clear errors.

Policy for several running instances: *safe shared access*. The app and any
number of ``hearth-cli`` processes may use one database at once; SQLite's WAL
mode lets readers run beside one writer, every write is a short
``BEGIN IMMEDIATE`` transaction that waits up to ``BUSY_TIMEOUT_S`` for the
lock, and a reply left "streaming" is only marked interrupted once the process
that wrote it is gone (see ``owner.py``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Iterator

from engine.store import schema
from engine.store.errors import StoreError, StoreLockedError, StoreReadOnlyError
from engine.store.owner import WriterLock, writer_alive
from engine.store.records import INTERRUPTED, STREAMING

DB_NAME = "hearth.db"
BUSY_TIMEOUT_S = 5.0


def default_path() -> Path:
    from engine.paths import data_dir

    return data_dir() / DB_NAME


def translate(exc: sqlite3.Error, path: Path) -> StoreError:
    """An sqlite3 error as a typed store error with a message for people."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StoreLockedError(f"The conversation database {path} is busy: another program has held it locked for "
                                f"more than {BUSY_TIMEOUT_S:.0f} s. Try again in a moment.")
    if "readonly" in text or "read-only" in text or "permission" in text:
        return StoreReadOnlyError(f"The conversation database {path} cannot be written (read-only file or disk). "
                                  "Nothing was changed; check its permissions or set HEARTH_DATA_DIR elsewhere.")
    if "full" in text:
        return StoreError(f"The disk holding {path} is full; the last change was not saved. Free some space.")
    if "malformed" in text or "not a database" in text:
        return StoreError(f"The conversation database {path} is damaged ({exc}). Restart Hearth: it will keep the "
                          "damaged file aside and start a new one.")
    return StoreError(f"Database error in {path}: {exc}")


class Database:
    """One connection to the store (use one per thread)."""

    def __init__(self, path: str | Path | None = None, *, recover: bool = True) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.notice = ""  # something the user must be told about opening (damaged file kept aside...)
        self.read_only = self.path.exists() and not (os.access(self.path, os.W_OK)
                                                     and os.access(self.path.parent, os.W_OK))
        self._writer_lock: WriterLock | None = None
        self._conn = self._open()
        if recover and not self.read_only:
            self.recover_interrupted()

    # -- opening -----------------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri() + ("?mode=ro" if self.read_only else "")
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        conn.row_factory = sqlite3.Row
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        try:
            healthy = conn.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok"
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc).lower():
                conn.close()
                raise translate(exc, self.path) from exc
            healthy = False
        if not healthy:
            conn.close()
            conn = self._start_over()
        try:
            self._configure(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise translate(exc, self.path) from exc
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if self.read_only:
            if schema.version(conn) != schema.LATEST:
                raise StoreReadOnlyError(f"{self.path} is read-only and needs upgrading to this version of Hearth; "
                                         "make it writable first.")
            return
        self._enable_wal(conn)
        conn.execute("PRAGMA synchronous = FULL")  # a committed word survives a power cut too
        before = schema.version(conn)
        if 0 < before < schema.LATEST:
            self._backup(conn, self.path.with_name(f"{self.path.name}.before-v{schema.LATEST}"))
        schema.migrate(conn, str(self.path))

    @staticmethod
    def _enable_wal(conn: sqlite3.Connection) -> None:
        """Switching a new database to WAL needs an exclusive lock, and SQLite answers "locked" at once
        instead of calling the busy handler when another Hearth opens the same new file at that moment:
        retry, within the usual busy timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _backup(self, conn: sqlite3.Connection, target: Path) -> None:
        if not target.exists():
            with contextlib.closing(sqlite3.connect(target)) as copy:
                conn.backup(copy)

    def _start_over(self) -> sqlite3.Connection:
        """Keep a damaged database aside (never overwrite it) and start an empty one."""
        if self.read_only:
            raise StoreError(f"The conversation database {self.path} is damaged and read-only; "
                             "copy it somewhere writable or set HEARTH_DATA_DIR to another folder.")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        n = 1
        while backup.exists():
            n += 1
            backup = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{n}")
        try:
            for suffix in ("", "-wal", "-shm"):
                side = Path(str(self.path) + suffix)
                if side.exists():
                    side.rename(str(backup) + suffix)
        except OSError as exc:
            raise StoreError(f"The conversation database {self.path} is damaged and could not be moved aside "
                             f"({exc.strerror or exc}). Move it away by hand, then restart.") from exc
        self.notice = (f"The conversation database was damaged and could not be read. It was kept as {backup}; "
                       "Hearth started a new, empty history.")
        return self._connect()

    # -- using -------------------------------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("The conversation store is closed.")
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
        if self.read_only:
            raise StoreReadOnlyError(f"The conversation database {self.path} is read-only; nothing was changed.")
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

    def writer_token(self) -> str:
        """This process's streaming-owner token (its lock is held until close)."""
        if self._writer_lock is None:
            try:
                self._writer_lock = WriterLock(self._locks_dir())
            except OSError as exc:
                raise StoreError(f"Cannot create a lock file in {self._locks_dir()}: {exc.strerror or exc}. "
                                 "Check that the data folder is writable.") from exc
        return self._writer_lock.token

    def _locks_dir(self) -> Path:
        return self.path.parent / "locks"

    def recover_interrupted(self) -> int:
        """Mark replies whose writer died (crash, kill -9) as interrupted. Returns how many."""
        rows = self.query("SELECT DISTINCT writer FROM messages WHERE status = ?", (STREAMING,))
        dead = [r["writer"] for r in rows if not writer_alive(self._locks_dir(), r["writer"])]
        self._sweep_locks()
        if not dead:
            return 0
        with self.write() as conn:
            marks = ",".join("?" * len(dead))
            cur = conn.execute(f"UPDATE messages SET status = ?, writer = NULL WHERE status = ? AND "
                               f"(writer IS NULL OR writer IN ({marks}))", (INTERRUPTED, STREAMING, *dead))
            return cur.rowcount

    def _sweep_locks(self) -> None:
        """Remove lock files left by processes that died while idle (``writer_alive`` deletes dead ones)."""
        folder = self._locks_dir()
        if folder.is_dir():
            for path in folder.glob("*.lock"):
                writer_alive(folder, path.stem)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
        if self._writer_lock is not None:
            self._writer_lock.release()
            self._writer_lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
