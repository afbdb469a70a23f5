"""Token-based chunking on paragraph boundaries: budgets, overlap, empty pieces, huge sentences."""

from __future__ import annotations

import pytest

from engine.texttools.chunking import TokenCounter, chunk_text, paragraphs


@pytest.fixture(scope="module")
def counter():
    from tiny_model import make_tokenizer

    return TokenCounter(make_tokenizer())


TEXT = "\n\n".join(f"Paragraph {i}. The sea is wide and the waves are high. Ships sail at night number {i}."
                   for i in range(12))


def test_exactly_the_budget_is_one_piece(counter):
    n = counter(TEXT)
    assert chunk_text(counter, TEXT, n) == [TEXT]


def test_one_token_over_splits_on_paragraphs(counter):
    n = counter(TEXT)
    pieces = chunk_text(counter, TEXT, n - 1)
    assert len(pieces) == 2
    assert all(counter(p) <= n - 1 for p in pieces)
    # Split between paragraphs, never inside one: every paragraph is whole in some piece.
    for para in paragraphs(TEXT):
        assert any(para in p for p in pieces)


def test_pieces_fit_and_overlap(counter):
    budget = counter(TEXT) // 4
    pieces = chunk_text(counter, TEXT, budget, overlap=30)
    assert len(pieces) >= 4
    assert all(counter(p) <= budget for p in pieces)
    # Each piece after the first starts with the last sentence(s) of the one before.
    for prev, nxt in zip(pieces, pieces[1:]):
        first_line = nxt.split("\n\n")[0]
        assert first_line in prev


def test_empty_input_and_empty_paragraphs(counter):
    assert chunk_text(counter, "", 50) == []
    assert chunk_text(counter, "  \n\n \n", 50) == []
    text = "one.\n\n\n\n   \n\ntwo.\n\n" + "\n\n".join(["three three three three."] * 30)
    pieces = chunk_text(counter, text, 40)
    assert all(p.strip() for p in pieces)
    assert pieces[0].startswith("one.\n\ntwo.")


def test_a_sentence_longer_than_the_budget_is_cut_on_whole_tokens(counter):
    sentence = "Café naïve 東京 🙂 " * 40  # multi-byte characters across byte-level tokens
    pieces = chunk_text(counter, sentence, 25)
    assert len(pieces) > 3
    assert all(counter(p) <= 25 and "\ufffd" not in p for p in pieces)
    assert "".join(pieces).replace(" ", "") == sentence.replace(" ", "")


def test_bad_budget(counter):
    with pytest.raises(ValueError):
        chunk_text(counter, TEXT, 0)
