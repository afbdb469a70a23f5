"""Which collections a conversation uses, and which passages each stored reply was given.

Conversations and messages live in hearth.db; these links live in documents.db
keyed by their ids (no cross-file foreign key), so the index can be rebuilt or
deleted without touching a conversation. A reply's passages are stored as they
were (text, file, offsets): re-indexing later never changes what it cited.
"""

from __future__ import annotations

from typing import Iterable

from engine.rag.collections import Collection, get_collection
from engine.rag.db import DocsDatabase
from engine.rag.search import Passage


def conversation_collections(db: DocsDatabase, conversation_id: int) -> list[Collection]:
    rows = db.query("SELECT collection_id FROM conversation_collections WHERE conversation_id = ? "
                    "ORDER BY collection_id", (conversation_id,))
    return [get_collection(db, r[0]) for r in rows]


def set_conversation_collections(db: DocsDatabase, conversation_id: int, collection_ids: Iterable[int]) -> None:
    with db.write() as conn:
        conn.execute("DELETE FROM conversation_collections WHERE conversation_id = ?", (conversation_id,))
        conn.executemany("INSERT OR IGNORE INTO conversation_collections (conversation_id, collection_id) "
                         "VALUES (?, ?)", [(conversation_id, int(c)) for c in collection_ids])


def save_reply_passages(db: DocsDatabase, message_id: int, passages: Iterable[Passage]) -> None:
    with db.write() as conn:
        conn.execute("DELETE FROM reply_passages WHERE message_id = ?", (message_id,))
        conn.executemany(
            "INSERT INTO reply_passages (message_id, number, path, start, end, text, score, collection) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(message_id, p.number, p.path, p.start, p.end, p.text, p.score, p.collection) for p in passages])


def reply_passages(db: DocsDatabase, message_ids: Iterable[int]) -> dict[int, list[Passage]]:
    """Stored passages of each reply that has some: {message id: passages by number}."""
    ids = [int(i) for i in message_ids]
    out: dict[int, list[Passage]] = {}
    for start in range(0, len(ids), 500):  # SQLite's variable limit
        part = ids[start:start + 500]
        rows = db.query(f"SELECT * FROM reply_passages WHERE message_id IN ({','.join('?' * len(part))}) "
                        "ORDER BY message_id, number", part)
        for r in rows:
            out.setdefault(r["message_id"], []).append(
                Passage(0, r["collection"], r["path"], -1, r["start"], r["end"], r["text"], r["score"],
                        number=r["number"]))
    return out
