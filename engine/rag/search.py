"""Hybrid retrieval: BM25 over FTS5 and cosine similarity over vectors, fused by reciprocal rank.

Reciprocal rank fusion (Cormack et al., 2009): a passage's score is the sum of
``1 / (RRF_K + rank)`` over the rankings it appears in, so neither score scale
has to be calibrated against the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable

from engine.config import _check
from engine.rag.collections import Collection, get_collection
from engine.rag.db import DocsDatabase
from engine.rag.vectors import vector_index

RRF_K = 60
MODES = ("hybrid", "bm25", "vector")
WORD = re.compile(r"\w+", re.UNICODE)
EmbedderFor = Callable[[str], Any]  # a collection's embedder setting ('' = default) -> Embedder


@dataclass(frozen=True)
class SearchRequest:
    query: str
    collections: tuple[int | str, ...]
    k: int = 8
    mode: str = "hybrid"
    candidates: int = 50  # how deep each ranking goes before fusion

    def __post_init__(self) -> None:
        _check(bool(self.query.strip()), "the search query is empty")
        _check(len(self.collections) > 0, "choose at least one collection to search")
        _check(1 <= self.k <= 200, f"k must be between 1 and 200, not {self.k}")
        _check(self.mode in MODES, f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        _check(self.k <= self.candidates <= 2000, f"candidates must be between k and 2000, not {self.candidates}")


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    collection: str
    path: str
    position: int  # the passage's number within its file (0 = first)
    start: int  # character offsets in the file's text
    end: int
    text: str
    score: float  # the fused score (or the single ranking's, for bm25/vector)
    bm25_rank: int | None = None  # 1-based, None: not in that ranking
    vector_rank: int | None = None
    number: int = 0  # the [n] it is cited as, once put in a prompt

    def cite(self, number: int) -> "Passage":
        return replace(self, number=number)

    def to_dict(self) -> dict:
        return {"number": self.number, "collection": self.collection, "path": self.path, "position": self.position,
                "start": self.start, "end": self.end, "score": round(self.score, 6), "bm25_rank": self.bm25_rank,
                "vector_rank": self.vector_rank, "text": self.text}


# Words nearly every passage has: BM25 gives them almost no weight, yet each one makes FTS5 score every
# passage that has it. Leaving them out took BM25 at 100,000 passages from 1.1 s to 0.16 s (bench/README.md).
STOPWORDS = frozenset("""a an and are as at be but by can do does for from had has have how i if in into is it its
of on or so than that the their them then there these they this to was we were what when where which who why will
with would you your""".split())


def fts_query(text: str) -> str:
    """The user's words as an FTS5 OR-query of quoted terms (no FTS syntax can be injected).

    Stop words are left out, unless the query has nothing else."""
    words = list(dict.fromkeys(w.lower() for w in WORD.findall(text)))
    content = [w for w in words if w not in STOPWORDS] or words
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in content)


def bm25_ranking(db: DocsDatabase, collection_ids: list[int], query: str, limit: int) -> list[int]:
    match = fts_query(query)
    if not match:
        return []
    marks = ",".join("?" * len(collection_ids))
    rows = db.query(f"SELECT c.id FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
                    f"WHERE chunks_fts MATCH ? AND c.collection_id IN ({marks}) ORDER BY bm25(chunks_fts) LIMIT ?",
                    (match, *collection_ids, limit))
    return [r[0] for r in rows]


def vector_ranking(db: DocsDatabase, collections: list[Collection], query: str, limit: int,
                   embedder_for: EmbedderFor) -> list[int]:
    """Cosine ranking over all the collections (each embeds the query with its own model)."""
    scored: list[tuple[int, float]] = []
    vectors: dict[str, object] = {}
    for collection in collections:
        if collection.embedder not in vectors:
            vectors[collection.embedder] = embedder_for(collection.embedder).embed_one(query)
        scored += vector_index(db, collection.id).top(vectors[collection.embedder], limit)
    scored.sort(key=lambda item: -item[1])
    return [chunk_id for chunk_id, _ in scored[:limit]]


def fuse(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of several rankings of ids: (id, score), best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def search(db: DocsDatabase, request: SearchRequest, *, embedder_for: EmbedderFor | None = None) -> list[Passage]:
    """The best ``k`` passages of the collections for the query.

    ``embedder_for(collection.embedder)`` gives the model a collection was indexed with
    (default: the process-wide shared copy)."""
    from engine.rag.embedder import shared_embedder

    embedder_for = embedder_for or shared_embedder
    collections = [get_collection(db, key) for key in request.collections]
    ids = [c.id for c in collections]
    bm25 = bm25_ranking(db, ids, request.query, request.candidates) if request.mode != "vector" else []
    vector: list[int] = []
    if request.mode != "bm25":
        vector = vector_ranking(db, collections, request.query, request.candidates, embedder_for)
    fused = fuse([r for r in (bm25, vector) if r])[:request.k]
    bm25_rank = {cid: i for i, cid in enumerate(bm25, start=1)}
    vector_rank = {cid: i for i, cid in enumerate(vector, start=1)}
    return _passages(db, fused, bm25_rank, vector_rank)


def _passages(db: DocsDatabase, fused: list[tuple[int, float]], bm25_rank: dict, vector_rank: dict) -> list[Passage]:
    if not fused:
        return []
    marks = ",".join("?" * len(fused))
    rows = db.query(f"SELECT c.id, c.position, c.start, c.end, c.text, f.path, k.name FROM chunks c "
                    f"JOIN files f ON f.id = c.file_id JOIN collections k ON k.id = c.collection_id "
                    f"WHERE c.id IN ({marks})", [cid for cid, _ in fused])
    by_id = {r["id"]: r for r in rows}
    out = []
    for cid, score in fused:
        r = by_id.get(cid)
        if r is not None:
            out.append(Passage(cid, r["name"], r["path"], r["position"], r["start"], r["end"], r["text"], score,
                               bm25_rank.get(cid), vector_rank.get(cid)))
    return out
