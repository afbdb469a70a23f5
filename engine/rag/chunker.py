"""Split a document's text into retrieval chunks: paragraph and heading boundaries, token-sized, overlapping.

Unlike ``engine.texttools.chunking`` (which returns re-joined strings), every
chunk here is one contiguous slice ``text[start:end]`` of the document, so a
citation can open the file at the passage and highlight it exactly.

Units are paragraphs (blank-line separated; a Markdown/RST heading always
starts a new unit); a paragraph over budget is cut into sentences, and a
sentence over budget into token windows (by the tokenizer's character offsets).
Units are packed greedily up to ``max_tokens``; a heading starts a new chunk
once the current one holds a quarter of the budget; each new chunk begins with
the previous chunk's last sentences that fit in ``overlap`` tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from engine.config import _check

PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
HEADING = re.compile(r"^(#{1,6}\s+\S|[^\n]+\n[=\-~^]{3,}[ \t]*$)", re.MULTILINE)
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n")


@dataclass(frozen=True)
class ChunkConfig:
    max_tokens: int = 200  # all-MiniLM-L6-v2 reads 256 tokens; leave room for [CLS]/[SEP] and estimates
    overlap: int = 32

    def __post_init__(self) -> None:
        _check(16 <= self.max_tokens <= 8192, f"max_tokens must be between 16 and 8192, not {self.max_tokens}")
        _check(0 <= self.overlap < self.max_tokens, f"overlap must be between 0 and max_tokens - 1, not {self.overlap}")


@dataclass(frozen=True)
class Chunk:
    start: int  # character offsets in the document's text
    end: int
    text: str


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    heading: bool


Counter = Callable[[Sequence[str]], list[int]]  # texts -> token counts (one batched call)
Offsets = Callable[[str], list[tuple[int, int]]]  # text -> each token's (start, end) characters


def chunk_document(text: str, config: ChunkConfig, count: Counter, offsets: Offsets) -> list[Chunk]:
    units = _units(text, config.max_tokens, count, offsets)
    spans = _pack(units, config, lambda unit: _tail(text, unit, config.overlap, count))
    return [Chunk(s, e, text[s:e]) for s, e in spans]


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _blocks(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_heading) of paragraphs; a heading line is a block of its own."""
    cuts = {0, len(text)}
    for m in PARAGRAPH_BREAK.finditer(text):
        cuts.add(m.start())
    for m in HEADING.finditer(text):
        cuts.add(m.start())
        line_end = text.find("\n", m.end())
        if text[m.start()] == "#" and line_end != -1:
            cuts.add(line_end)  # a Markdown heading is one line; what follows is its own block
    points = sorted(cuts)
    out = []
    for a, b in zip(points, points[1:]):
        s, e = _strip_span(text, a, b)
        if e > s:
            out.append((s, e, bool(HEADING.match(text, s))))
    return out


def _units(text: str, budget: int, count: Counter, offsets: Offsets) -> list[_Unit]:
    blocks = _blocks(text)
    tokens = count([text[s:e] for s, e, _ in blocks])
    units: list[_Unit] = []
    for (s, e, heading), n in zip(blocks, tokens):
        if n <= budget:
            units.append(_Unit(s, e, n, heading))
        else:
            units.extend(_split_long(text, s, e, budget, count, offsets))
    return units


def _split_long(text: str, start: int, end: int, budget: int, count: Counter, offsets: Offsets) -> list[_Unit]:
    """A paragraph over budget: its sentences, and token windows for a sentence that is itself too long."""
    spans, pos = [], start
    for m in SENTENCE_END.finditer(text, start, end):
        spans.append(_strip_span(text, pos, m.start()))
        pos = m.end()
    spans.append(_strip_span(text, pos, end))
    spans = [(s, e) for s, e in spans if e > s]
    out: list[_Unit] = []
    for (s, e), n in zip(spans, count([text[s:e] for s, e in spans])):
        if n <= budget:
            out.append(_Unit(s, e, n, False))
            continue
        marks = offsets(text[s:e])  # (start, end) of every token, relative to s
        for i in range(0, len(marks), budget):
            window = marks[i:i + budget]
            out.append(_Unit(s + window[0][0], s + window[-1][1], len(window), False))
    return out


def _tail(text: str, unit: _Unit, overlap: int, count: Counter) -> _Unit | None:
    """The last whole sentences of ``unit`` that fit in ``overlap`` tokens (None: not even one)."""
    if overlap <= 0:
        return None
    if unit.tokens <= overlap:
        return unit
    starts = [m.end() for m in SENTENCE_END.finditer(text, unit.start, unit.end)][-4:]  # the last few sentences
    for start in starts:  # longest tail first
        s, e = _strip_span(text, start, unit.end)
        if e > s:
            n = count([text[s:e]])[0]
            if n <= overlap:
                return _Unit(s, e, n, False)
    return None


def _pack(units: list[_Unit], config: ChunkConfig, tail: Callable[[_Unit], _Unit | None]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    current: list[_Unit] = []
    tokens = 0
    carried = 0  # how many units at the front of current repeat the previous chunk

    def flush() -> None:
        if len(current) > carried:
            spans.append((current[0].start, current[-1].end))

    for unit in units:
        heading_break = unit.heading and tokens >= config.max_tokens // 4
        if current and (tokens + unit.tokens + 1 > config.max_tokens or heading_break):
            flush()
            keep = None if heading_break or len(current) == carried else tail(current[-1])
            if keep is not None and keep.tokens + unit.tokens + 1 > config.max_tokens:
                keep = None
            current, tokens, carried = ([keep], keep.tokens, 1) if keep else ([], 0, 0)
        current.append(unit)
        tokens += unit.tokens + (1 if len(current) > 1 else 0)
    flush()
    return spans
