"""Full-text search over every message (SQLite FTS5)."""

from __future__ import annotations

import re

from engine.store.records import SearchHit

_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str:
    """The user's words as an FTS5 query: every word must occur; the last may be a prefix.

    Quoting each word means punctuation, ``AND``/``NOT``/``NEAR`` and unbalanced
    quotes in what the user typed are searched for, never parsed as syntax.
    """
    words = _WORD.findall(text)
    if not words:
        return ""
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


class SearchMixin:
    def search(self, text: str, *, limit: int = 100, conversation_id: int | None = None,
               marks: tuple[str, str] = ("[", "]")) -> list[SearchHit]:
        """Messages containing every word of ``text``, best matches first; ``marks`` wrap matched words."""
        query = fts_query(text)
        if not query:
            return []
        sql = ("SELECT m.id AS message_id, m.conversation_id, m.role, m.created_at, c.title, "
               "snippet(messages_fts, 0, ?, ?, '…', 16) AS snippet "
               "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
               "JOIN conversations c ON c.id = m.conversation_id WHERE messages_fts MATCH ?")
        params: list = [*marks, query]
        if conversation_id is not None:
            sql += " AND m.conversation_id = ?"
            params.append(conversation_id)
        sql += " ORDER BY bm25(messages_fts), m.created_at DESC LIMIT ?"
        params.append(limit)
        return [SearchHit(conversation_id=r["conversation_id"], conversation_title=r["title"],
                          message_id=r["message_id"], role=r["role"], snippet=" ".join(r["snippet"].split()),
                          created_at=r["created_at"]) for r in self.db.query(sql, params)]
