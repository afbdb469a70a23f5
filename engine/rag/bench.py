"""``hearth-cli bench-documents``: indexing throughput, query latency at 10k and 100k passages, database growth.

1. A corpus is generated (Markdown files of headings and paragraphs of English-like words, deterministic).
2. The real model's embedding rate is measured on a sample of its passages.
3. The whole corpus (≥ 10,000 passages) goes through the real indexing path — scan, read, hash, chunk with
   the real tokenizer, write rows, FTS5 and vector blobs, one transaction per file — with the model's forward
   pass replaced by seeded random unit vectors (``StandInEmbedder``), so the figure is the pipeline's own;
   the full-indexing time with the model is that plus passages ÷ the measured embedding rate. ``--real`` embeds
   everything with the model instead (slow on a CPU).
4. Queries run through the real query path (the model embeds the question; BM25; the cached matrix; fusion).
5. The collection is grown to ``scale`` passages with generated text and random-ish vectors (``store_chunks``,
   as the indexer writes them), measuring database size per passage at each step and query latency at the end.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from engine.config import _check

QUERIES = ["how does the harbour keep its ledger", "river trade and winter prices", "a lantern for the night watch",
           "who repairs the northern bridge", "grain stores after the flood", "the council decided on taxes",
           "copper tools from the eastern mines", "teaching children to read maps", "songs of the salt road",
           "the market opens at dawn"]


@dataclass(frozen=True)
class DocsBenchConfig:
    chunks: int = 10_000  # passages indexed through the real path (at least 10,000 for the report)
    scale: int = 100_000  # the collection is grown to this many passages for the large query figures
    sample: int = 256  # passages embedded by the real model to measure its rate
    queries: int = 20
    real: bool = False  # embed every passage with the model (slow on a CPU)
    workdir: str = ""  # where the corpus and database go ('' = a temporary folder)

    def __post_init__(self) -> None:
        _check(100 <= self.chunks <= 1_000_000, f"chunks must be between 100 and 1,000,000, not {self.chunks}")
        _check(self.scale >= self.chunks, "scale must be at least chunks")
        _check(self.sample >= 1 and self.queries >= 1, "sample and queries must be at least 1")


class StandInEmbedder:
    """The real tokenizer (chunking is real) with seeded random unit vectors instead of the forward pass."""

    def __init__(self, real) -> None:
        self.real, self.dim, self.name = real, real.dim, real.name + " (stand-in vectors)"
        self.count_tokens, self.token_offsets = real.count_tokens, real.token_offsets

    def embed(self, texts, *, batch_size: int = 32, on_batch=None) -> np.ndarray:
        out = np.stack([_random_unit(t, self.dim) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        if on_batch is not None:
            on_batch(len(texts))
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.real.embed_one(text)  # queries always use the real model


def _random_unit(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


# --- the corpus --------------------------------------------------------------------------------------------

def _vocabulary(rng: random.Random, n: int = 3000) -> list[str]:
    syllables = ["ka", "lo", "ri", "ten", "mar", "sa", "vel", "or", "dun", "ae", "fi", "gro", "han", "is", "ul",
                 "bre", "co", "ny", "pel", "st", "wy", "ze", "thr", "om"]
    words = {"".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(n * 2)}
    common = ("the a of and to in is was for on with as by at from that this it be are were which or their "
              "harbour river ledger winter prices lantern night watch bridge grain flood council taxes copper "
              "tools mines children maps songs salt road market dawn trade north east stores repairs").split()
    return common + sorted(words)[:n]


def paragraph(rng: random.Random, vocab: list[str], sentences: int) -> str:
    out = []
    for _ in range(sentences):
        # Zipf-like: common words often, rare words rarely, like real text.
        words = [vocab[min(len(vocab) - 1, int(rng.paretovariate(1.1)) - 1)] for _ in range(rng.randint(8, 20))]
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def write_corpus(folder: Path, files: int, paragraphs_per_file: int, seed: int = 0, start: int = 0) -> int:
    """Markdown files ``record-<start>…`` with headings and paragraphs; returns bytes written."""
    rng = random.Random(seed)
    vocab = _vocabulary(random.Random(0))
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(start, start + files):
        parts = [f"# Record {i}"]
        for j in range(paragraphs_per_file):
            if j % 4 == 0:
                parts.append(f"## Part {j // 4 + 1}")
            parts.append(paragraph(rng, vocab, rng.randint(3, 7)))
        text = "\n\n".join(parts) + "\n"
        (folder / f"record-{i:05d}.md").write_text(text, encoding="utf-8")
        total += len(text.encode())
    return total


# --- measuring ---------------------------------------------------------------------------------------------

def _query_latency(db, collection_id: int, embedder, n: int) -> dict:
    from engine.rag.search import SearchRequest, bm25_ranking, search, vector_ranking

    collection_ids = (collection_id,)
    search(db, SearchRequest("warm up", collection_ids), embedder_for=lambda _: embedder)  # loads the matrix
    totals, embeds, bm25s, vectors = [], [], [], []
    from engine.rag.collections import get_collection

    collection = get_collection(db, collection_id)
    fixed = _Fixed(embedder)
    for i in range(n):
        q = QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" {i}")
        t0 = time.perf_counter()
        search(db, SearchRequest(q, collection_ids, k=8), embedder_for=lambda _: embedder)
        totals.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        embedder.embed_one(q)
        embeds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bm25_ranking(db, [collection_id], q, 50)
        bm25s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        vector_ranking(db, [collection], q, 50, lambda _: fixed)
        vectors.append(time.perf_counter() - t0)
    ms = lambda xs: round(statistics.median(xs) * 1000, 2)  # noqa: E731
    return {"query_ms": ms(totals), "query_ms_max": round(max(totals) * 1000, 2), "embed_query_ms": ms(embeds),
            "bm25_ms": ms(bm25s), "vector_ms": ms(vectors), "fuse_and_fetch_ms": round(max(0.0, ms(totals)
                                                                                         - ms(embeds) - ms(bm25s)
                                                                                         - ms(vectors)), 2)}


class _Fixed:
    """An embedder whose query vector is already computed (to time the matrix scan alone)."""

    def __init__(self, embedder) -> None:
        self.vector = embedder.embed_one(QUERIES[0])

    def embed_one(self, _text: str) -> np.ndarray:
        return self.vector


def _grow(db, collection_id: int, target: int, dim: int, rng: random.Random, vocab: list[str],
          on_step: Callable[[int, float], None]) -> None:
    """Add generated passages until the collection holds ``target``, 100 per file, as the indexer writes them."""
    from engine.rag.chunker import Chunk
    from engine.rag.index import store_chunks

    have = db.query_one("SELECT COUNT(*) FROM chunks WHERE collection_id = ?", (collection_id,))[0]
    batch = 100
    while have < target:
        n = min(batch, target - have)
        texts = [paragraph(rng, vocab, 6) for _ in range(n)]
        vectors = np.random.default_rng(have).standard_normal((n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        row = db.query_one("INSERT INTO files (collection_id, path, status) VALUES (?, ?, 'pending') RETURNING id",
                           (collection_id, f"/generated/{have}.md"))
        t0 = time.perf_counter()
        store_chunks(db, collection_id, row[0], [Chunk(0, len(t), t) for t in texts], vectors, "generated")
        have += n
        on_step(have, time.perf_counter() - t0)


def run_documents_bench(config: DocsBenchConfig, *, on_progress=None, cancel=None) -> dict:
    import tempfile

    import torch

    from engine.rag import collections as c
    from engine.rag.db import DocsDatabase
    from engine.rag.embedder import load_embedder
    from engine.rag.index import IndexRequest, index_collection

    say = on_progress or (lambda f, m: None)
    work = Path(config.workdir) if config.workdir else Path(tempfile.mkdtemp(prefix="hearth-bench-docs-"))
    report: dict = {"threads": torch.get_num_threads(), "workdir": str(work), "load_average": [_load()]}
    say(0.0, "Loading the embedding model…")
    model = load_embedder()
    report["embedder"] = model.name
    # ~1 passage per 2.2 paragraphs of 3-7 sentences at 200 tokens: files of 24 paragraphs give ~11 passages.
    files = max(1, config.chunks // 10)
    say(0.02, f"Writing {files} generated files…")
    corpus_bytes = write_corpus(work / "corpus", files, 24)
    report["corpus"] = {"files": files, "bytes": corpus_bytes}

    with DocsDatabase(work / "documents.db") as db:
        collection = c.create_collection(db, "bench")
        c.add_sources(db, collection.id, [str(work / "corpus")])
        embedder = model if config.real else StandInEmbedder(model)
        t0 = time.perf_counter()
        result = index_collection(db, IndexRequest(collection.id), embedder=embedder,
                                  on_progress=lambda f, m: say(0.05 + 0.45 * f, "Indexing: " + m), cancel=cancel)
        seconds = time.perf_counter() - t0
        while result.chunks < config.chunks:  # top up with more files until the corpus holds enough passages
            extra = max(1, (config.chunks - result.chunks) // 8)
            corpus_bytes += write_corpus(work / "corpus", extra, 24, seed=files, start=files)
            files += extra
            t0 = time.perf_counter()
            more = index_collection(db, IndexRequest(collection.id), embedder=embedder, cancel=cancel)
            seconds += time.perf_counter() - t0
            result.chunks += more.chunks
            result.indexed += more.indexed
        sample = [r[0] for r in db.query("SELECT text FROM chunks ORDER BY id LIMIT ?", (config.sample,))]
        say(0.5, f"Embedding {len(sample)} passages with {model.name}…")
        t0 = time.perf_counter()
        model.embed(sample)
        embed_rate = len(sample) / (time.perf_counter() - t0)
        chunks = result.chunks
        report["indexing"] = {
            "passages": chunks, "files": result.indexed, "seconds": round(seconds, 2),
            "vectors": "model" if config.real else "stand-in (random unit vectors)",
            "pipeline_passages_per_s": round(chunks / seconds, 1),
            "pipeline_mb_per_s": round(corpus_bytes / seconds / 1e6, 3),
            "model_passages_per_s": round(embed_rate, 2),
            "projected_full_index_s": round(seconds + (0 if config.real else chunks / embed_rate), 1),
            "db_bytes": db.size_bytes(), "db_bytes_per_passage": round(db.size_bytes() / chunks),
        }
        say(0.55, "Queries at the indexed size…")
        report["queries_at_indexed"] = {"passages": chunks, **_query_latency(db, collection.id, model, config.queries)}
        growth = []
        rng = random.Random(1)
        vocab = _vocabulary(rng)
        steps = sorted({config.scale // 4, config.scale // 2, config.scale * 3 // 4, config.scale} - {0})
        insert_s, inserted = 0.0, 0
        for target in steps:
            if cancel is not None:
                cancel.raise_if_cancelled()

            def step(have: int, dt: float) -> None:
                nonlocal insert_s, inserted
                insert_s += dt
                inserted += 100
                say(0.6 + 0.35 * have / config.scale, f"Growing the collection: {have:,} passages")

            _grow(db, collection.id, target, model.dim, rng, vocab, step)
            db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = db.size_bytes()
            have = db.query_one("SELECT COUNT(*) FROM chunks WHERE collection_id = ?", (collection.id,))[0]
            growth.append({"passages": have, "db_bytes": size, "bytes_per_passage": round(size / have)})
        report["growth"] = growth
        report["insert_passages_per_s"] = round(inserted / insert_s, 1) if insert_s else None
        say(0.96, "Queries at the full size…")
        t0 = time.perf_counter()
        from engine.rag.vectors import vector_index

        vector_index(db, collection.id)
        report["matrix_load_s"] = round(time.perf_counter() - t0, 2)
        report["queries_at_scale"] = {"passages": config.scale,
                                      **_query_latency(db, collection.id, model, config.queries)}
    report["load_average"].append(_load())
    say(1.0, "Done")
    return report


def _load() -> float | None:
    """The 1-minute load average (None where the OS has none): how busy the machine was."""
    import os

    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def format_documents_report(r: dict) -> str:
    ix, q1, q2 = r["indexing"], r["queries_at_indexed"], r["queries_at_scale"]
    lines = [
        f"Embedder: {r['embedder']}  (torch threads: {r['threads']}; load average {r['load_average'][0]} -> "
        f"{r['load_average'][-1]})",
        f"Corpus: {r['corpus']['files']} generated files, {r['corpus']['bytes'] / 1e6:.1f} MB",
        f"Indexing ({ix['vectors']}): {ix['passages']:,} passages from {ix['files']} files in {ix['seconds']} s = "
        f"{ix['pipeline_passages_per_s']} passages/s, {ix['pipeline_mb_per_s']} MB/s",
        f"Model embedding rate: {ix['model_passages_per_s']} passages/s -> full indexing with the model "
        f"≈ {ix['projected_full_index_s']} s",
        f"Query at {q1['passages']:,} passages: median {q1['query_ms']} ms (max {q1['query_ms_max']}): embed question "
        f"{q1['embed_query_ms']} ms, BM25 {q1['bm25_ms']} ms, vectors {q1['vector_ms']} ms",
        f"Query at {q2['passages']:,} passages: median {q2['query_ms']} ms (max {q2['query_ms_max']}): embed question "
        f"{q2['embed_query_ms']} ms, BM25 {q2['bm25_ms']} ms, vectors {q2['vector_ms']} ms; matrix load "
        f"{r['matrix_load_s']} s (once, then cached)",
        "Database growth: " + ", ".join(f"{g['passages']:,} -> {g['db_bytes'] / 1e6:.0f} MB "
                                        f"({g['bytes_per_passage']} B/passage)" for g in r["growth"]),
        f"Insert rate while growing: {r['insert_passages_per_s']} passages/s",
    ]
    return "\n".join(lines)
