"""Stop a generation that goes round in circles, token by token, inside a line or across lines.

Small models fall into loops: "the Creative Commons Creative Commons Creative
Commons ..." until the token limit. ``RepetitionGuard`` watches the generated
token ids for a periodic tail: for every period ``p`` up to ``MAX_PERIOD`` it
keeps ``run[p - 1]``, how many of the last tokens equal the token ``p`` places
before them (a suffix check, O(MAX_PERIOD) per token). A run of ``r`` such
matches means the last ``r + p`` tokens repeat one unit of ``p`` tokens.

It is a loop when the repeated span is long enough for what the unit is:

* words within a line ("Creative Commons"): three copies and ``MIN_SPAN``
  tokens (so a two-token unit must come eight times), or two copies of a unit of
  ``LONG_UNIT`` tokens (a whole sentence said twice in a row);
* one whole line (the unit holds one line break): a table's identical rows,
  the same code line, a refrain do repeat, so ``LINE_COPIES`` copies are needed;
* a block of lines (two line breaks or more: rows that come round in a cycle,
  a paragraph): three copies;
* no words at all (table rules, "| --- | --- |", indentation, "0, 0, 0",
  "0x00, ", "\\n\\n", "}}}"): ``LETTERLESS_SPAN`` tokens.

Repeats that are not back to back (the same code line in two functions) are
not periodic at all and never cut. A counting loop ("1) The licence is ...
2) The licence is ... 3) ...") is periodic once every numeral token (digits
with brackets or a full stop, as "12" or " 3)") counts as one class: a second
set of runs, ``mrun``, compares tokens that way. It is cut with the thresholds
above, but only when its shortest period is at least ``MIN_SPAN`` tokens and
holds prose (four words in a row), and after ``MIN_COPIES`` copies at least:
numbered lists of short items ("1. Point 1", "Step 2: Mix"), lists of numbers,
table rows and code lines that differ in their numbers are not counting loops.
The text kept holds one copy of the unit, ending at the
first line or sentence end of the second copy where there is one (so a looping
table keeps whole rows, a looping sentence its full stop).

The guard also decides which tokens are safe to show: the tail that may still
turn into a loop (a second copy under way) is held back, so the text streamed
is always the text kept.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

MAX_PERIOD = 200  # longest unit looked for, in tokens (a short paragraph)
MIN_SPAN = 16  # a loop within a line covers at least this many tokens (8 cells of '| Yes')...
MIN_COPIES = 3  # ...and this many copies of its unit,
LONG_UNIT = 24  # or two copies of a unit this long
LINE_COPIES = 6  # one line may come 5 times in a row (a table's identical rows, "print()")
LETTERLESS_SPAN = 200  # units without words (rules, numbers, whitespace) may repeat this long
WORD = re.compile(r"[^\W\d_]{2,}")  # two letters in a row: "0x00" and "\\n" hold none
ESCAPE = re.compile(r"\\[a-zA-Z]")  # "\\n", "\\t" in code are not words
NUMERAL = re.compile(r"[\s(\[#]*\d+[.):\]]*\s*")  # a token that is a number: "7", " 12", "3)", "4."
SENTENCE = re.compile(r"[^\W\d_]{2,}(?: [^\W\d_]+){3}")  # four words in a row: prose, not cells or code
NUMBER = -1  # the class every numeral token falls into for ``mrun``
HOLD_RUN = 3  # a second copy this many tokens along is held back until it breaks off


class RepetitionGuard:
    """Feed it the visible token ids as they come (``push``); ``looped`` once a loop is found."""

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self.decode = decode  # token ids -> text
        self.ids: list[int] = []
        self.run = [0] * MAX_PERIOD  # run[p - 1]: trailing tokens equal to the token p places before them
        self.longest = 0  # max(run)
        self.keep: int | None = None  # tokens kept once a loop is found (one copy of the unit)
        self.period = 0
        self.classes: dict[int, int] = {}  # token id -> itself, or NUMBER for a numeral (decoded once)
        self.mids: list[int] = []  # ids with numerals as NUMBER
        self.mrun = self.run  # like run, over mids; the same list until a numeral comes
        self.numbers = False  # a numeral came: mrun is kept apart from run

    @classmethod
    def for_tokenizer(cls, tokenizer: Any) -> "RepetitionGuard":
        return cls(lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True))

    @property
    def looped(self) -> bool:
        return self.keep is not None

    def push(self, new_ids: Sequence[int]) -> bool:
        """Add tokens; True when they complete a loop (then ``keep`` says how many tokens to keep)."""
        for token in new_ids:
            if self.keep is not None:
                break
            self.ids.append(int(token))
            self._step()
        return self.keep is not None

    def _step(self) -> None:
        ids, i = self.ids, len(self.ids) - 1
        token = ids[i]
        back = ids[max(0, i - MAX_PERIOD):i][::-1]  # back[p - 1] is the token p places before
        # One comprehension per token (not a loop of statements): ~25 us for all periods, under 1 % of a step.
        self.run = run = [r + 1 if t == token else 0 for r, t in zip(self.run, back)] + self.run[len(back):]
        self.longest = max(run)
        self._step_numbers(i)
        if self._exact_loop(i, run) or not self.numbers:
            return
        self._counting_loop(i)

    def _step_numbers(self, i: int) -> None:
        """Update ``mrun``: a second comprehension per token, only once a numeral has come."""
        token = self.ids[i]
        mapped = self.classes.get(token)
        if mapped is None:
            mapped = NUMBER if NUMERAL.fullmatch(self.decode([token])) else token
            self.classes[token] = mapped
        self.mids.append(mapped)
        self.numbers = self.numbers or mapped == NUMBER
        if not self.numbers:
            self.mrun = self.run  # equal ids and equal classes are the same thing without numerals
            return
        back = self.mids[max(0, i - MAX_PERIOD):i][::-1]
        self.mrun = [r + 1 if t == mapped else 0 for r, t in zip(self.mrun, back)] + self.mrun[len(back):]

    def _exact_loop(self, i: int, run: list[int]) -> bool:
        if self.longest < MIN_SPAN // 2:  # two copies of MIN_SPAN tokens need a run of half of it
            return False
        for p in [k + 1 for k, r in enumerate(run) if r > k and r + k + 1 >= MIN_SPAN]:  # two copies at least
            span = run[p - 1] + p
            if span >= needed_span(self.decode(self.ids[i - p + 1:i + 1]), p):
                self.keep, self.period = self._boundary(i + 1 - span + p, p), p
                return True
        return False

    def _counting_loop(self, i: int) -> None:
        """A unit that repeats but for its numbers; its shortest period must be long and hold prose."""
        mrun = self.mrun
        if max(mrun) < MIN_SPAN:  # two copies of a unit of MIN_SPAN tokens at least
            return
        p = next((k + 1 for k, r in enumerate(mrun) if r > k), 0)  # the shortest period with two copies
        if p < MIN_SPAN or mrun[p - 1] + p < MIN_COPIES * p:
            return
        span = mrun[p - 1] + p
        unit = self.decode(self.ids[i - p + 1:i + 1])
        if SENTENCE.search(unit) and span >= needed_span(unit, p):
            self.keep, self.period = self._boundary(i + 1 - span + p, p), p

    def _boundary(self, second: int, p: int) -> int:
        """Where to cut: after the first line or sentence end in the second copy (it repeats the first, so
        the text kept still holds the unit once), else where the second copy begins."""
        for j in range(second, second + p - 1):
            piece = self.decode(self.ids[j:j + 1])
            if "\n" in piece or piece.rstrip().endswith((".", "!", "?", "。", "！", "？")):
                return j + 1
        return second

    def safe_len(self) -> int:
        """How many tokens can be shown now without showing part of a loop that may still be cut."""
        if self.keep is not None:
            return self.keep
        n = len(self.ids)
        safe = n - (HOLD_RUN - 1)  # a run reaching HOLD_RUN later starts no earlier than this
        if self.longest >= HOLD_RUN:
            safe = min(safe, n - self.longest)  # the earliest second copy under way begins there
        if self.numbers:  # a counting loop under way: its shortest period, if long enough to be cut
            p = next((k + 1 for k, r in enumerate(self.mrun) if r >= HOLD_RUN), 0)
            if p >= MIN_SPAN:
                safe = min(safe, n - self.mrun[p - 1])
        return max(0, safe)


def needed_span(unit: str, p: int) -> int:
    """How many tokens a repeated unit of ``p`` tokens (whose text is ``unit``) must fill to be a loop."""
    if not has_words(unit):
        return max(LETTERLESS_SPAN, MIN_COPIES * p)
    breaks = unit.count("\n")
    if breaks == 0:
        return 2 * p if p >= LONG_UNIT else max(MIN_SPAN, MIN_COPIES * p)
    return max(MIN_SPAN, (LINE_COPIES if breaks == 1 else MIN_COPIES) * p)


def has_words(unit: str) -> bool:
    # U+FFFD: a character split across byte-level tokens; CJK and the like count as letters.
    return WORD.search(ESCAPE.sub(" ", unit).replace("\ufffd", "xx")) is not None
