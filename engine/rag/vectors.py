"""A collection's vectors as one in-memory matrix, searched by brute force (one matrix-vector product).

Chosen over an approximate index: at 100,000 passages × 384 floats the matrix
is 150 MB and a query is one BLAS call of a few milliseconds (bench/README.md),
exact, with nothing to build or tune. The matrix is cached per (database,
collection) and reloaded when the collection's ``generation`` changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.rag.db import DocsDatabase


@dataclass
class VectorIndex:
    generation: int
    ids: np.ndarray  # (n,) int64 chunk ids
    matrix: np.ndarray  # (n, dim) float32, unit rows

    def top(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` most similar chunks as (chunk id, cosine similarity), best first."""
        if len(self.ids) == 0 or k <= 0:
            return []
        scores = self.matrix @ query.astype(np.float32)  # (n,)
        k = min(k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best])]
        return [(int(self.ids[i]), float(scores[i])) for i in best]


_CACHE: dict[tuple[str, int], VectorIndex] = {}
_LOCK = threading.Lock()


def load_vectors(db: DocsDatabase, collection_id: int, dim: int) -> VectorIndex:
    rows = db.query("SELECT id, vector FROM chunks WHERE collection_id = ? ORDER BY id", (collection_id,))
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    if not rows:
        return VectorIndex(0, ids, np.zeros((0, max(1, dim)), dtype=np.float32))
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    return VectorIndex(0, ids, matrix)


def vector_index(db: DocsDatabase, collection_id: int) -> VectorIndex:
    """The cached matrix, reloaded when the collection changed since it was read."""
    row = db.query_one("SELECT generation, dim FROM collections WHERE id = ?", (collection_id,))
    generation, dim = (row["generation"], row["dim"]) if row else (-1, 0)
    key = (str(Path(db.path).resolve()), collection_id)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.generation == generation:
            return cached
    index = load_vectors(db, collection_id, dim)
    index.generation = generation
    with _LOCK:
        _CACHE[key] = index
    return index


def forget(db_path: Path | str | None = None) -> None:
    """Drop cached matrices (all, or one database's)."""
    with _LOCK:
        for key in [k for k in _CACHE if db_path is None or k[0] == str(Path(db_path).resolve())]:
            del _CACHE[key]
