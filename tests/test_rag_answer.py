"""Cited answers (passages in the prompt within a budget), conversation links, and the command line."""

from __future__ import annotations

import json

import pytest

from engine.config import ChatMessage, SamplingConfig
from engine.rag import collections as c
from engine.rag import links
from engine.rag.answer import (INSTRUCTION, RetrievalConfig, answer_with_documents, fit_passages, grounded_question,
                               passage_budget)
from engine.rag.db import DocsDatabase
from engine.rag.index import IndexRequest, index_collection
from engine.rag.search import Passage

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory):
    from tiny_embedder import make_tiny_embedder

    return make_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder"))


@pytest.fixture
def indexed(tmp_path, embedder_dir):
    from engine.rag.embedder import load_embedder

    (tmp_path / "bank.md").write_text("# Loans\n\nThe bank by the river lends money for a boat.\n")
    (tmp_path / "sea.md").write_text("# Sea\n\nShips sail over the sea at night.\n")
    embedder = load_embedder(embedder_dir)
    with DocsDatabase() as db:
        collection = c.create_collection(db, "Notes", embedder=str(embedder_dir))
        c.add_sources(db, collection.id, [str(tmp_path / "bank.md"), str(tmp_path / "sea.md")])
        index_collection(db, IndexRequest("Notes"), embedder=embedder)
        yield db, embedder


def _passage(number: int, text: str) -> Passage:
    return Passage(number, "Notes", f"/docs/file{number}.md", 0, 0, len(text), text, 1.0 / number)


def test_passages_fit_the_budget_in_rank_order(tiny_lm):
    passages = [_passage(1, "short one"), _passage(2, "word " * 400), _passage(3, "another short one")]
    chosen = fit_passages(tiny_lm.tokenizer, passages, budget=120)
    assert [p.text for p in chosen] == ["short one", "another short one"]
    assert [p.number for p in chosen] == [1, 2]
    prompt = grounded_question("What is short?", chosen)
    assert prompt.startswith(INSTRUCTION) and "[1] (file1.md) short one" in prompt
    assert "[2] (file3.md) another short one" in prompt and prompt.endswith("Question: What is short?")


def test_the_budget_leaves_room_for_the_conversation_and_the_reply(tiny_lm):
    messages = [ChatMessage("user", "hello " * 50)]
    small = passage_budget(tiny_lm.tokenizer, messages, "", 256, 64, 0.9)
    big = passage_budget(tiny_lm.tokenizer, messages, "", 2048, 64, 0.5)
    assert 0 <= small < 256 - 64 - 50
    assert big == 1024


def test_answer_carries_the_passages_it_was_given(tiny_lm, indexed, monkeypatch):
    import engine.chat_generation as chat_generation

    db, embedder = indexed
    retrieval = RetrievalConfig(collections=("Notes",), k=2)
    seen = {}
    real_chat = chat_generation.chat

    def spy_chat(lm, messages, sampling, **kwargs):
        seen["prompt"] = messages[-1].content
        return real_chat(lm, messages, sampling, **kwargs)

    monkeypatch.setattr(chat_generation, "chat", spy_chat)
    result = answer_with_documents(tiny_lm, [ChatMessage("user", "Who lends money by the river?")], retrieval,
                                   SamplingConfig(max_new_tokens=4, temperature=0), db=db,
                                   embedder_for=lambda _: embedder)
    assert result.passages and result.passages[0].number == 1
    assert result.passages[0].path.endswith("bank.md")
    assert "[1] (bank.md)" in seen["prompt"] and seen["prompt"].endswith("Question: Who lends money by the river?")


def test_no_match_says_the_reply_is_not_grounded(tiny_lm, indexed):
    db, embedder = indexed
    result = answer_with_documents(tiny_lm, [ChatMessage("user", "zzz")], RetrievalConfig(("Notes",), mode="bm25"),
                                   SamplingConfig(max_new_tokens=2), db=db, embedder_for=lambda _: embedder)
    assert result.passages == [] and "not grounded" in result.notice


def test_conversations_remember_collections_and_replies_their_passages(indexed):
    db, _ = indexed
    other = c.create_collection(db, "Other")
    notes = c.get_collection(db, "Notes")
    links.set_conversation_collections(db, 7, [notes.id, other.id])
    assert [x.name for x in links.conversation_collections(db, 7)] == ["Notes", "Other"]
    assert links.conversation_collections(db, 8) == []
    links.save_reply_passages(db, 42, [_passage(1, "first").cite(1), _passage(2, "second").cite(2)])
    stored = links.reply_passages(db, [42, 43])
    assert list(stored) == [42] and [p.text for p in stored[42]] == ["first", "second"]
    c.delete_collection(db, other.id)
    assert [x.name for x in links.conversation_collections(db, 7)] == ["Notes"]


def test_tasks_edit_and_list_collections(tmp_path):
    from engine.rag.tasks import CollectionEdit, collections_task

    (tmp_path / "a.md").write_text("Some text.\n")
    made = collections_task(None, edit=CollectionEdit("create", name="Work"))
    assert made.selected.name == "Work" and [x.name for x in made.collections] == ["Work"]
    added = collections_task(None, edit=CollectionEdit("add", collection=made.selected.id, paths=(str(tmp_path),)))
    assert added.selected.id == made.selected.id
    renamed = collections_task(None, edit=CollectionEdit("rename", collection="Work", name="Office"))
    assert renamed.selected.name == "Office"
    gone = collections_task(None, edit=CollectionEdit("delete", collection="Office"))
    assert gone.collections == [] and gone.selected is None
    with pytest.raises(ValueError):
        CollectionEdit("explode")


# --- command line -------------------------------------------------------------------------------------------

def test_cli_add_list_search_remove(tmp_path, embedder_dir, capsys):
    from engine.cli import main

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bank.md").write_text("The bank by the river lends money.\n")
    (tmp_path / "docs" / "empty.txt").write_text("")
    assert main(["docs", "add", "Notes", str(tmp_path / "docs"), "--embedder", str(embedder_dir)]) == 0
    out = capsys.readouterr()
    assert "1 file(s) indexed" in out.out and "empty.txt: the file is empty." in out.err
    assert main(["docs", "list"]) == 0
    assert "Notes: 1/2 files" in capsys.readouterr().out
    assert main(["docs", "list", "Notes"]) == 0
    listing = capsys.readouterr().out
    assert "indexed" in listing and "skipped" in listing and "the file is empty." in listing
    assert main(["docs", "search", "Notes", "river money", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found[0]["path"].endswith("bank.md") and found[0]["bm25_rank"] == 1
    assert main(["docs", "remove", "Notes", str(tmp_path / "docs" / "bank.md")]) == 0
    assert "1 file(s) removed" in capsys.readouterr().out
    assert main(["docs", "remove", "Notes", "--all"]) == 0
    assert main(["docs", "search", "Notes", "river"]) == 1
    assert "no collection" in capsys.readouterr().err


def test_cli_eval_retrieval_prints_every_mode(tmp_path, embedder_dir, capsys):
    from engine.cli import main

    (tmp_path / "bank.md").write_text("The bank by the river lends money.\n\nShips sail at night.\n")
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "who lends money", "contains": "lends money"}) + "\n")
    assert main(["docs", "add", "N", str(tmp_path / "bank.md"), "--embedder", str(embedder_dir)]) == 0
    capsys.readouterr()
    assert main(["eval-retrieval", str(qa), "--collection", "N", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["modes"]) == {"hybrid", "bm25", "vector"} and report["modes"]["bm25"]["mrr"] == 1.0
    qa.write_text("not json\n")
    assert main(["eval-retrieval", str(qa), "--collection", "N"]) == 1
    assert "line 1" in capsys.readouterr().err


def test_a_short_follow_up_is_searched_with_the_question_before_it():
    from engine.rag.answer import retrieval_query

    first = ChatMessage("user", "How long is the warranty on the boat engine?")
    reply = ChatMessage("assistant", "Two years [1].")
    assert retrieval_query([first]) == first.content
    assert retrieval_query([first, reply, ChatMessage("user", "And the sails?")]) == first.content + "\nAnd the sails?"
    long_question = ChatMessage("user", "Which documents describe how to repair the northern bridge?")
    assert retrieval_query([first, reply, long_question]) == long_question.content
