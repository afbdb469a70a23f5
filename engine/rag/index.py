"""Indexing a collection: scan, then read, chunk, embed and store each new or changed file.

Resumable by construction: every file is committed in its own transaction
(its old chunks out, its new chunks in, its row marked indexed), and what is
still to do is simply the files left 'pending'. Closing the app, a crash or
Cancel loses at most the file being embedded; the next run carries on.
A file that cannot be read is marked 'skipped' with the reason; nothing else stops.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from engine.cancel import CancelToken
from engine.config import _check
from engine.documents import BINARY_EXTENSIONS, DEFAULT_MAX_BYTES, read_document
from engine.errors import CancelledError, DocumentError
from engine.rag.chunker import ChunkConfig, chunk_document
from engine.rag.collections import get_collection
from engine.rag.db import DocsDatabase
from engine.rag.errors import CollectionError
from engine.rag.lock import IndexLock
from engine.rag.scan import scan_collection

ProgressFn = Callable[[float, str], None]
MAX_CHUNKS_PER_FILE = 20_000  # ~3 million words: far beyond a document, more like a dump


@dataclass(frozen=True)
class IndexRequest:
    collection: int | str
    chunking: ChunkConfig = ChunkConfig()
    max_file_bytes: int = DEFAULT_MAX_BYTES
    batch_size: int = 32

    def __post_init__(self) -> None:
        _check(self.max_file_bytes >= 1024, f"max_file_bytes must be at least 1024, not {self.max_file_bytes}")
        _check(1 <= self.batch_size <= 1024, f"batch_size must be between 1 and 1024, not {self.batch_size}")


@dataclass
class IndexResult:
    collection: str
    indexed: int = 0  # files read and embedded in this run
    unchanged: int = 0  # pending files whose content hash had not changed
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks: int = 0  # chunks written in this run
    deleted: int = 0  # files gone from disk, removed from the index
    remaining: int = 0  # files still pending (cancelled)
    seconds: float = 0.0
    notice: str = ""
    finish_reason: str = "done"  # or "cancelled"

    def summary(self) -> str:
        parts = [f"{self.indexed} file(s) indexed ({self.chunks} passages)"]
        if self.unchanged:
            parts.append(f"{self.unchanged} unchanged")
        if self.skipped:
            parts.append(f"{len(self.skipped)} could not be read")
        if self.deleted:
            parts.append(f"{self.deleted} gone from disk and removed")
        if self.remaining:
            parts.append(f"{self.remaining} still to do")
        return ", ".join(parts) + f" in {self.seconds:.1f} s."


def index_collection(db: DocsDatabase, request: IndexRequest, *, embedder=None, on_progress: ProgressFn | None = None,
                     cancel: CancelToken | None = None) -> IndexResult:
    """Bring the collection's index up to date with its files and folders.

    ``embedder``: the loaded model to use (default: the collection's own, shared in the process)."""
    from engine.rag.embedder import shared_embedder

    collection = get_collection(db, request.collection)
    if embedder is None:
        _progress(on_progress, 0.0, "Loading the embedding model…")
        embedder = shared_embedder(collection.embedder or None)
    if collection.dim and collection.dim != embedder.dim:
        raise CollectionError(f"The collection {collection.name!r} was indexed with a {collection.dim}-dimension "
                              f"embedding model, not {embedder.name} ({embedder.dim}); make a new collection.")
    started = time.monotonic()
    result = IndexResult(collection.name)
    with IndexLock(db.path, collection):
        _progress(on_progress, 0.0, "Looking for new and changed files…")
        report = scan_collection(db, collection.id)
        result.deleted, result.notice = report.deleted, report.notice()
        pending = db.query("SELECT id, path, size, hash, chunk_count FROM files WHERE collection_id = ? AND "
                           "status = 'pending' ORDER BY path", (collection.id,))
        clock = _Clock(sum(_weight(r) for r in pending), len(pending), on_progress)
        for row in pending:
            if cancel is not None and cancel.cancelled:
                result.finish_reason = "cancelled"
                break
            clock.begin(Path(row["path"]).name, _weight(row))
            try:
                _index_file(db, embedder, request, collection.id, row, result, clock, cancel)
            except CancelledError:  # inside a big file: it stays pending, nothing of it was written
                result.finish_reason = "cancelled"
                break
            except CollectionError:
                if db.query_one("SELECT id FROM collections WHERE id = ?", (collection.id,)) is None:
                    result.finish_reason = "cancelled"  # deleted meanwhile (the window or hearth-cli): stop quietly
                    result.notice = f"The collection {collection.name!r} was deleted while it was being indexed."
                    break
                raise
            clock.done()
        result.remaining = len(pending) - clock.files_done
    result.seconds = time.monotonic() - started
    return result


def _index_file(db: DocsDatabase, embedder, request: IndexRequest, collection_id: int, row, result: IndexResult,
                clock: "_Clock", cancel: CancelToken | None) -> None:
    path = Path(row["path"])
    try:
        digest = _sha256(path)
    except OSError as exc:
        _mark(db, row["id"], "skipped", f"cannot be read ({exc.strerror or exc}).")
        result.skipped.append((str(path), f"cannot be read ({exc.strerror or exc})."))
        return
    if digest == row["hash"] and row["chunk_count"] > 0:
        _mark(db, row["id"], "indexed", None)  # touched, not changed: keep its passages
        result.unchanged += 1
        return
    try:
        doc = read_document(path, max_bytes=request.max_file_bytes)
        chunks = chunk_document(doc.text, request.chunking, embedder.count_tokens, embedder.token_offsets)
        if not chunks:
            raise DocumentError(path, "the file contains no text.")
        if len(chunks) > MAX_CHUNKS_PER_FILE:
            raise DocumentError(path, f"the file makes {len(chunks)} passages, over the {MAX_CHUNKS_PER_FILE} "
                                      "limit for one file; split it into smaller files.")
    except DocumentError as exc:
        _mark(db, row["id"], "skipped", exc.reason, digest)
        result.skipped.append((str(path), exc.reason))
        return
    done = [0]

    def on_batch(n: int) -> None:
        done[0] += n
        clock.part(done[0] / len(chunks))
        if cancel is not None:
            cancel.raise_if_cancelled()

    vectors = embedder.embed([c.text for c in chunks], batch_size=request.batch_size, on_batch=on_batch)
    store_chunks(db, collection_id, row["id"], chunks, vectors, digest, doc.notice)
    result.indexed += 1
    result.chunks += len(chunks)


def _sha256(path: Path) -> str:
    """The file's content hash, read in blocks (a multi-gigabyte file is never held in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def store_chunks(db: DocsDatabase, collection_id: int, file_id: int, chunks, vectors: np.ndarray, digest: str,
                 notice: str = "") -> None:
    """One file's passages replace its old ones, all in one transaction."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    with db.write() as conn:
        conn.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
        conn.executemany(
            "INSERT INTO chunks (collection_id, file_id, position, start, end, text, vector) VALUES (?,?,?,?,?,?,?)",
            [(collection_id, file_id, i, c.start, c.end, c.text, vectors[i].tobytes()) for i, c in enumerate(chunks)])
        conn.execute("UPDATE files SET status = 'indexed', reason = ?, hash = ?, chunk_count = ?, indexed_at = ? "
                     "WHERE id = ?", (notice, digest, len(chunks), time.time(), file_id))
        conn.execute("UPDATE collections SET generation = generation + 1, updated_at = ?, "
                     "dim = CASE dim WHEN 0 THEN ? ELSE dim END WHERE id = ?",
                     (time.time(), int(vectors.shape[1]), collection_id))


def _mark(db: DocsDatabase, file_id: int, status: str, reason: str | None, digest: str | None = None) -> None:
    with db.write() as conn:
        if status == "skipped":  # a file that became unreadable loses its old passages too
            conn.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
            conn.execute("UPDATE files SET status = 'skipped', reason = ?, hash = ?, chunk_count = 0 WHERE id = ?",
                         (reason, digest or "", file_id))
        else:
            conn.execute("UPDATE files SET status = ? WHERE id = ?", (status, file_id))


def _weight(row) -> int:
    """A file's share of the work: its size, except known binaries (refused at once, without reading)."""
    return 1 if Path(row["path"]).suffix.lower() in BINARY_EXTENSIONS else max(1, row["size"])


def _progress(fn: ProgressFn | None, fraction: float, message: str) -> None:
    if fn is not None:
        fn(min(1.0, max(0.0, fraction)), message)


class _Clock:
    """Progress by bytes (a big file counts for more), and an estimate from the rate so far."""

    def __init__(self, total_bytes: int, total_files: int, on_progress: ProgressFn | None) -> None:
        self.total, self.files, self.on_progress = max(1, total_bytes), total_files, on_progress
        self.done_bytes, self.files_done, self.name, self.size = 0, 0, "", 0
        self.started = time.monotonic()

    def begin(self, name: str, size: int) -> None:
        self.name, self.size = name, size
        self.part(0.0)

    def part(self, fraction_of_file: float) -> None:
        fraction = (self.done_bytes + fraction_of_file * self.size) / self.total
        elapsed = time.monotonic() - self.started
        estimate = ""
        if fraction > 0.02 and elapsed > 2:
            estimate = " · about " + format_duration(elapsed / fraction - elapsed) + " left"
        _progress(self.on_progress, fraction, f"{self.files_done + 1}/{self.files} files · {self.name}{estimate}")

    def done(self) -> None:
        self.done_bytes += self.size
        self.files_done += 1


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
