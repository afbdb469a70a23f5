"""Collections, what was added to them (files and folders), and their files' states."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from engine.rag.db import DocsDatabase
from engine.rag.errors import CollectionError

MAX_NAME = 80


@dataclass(frozen=True)
class Collection:
    id: int
    name: str
    embedder: str  # '' = the default model
    dim: int
    generation: int
    files: int = 0
    indexed: int = 0
    pending: int = 0
    problems: int = 0  # skipped or missing
    chunks: int = 0


@dataclass(frozen=True)
class Source:
    id: int
    path: str
    is_folder: bool


@dataclass(frozen=True)
class FileEntry:
    id: int
    path: str
    size: int
    mtime: float
    status: str  # pending, indexed, skipped, missing
    reason: str
    chunk_count: int
    source_id: int | None


_COLLECTION_SQL = """
SELECT c.*,
  (SELECT COUNT(*) FROM files f WHERE f.collection_id = c.id) AS n_files,
  (SELECT COUNT(*) FROM files f WHERE f.collection_id = c.id AND f.status = 'indexed') AS n_indexed,
  (SELECT COUNT(*) FROM files f WHERE f.collection_id = c.id AND f.status = 'pending') AS n_pending,
  (SELECT COUNT(*) FROM files f WHERE f.collection_id = c.id AND f.status IN ('skipped', 'missing')) AS n_problems,
  (SELECT COALESCE(SUM(chunk_count), 0) FROM files f WHERE f.collection_id = c.id) AS n_chunks
FROM collections c
"""


def _collection(row) -> Collection:
    return Collection(row["id"], row["name"], row["embedder"], row["dim"], row["generation"], row["n_files"],
                      row["n_indexed"], row["n_pending"], row["n_problems"], row["n_chunks"])


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise CollectionError("A collection needs a name.")
    if len(name) > MAX_NAME:
        raise CollectionError(f"A collection name can have at most {MAX_NAME} characters.")
    return name


def create_collection(db: DocsDatabase, name: str, *, embedder: str = "") -> Collection:
    name = _clean_name(name)
    if db.query_one("SELECT id FROM collections WHERE name = ?", (name,)):
        raise CollectionError(f"There is already a collection named {name!r}.")
    if embedder:
        folder = Path(embedder).expanduser().resolve()
        if not (folder / "config.json").is_file():
            raise CollectionError(f"{folder} is not a model folder (no config.json). Choose a local "
                                  "sentence-embedding model folder, such as an unpacked all-MiniLM-L6-v2.")
        embedder = str(folder)
    now = time.time()
    with db.write() as conn:
        cur = conn.execute("INSERT INTO collections (name, embedder, created_at, updated_at) VALUES (?, ?, ?, ?)",
                           (name, str(embedder or ""), now, now))
    return get_collection(db, cur.lastrowid)


def get_collection(db: DocsDatabase, key: int | str) -> Collection:
    """By id, or by name (case-insensitive)."""
    if isinstance(key, int):
        row = db.query_one(_COLLECTION_SQL + " WHERE c.id = ?", (key,))
    else:
        row = db.query_one(_COLLECTION_SQL + " WHERE c.name = ?", (" ".join(str(key).split()),))
    if row is None:
        names = ", ".join(c.name for c in list_collections(db)) or "none yet"
        raise CollectionError(f"There is no collection {key!r} (collections: {names}).")
    return _collection(row)


def list_collections(db: DocsDatabase) -> list[Collection]:
    return [_collection(r) for r in db.query(_COLLECTION_SQL + " ORDER BY c.name COLLATE NOCASE")]


def rename_collection(db: DocsDatabase, collection_id: int, name: str) -> Collection:
    name = _clean_name(name)
    other = db.query_one("SELECT id FROM collections WHERE name = ?", (name,))
    if other and other["id"] != collection_id:
        raise CollectionError(f"There is already a collection named {name!r}.")
    with db.write() as conn:
        conn.execute("UPDATE collections SET name = ?, updated_at = ? WHERE id = ?", (name, time.time(), collection_id))
    return get_collection(db, collection_id)


def delete_collection(db: DocsDatabase, collection_id: int) -> None:
    """The collection, its files' chunks and its links to conversations (the files on disk are untouched)."""
    with db.write() as conn:
        cur = conn.execute("DELETE FROM collections WHERE id = ?", (collection_id,))
    if cur.rowcount == 0:
        raise CollectionError(f"There is no collection {collection_id}.")


def add_sources(db: DocsDatabase, collection_id: int, paths: list[str]) -> list[Source]:
    """Remember files and folders as part of the collection; the next indexing run reads them."""
    get_collection(db, collection_id)
    added = []
    now = time.time()
    with db.write() as conn:
        for raw in paths:
            path = Path(raw).expanduser().resolve()
            if not path.exists():
                raise CollectionError(f"{path}: no such file or folder; nothing was added.")
            conn.execute("INSERT OR IGNORE INTO sources (collection_id, path, is_folder, added_at) VALUES (?, ?, ?, ?)",
                         (collection_id, str(path), int(path.is_dir()), now))
            for excluded in conn.execute("SELECT id, path FROM files WHERE collection_id = ? AND status = 'excluded'",
                                         (collection_id,)).fetchall():
                if _under(Path(excluded["path"]), [path]):  # added again on purpose: index it again
                    conn.execute("UPDATE files SET status = 'pending', reason = '' WHERE id = ?", (excluded["id"],))
            row = conn.execute("SELECT * FROM sources WHERE collection_id = ? AND path = ?",
                               (collection_id, str(path))).fetchone()
            added.append(Source(row["id"], row["path"], bool(row["is_folder"])))
    return added


def list_sources(db: DocsDatabase, collection_id: int) -> list[Source]:
    rows = db.query("SELECT * FROM sources WHERE collection_id = ? ORDER BY path", (collection_id,))
    return [Source(r["id"], r["path"], bool(r["is_folder"])) for r in rows]


def remove_paths(db: DocsDatabase, collection_id: int, paths: list[str]) -> int:
    """Forget files or folders and what was indexed from them. Returns how many files were removed.

    A file inside a folder that stays in the collection is kept as 'excluded', so a re-scan does not
    bring it back."""
    roots = [Path(raw).expanduser().resolve() for raw in paths]
    sources = db.query("SELECT id, path FROM sources WHERE collection_id = ?", (collection_id,))
    gone_sources = {r["id"] for r in sources if _under(Path(r["path"]), roots)}
    kept_folders = [Path(r["path"]) for r in sources if r["id"] not in gone_sources]
    files = db.query("SELECT id, path FROM files WHERE collection_id = ?", (collection_id,))
    hit = [r for r in files if _under(Path(r["path"]), roots)]
    with db.write() as conn:
        conn.executemany("DELETE FROM sources WHERE id = ?", [(i,) for i in gone_sources])
        for row in hit:
            if _under(Path(row["path"]), kept_folders):
                conn.execute("DELETE FROM chunks WHERE file_id = ?", (row["id"],))
                conn.execute("UPDATE files SET status = 'excluded', reason = 'removed from the collection', "
                             "chunk_count = 0, hash = '' WHERE id = ?", (row["id"],))
            else:
                conn.execute("DELETE FROM files WHERE id = ?", (row["id"],))
        conn.execute("UPDATE collections SET generation = generation + 1, updated_at = ? WHERE id = ?",
                     (time.time(), collection_id))
    return len(hit)


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def list_files(db: DocsDatabase, collection_id: int) -> list[FileEntry]:
    rows = db.query("SELECT * FROM files WHERE collection_id = ? ORDER BY path", (collection_id,))
    return [FileEntry(r["id"], r["path"], r["size"], r["mtime"], r["status"], r["reason"], r["chunk_count"],
                      r["source_id"]) for r in rows]


def mark_for_rescan(db: DocsDatabase, collection_id: int, paths: list[str] | None = None) -> None:
    """Re-read files even if unchanged (all of them, or those given): they become pending."""
    with db.write() as conn:
        if paths is None:
            conn.execute("UPDATE files SET status = 'pending', hash = '' WHERE collection_id = ?", (collection_id,))
        else:
            for path in paths:
                conn.execute("UPDATE files SET status = 'pending', hash = '' WHERE collection_id = ? AND path = ?",
                             (collection_id, path))
