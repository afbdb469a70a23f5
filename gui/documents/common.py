"""What the Documents view and the chat share: the scheduler threads documents use, and passage labels."""

from __future__ import annotations

from pathlib import Path

INDEXING = "documents"  # the scheduler's thread for indexing: never in the way of the chat's model
QUERIES = "documents-query"  # lists, searches and links: quick, and not stuck behind a long indexing run


def passage_title(passage) -> str:
    number = f"[{passage.number}] " if passage.number else ""
    return f"{number}{Path(passage.path).name} · characters {passage.start}–{passage.end}"


def passage_snippet(passage, limit: int = 220) -> str:
    text = " ".join(passage.text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"
