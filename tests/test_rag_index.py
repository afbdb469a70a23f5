"""Document collections: chunking, indexing (new/changed/unchanged/gone files, resume, bad files), search."""

from __future__ import annotations

import os
import sqlite3
import time

import numpy as np
import pytest

from engine.cancel import CancelToken
from engine.rag import collections as c
from engine.rag.chunker import ChunkConfig, chunk_document
from engine.rag.db import DocsDatabase
from engine.rag.errors import CollectionError, CollectionsLockedError
from engine.rag.index import IndexRequest, index_collection
from engine.rag.lock import IndexLock
from engine.rag.search import SearchRequest, fts_query, fuse, search

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    from tiny_embedder import make_tiny_embedder

    from engine.rag.embedder import load_embedder

    return load_embedder(make_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder")))


@pytest.fixture
def db():
    with DocsDatabase() as database:
        yield database


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "notes"
    root.mkdir()
    (root / "sea.md").write_text("# The sea\n\nShips sail over the sea at night. The waves are high.\n\n"
                                 "## Harbour\n\nThe harbour is quiet in the morning.\n")
    (root / "bank.txt").write_text("The bank by the river lends money. A loan needs a form.\n")
    (root / "empty.txt").write_text("")
    (root / "blob.dat").write_bytes(b"\x00\x01\x02binary\x00" * 50)
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (root / ".hidden.md").write_text("secret")
    return root


def _index(db, embedder, name="Notes", **kwargs):
    return index_collection(db, IndexRequest(name), embedder=embedder, **kwargs)


def _make(db, folder, name="Notes"):
    collection = c.create_collection(db, name)
    c.add_sources(db, collection.id, [str(folder)])
    return collection


def _statuses(db, collection_id):
    return {os.path.basename(f.path): (f.status, f.reason) for f in c.list_files(db, collection_id)}


# --- chunking -----------------------------------------------------------------------------------------------

def test_chunks_are_exact_slices_within_budget_and_headings_start_chunks(embedder):
    body = " ".join(["The sea is wide and ships sail at night."] * 12)
    text = f"# One\n\n{body}\n\n{body}\n\n# Two\n\n{body}\n\n" + "word " * 300
    config = ChunkConfig(max_tokens=80, overlap=30)
    chunks = chunk_document(text, config, embedder.count_tokens, embedder.token_offsets)
    assert len(chunks) > 4
    for chunk in chunks:
        assert chunk.text == text[chunk.start:chunk.end]
        assert embedder.count_tokens([chunk.text])[0] <= config.max_tokens + 2  # +joins between units
    assert any(ch.text.startswith("# Two") for ch in chunks)
    assert any(a.end > b.start for a, b in zip(chunks, chunks[1:])), "consecutive chunks should overlap"
    assert chunks[-1].end == len(text.rstrip())


def test_chunk_config_is_validated():
    with pytest.raises(ValueError):
        ChunkConfig(max_tokens=100, overlap=100)


# --- indexing -----------------------------------------------------------------------------------------------

def test_index_lists_unreadable_files_with_reasons_and_stores_passages(db, embedder, folder):
    collection = _make(db, folder)
    result = _index(db, embedder)
    assert result.indexed == 2 and result.chunks >= 2
    states = _statuses(db, collection.id)
    assert states["sea.md"][0] == states["bank.txt"][0] == "indexed"
    assert states["empty.txt"] == ("skipped", "the file is empty.")
    assert states["blob.dat"][0] == "skipped" and "binary" in states["blob.dat"][1]
    assert states["photo.png"][0] == "skipped" and "image" in states["photo.png"][1]
    assert ".hidden.md" not in states
    stored = db.query("SELECT c.start, c.end, c.text, f.path, length(c.vector) AS n FROM chunks c "
                      "JOIN files f ON f.id = c.file_id")
    for row in stored:
        assert open(row["path"], encoding="utf-8").read()[row["start"]:row["end"]] == row["text"]
        assert row["n"] == embedder.dim * 4
    assert c.get_collection(db, "notes").dim == embedder.dim


def test_only_new_or_changed_files_are_read_again(db, embedder, folder):
    collection = _make(db, folder)
    _index(db, embedder)
    again = _index(db, embedder)
    assert again.indexed == 0 and again.unchanged == 0

    os.utime(folder / "sea.md", (time.time() + 10, time.time() + 10))  # touched, same content
    (folder / "bank.txt").write_text("The bank changed its rules about money and the river.\n")
    (folder / "new.md").write_text("A new document about the cat on the mat.\n")
    before = db.query_one("SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path LIKE '%sea.md'")[0]
    result = _index(db, embedder)
    assert (result.indexed, result.unchanged) == (2, 1)
    after = db.query_one("SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path LIKE '%sea.md'")[0]
    assert before == after, "an unchanged file keeps its passages"
    assert "rules" in db.query_one("SELECT text FROM chunks c JOIN files f ON f.id = c.file_id "
                                   "WHERE f.path LIKE '%bank.txt'")[0]

    (folder / "new.md").unlink()
    result = _index(db, embedder)
    assert result.deleted == 1 and "new.md" not in _statuses(db, collection.id)


def test_cancelled_indexing_resumes_where_it_stopped(db, embedder, tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(6):
        (root / f"doc{i}.txt").write_text(f"Document number {i} talks about the sea and ships.\n")
    _make(db, root, "Many")
    token = CancelToken()
    seen = []

    def progress(fraction, message):
        seen.append(message)
        if sum("files ·" in m for m in seen) >= 3:  # while the second file is being embedded
            token.cancel()

    first = index_collection(db, IndexRequest("Many"), embedder=embedder, on_progress=progress, cancel=token)
    assert first.finish_reason == "cancelled" and 0 < first.indexed < 6 and first.remaining == 6 - first.indexed
    assert c.get_collection(db, "Many").pending == first.remaining
    second = index_collection(db, IndexRequest("Many"), embedder=embedder)
    assert second.indexed == first.remaining and c.get_collection(db, "Many").indexed == 6


def test_progress_has_an_estimate_and_reaches_every_file(db, embedder, folder):
    _make(db, folder)
    messages = []
    _index(db, embedder, on_progress=lambda f, m: messages.append((f, m)))
    assert all(0.0 <= f <= 1.0 for f, _ in messages)
    assert any(m.startswith("5/5 files") for _, m in messages)


def test_a_vanished_folder_keeps_its_passages_and_says_so(db, embedder, folder, tmp_path):
    collection = _make(db, folder)
    _index(db, embedder)
    folder.rename(tmp_path / "moved")
    result = _index(db, embedder)
    assert "Not found" in result.notice and str(folder) in result.notice
    assert {s for s, _ in _statuses(db, collection.id).values()} == {"missing"}
    assert search(db, SearchRequest("harbour morning", ("Notes",), mode="bm25"), embedder_for=lambda _: embedder)


def test_removing_a_file_of_a_folder_keeps_it_out_until_added_again(db, embedder, folder):
    collection = _make(db, folder)
    _index(db, embedder)
    assert c.remove_paths(db, collection.id, [str(folder / "bank.txt")]) == 1
    _index(db, embedder)
    assert _statuses(db, collection.id)["bank.txt"][0] == "excluded"
    assert not search(db, SearchRequest("loan", ("Notes",), mode="bm25"), embedder_for=lambda _: embedder)
    c.add_sources(db, collection.id, [str(folder / "bank.txt")])
    _index(db, embedder)
    assert _statuses(db, collection.id)["bank.txt"][0] == "indexed"
    c.remove_paths(db, collection.id, [str(folder)])
    assert c.get_collection(db, collection.id).files == 0


def test_a_collection_being_indexed_elsewhere_gets_one_clear_message(db, embedder, folder):
    collection = _make(db, folder)
    with IndexLock(db.path, collection):
        with pytest.raises(CollectionsLockedError, match="being indexed by another Hearth"):
            _index(db, embedder)


def test_a_locked_database_gets_one_clear_message(db, monkeypatch, tmp_path):

    collection = c.create_collection(db, "Locked")
    other = sqlite3.connect(str(db.path), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        db.conn.execute("PRAGMA busy_timeout = 50")
        with pytest.raises(CollectionsLockedError, match="locked by another Hearth"):
            c.rename_collection(db, collection.id, "Renamed")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert c.get_collection(db, collection.id).name == "Locked"


def test_collections_names_are_unique_and_deleting_keeps_the_files(db, folder):
    collection = c.create_collection(db, "Work")
    with pytest.raises(CollectionError, match="already"):
        c.create_collection(db, "  work ")
    with pytest.raises(CollectionError, match="no such file"):
        c.add_sources(db, collection.id, [str(folder / "nope.md")])
    renamed = c.rename_collection(db, collection.id, "Office")
    assert renamed.name == "Office" and c.get_collection(db, "office").id == collection.id
    c.delete_collection(db, collection.id)
    assert c.list_collections(db) == [] and (folder / "sea.md").exists()
    with pytest.raises(CollectionError, match="no collection"):
        c.get_collection(db, "Office")


def test_an_embedder_of_another_size_is_refused(db, embedder, folder):
    from dataclasses import replace

    _make(db, folder)
    _index(db, embedder)
    with pytest.raises(CollectionError, match="dimension"):
        _index(db, replace(embedder, dim=embedder.dim + 1))


# --- search -------------------------------------------------------------------------------------------------

def test_reciprocal_rank_fusion_rewards_agreement():
    fused = dict(fuse([[1, 2, 3], [3, 1, 4]]))
    assert max(fused, key=fused.get) == 1
    assert fused[3] > fused[2] and fused[3] > fused[4]


def test_fts_query_quotes_every_word():
    assert fts_query('what "is" NEAR(x) OR y*') == '"near" OR "x" OR "y"'  # stop words left out
    assert fts_query("what is it") == '"what" OR "is" OR "it"'  # unless nothing else is left
    assert fts_query('say "hi"') == '"say" OR "hi"'
    assert fts_query("?!") == ""


def test_search_modes_and_the_vector_ranking(db, embedder, folder):
    _make(db, folder)
    _index(db, embedder)
    bm25 = search(db, SearchRequest("river loan", ("Notes",), mode="bm25"), embedder_for=lambda _: embedder)
    assert bm25[0].path.endswith("bank.txt") and bm25[0].bm25_rank == 1 and bm25[0].vector_rank is None
    text = db.query_one("SELECT text FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path LIKE '%bank.txt'")[0]
    vector = search(db, SearchRequest(text, ("Notes",), mode="vector"), embedder_for=lambda _: embedder)
    assert vector[0].path.endswith("bank.txt") and vector[0].vector_rank == 1
    hybrid = search(db, SearchRequest("river loan", ("Notes",), k=2), embedder_for=lambda _: embedder)
    assert len(hybrid) == 2 and hybrid[0].path.endswith("bank.txt")
    assert hybrid[0].bm25_rank == 1 and hybrid[0].vector_rank is not None


def test_vector_matrix_is_reloaded_after_changes(db, embedder, folder):
    from engine.rag.vectors import vector_index

    collection = _make(db, folder)
    _index(db, embedder)
    first = vector_index(db, collection.id)
    assert vector_index(db, collection.id) is first
    (folder / "more.md").write_text("More about the cat and the dog.\n")
    _index(db, embedder)
    second = vector_index(db, collection.id)
    assert second is not first and len(second.ids) == len(first.ids) + 1
    assert np.allclose(np.linalg.norm(second.matrix, axis=1), 1.0, atol=1e-4)


def test_the_embedder_serves_several_threads_at_once(embedder):
    import threading

    texts = [f"the sea and the ship number {i}" for i in range(40)]
    expected = embedder.embed(texts)
    results, errors = {}, []

    def work(n: int) -> None:
        try:
            for _ in range(3):
                results[n] = embedder.embed(texts)
                embedder.count_tokens(texts)
                embedder.token_offsets(texts[n])
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(np.allclose(r, expected, atol=1e-5) for r in results.values())


def test_a_huge_file_is_indexed_in_part_and_says_so(db, embedder, tmp_path):
    (tmp_path / "huge.log").write_text("The harbour ledger grows every night.\n" * 400)  # ~15 KB
    (tmp_path / "huge.pdf").write_bytes(b"%PDF-1.4\n" + b"0" * 4000)
    collection = c.create_collection(db, "Big")
    c.add_sources(db, collection.id, [str(tmp_path / "huge.log"), str(tmp_path / "huge.pdf")])
    index_collection(db, IndexRequest("Big", max_file_bytes=2048), embedder=embedder)
    states = _statuses(db, collection.id)
    assert states["huge.log"][0] == "indexed" and "only its first 2 KB were read" in states["huge.log"][1]
    assert states["huge.pdf"][0] == "skipped" and "limit" in states["huge.pdf"][1]


def test_a_collection_deleted_while_it_indexes_stops_the_run_quietly(db, embedder, folder):
    collection = _make(db, folder)
    other = DocsDatabase(db.path)
    deleted = []

    def progress(fraction, message):
        if "files ·" in message and not deleted:
            c.delete_collection(other, collection.id)  # as the window's other thread would
            deleted.append(True)

    result = _index(db, embedder, on_progress=progress)
    other.close()
    assert result.finish_reason == "cancelled" and "deleted while it was being indexed" in result.notice
    assert db.query_one("SELECT COUNT(*) FROM chunks")[0] == 0


def test_a_damaged_database_is_kept_aside_and_an_empty_one_started(tmp_path):
    path = tmp_path / "documents.db"
    path.write_bytes(b"this is not a database" * 100)
    with DocsDatabase(path) as db:
        assert "damaged" in db.notice and c.list_collections(db) == []
        c.create_collection(db, "Fresh")
    kept = list(tmp_path.glob("documents.db.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"this is not a database")
    with DocsDatabase(path) as db:
        assert db.notice == "" and [x.name for x in c.list_collections(db)] == ["Fresh"]
    from engine.rag.db import take_notices

    assert "damaged" in take_notices() and take_notices() == ""  # given once, to whichever view asks
