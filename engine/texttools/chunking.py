"""Split long text into pieces that fit a token budget, on paragraph boundaries, with a little overlap.

Paragraphs (blank-line separated) are the units; a paragraph too long for one
piece is split on sentence ends, then lines, and as a last resort on token
boundaries (whole tokens only). Consecutive pieces overlap by up to
``overlap`` tokens of whole sentences, so a point made across a boundary is
seen whole in at least one piece. Empty paragraphs are dropped.
"""

from __future__ import annotations

import re
from typing import Any

SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n")
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")


class TokenCounter:
    """Counts tokens with a tokenizer (no special tokens), remembering recent answers."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        n = self._cache.get(text)
        if n is None:
            n = len(self.encode(text))
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[text] = n
        return n

    def many(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]  # one batched call: fast on big texts
        for text, row in zip(texts, ids):
            self._cache[text] = len(row)
        return [len(row) for row in ids]

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in PARAGRAPH_BREAK.split(text.replace("\r\n", "\n")) if p.strip()]


def chunk_text(counter: TokenCounter, text: str, budget: int, overlap: int = 0) -> list[str]:
    """Pieces of ``text`` of at most ``budget`` tokens each (as counted by ``counter``)."""
    if budget < 1:
        raise ValueError(f"budget must be at least 1 token, not {budget}")
    if not text.strip():
        return []
    if counter(text) <= budget:
        return [text.strip()]
    units: list[str] = []
    paras = paragraphs(text)
    for para, n in zip(paras, counter.many(paras)):
        units.extend([para] if n <= budget else _split_long(counter, para, budget))
    return _pack(counter, units, budget, overlap)


def _split_long(counter: TokenCounter, para: str, budget: int) -> list[str]:
    """A paragraph over budget: sentence groups that fit, and token slices for a sentence that does not."""
    sentences = [s.strip() for s in SENTENCE_END.split(para) if s and s.strip()]
    out: list[str] = []
    for sentence in sentences:
        if counter(sentence) <= budget:
            out.append(sentence)
        else:
            out.extend(_token_slices(counter, sentence, budget))
    return _pack(counter, out, budget, 0, sep=" ")


def _token_slices(counter: TokenCounter, text: str, budget: int) -> list[str]:
    ids = counter.encode(text)
    pieces = []
    start = 0
    while start < len(ids):
        end = min(len(ids), start + budget)
        piece = counter.decode(ids[start:end])
        # A slice can end inside a multi-byte character; move the cut back until it decodes cleanly.
        while end - start > 1 and (piece.endswith("\ufffd") or counter(piece) > budget):
            end -= 1
            piece = counter.decode(ids[start:end])
        pieces.append(piece.strip())
        start = end
    return [p for p in pieces if p]


def _pack(counter: TokenCounter, units: list[str], budget: int, overlap: int, sep: str = "\n\n") -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    carried = 0  # how many of current's units are overlap from the previous chunk

    def fits(candidate: list[str]) -> bool:
        # The sum of the parts is a close estimate; tokenize the joined text only near the limit.
        estimate = sum(counter(u) for u in candidate) + len(candidate) - 1
        return estimate <= budget * 0.9 or counter(sep.join(candidate)) <= budget

    for unit in units:
        if fits(current + [unit]):
            current.append(unit)
            continue
        if len(current) > carried:
            chunks.append(sep.join(current))
        tail = _overlap_tail(counter, current, overlap) if len(current) > carried else []
        current = tail + [unit]
        carried = len(tail)
        if not fits(current):  # no room for the overlap next to this unit
            current, carried = [unit], 0
    if len(current) > carried:
        chunks.append(sep.join(current))
    return chunks


def _overlap_tail(counter: TokenCounter, units: list[str], overlap: int) -> list[str]:
    """The last whole sentences of ``units`` that fit in ``overlap`` tokens."""
    if overlap <= 0 or not units:
        return []
    sentences = [s.strip() for s in SENTENCE_END.split(units[-1]) if s and s.strip()]
    tail: list[str] = []
    for sentence in reversed(sentences):
        if counter(" ".join([sentence] + tail)) > overlap:
            break
        tail.insert(0, sentence)
    return [" ".join(tail)] if tail else []
