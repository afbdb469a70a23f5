"""Summarize text of any length: map (one summary per piece) then reduce (combine, in rounds).

Follow a document: if its prompt fits the context with room for the answer, it
is summarized in one call. Otherwise ``chunk_text`` cuts it into pieces on
paragraph boundaries (with overlap); each piece gets a bulleted partial summary
("part 3 of 12"); the partial summaries are joined and, when they fit, combined
into the final summary ("combining") - else they are cut into groups and
summarized again, round after round, until they fit. Only the final call streams
to ``on_text``; the result is Markdown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from engine.cancel import CancelToken
from engine.texttools.chunking import TokenCounter, chunk_text
from engine.config import ChatMessage, SamplingConfig
from engine.errors import CancelledError, GenerationError, HearthError, InvalidConfigError

if TYPE_CHECKING:
    from engine.loader import LoadedModel

LENGTHS = ("short", "medium", "long")
FORMS = ("prose", "bullets")
# (what to ask for in prose, in bullets, max new tokens of the final summary)
LENGTH_SPEC = {
    "short": ("in up to three sentences", "a bulleted list of at most 5 short points", 160),
    "medium": ("in one paragraph of five to eight sentences", "a bulleted list of 5 to 10 points", 360),
    "long": ("in several paragraphs that cover every main point", "a bulleted list of 10 to 20 points, grouped "
             "under short headings if that helps", 800),
}
PART_MAX_NEW = 200  # a partial summary: the key points of one piece; 27 of them still fit 8k tokens
MAX_ROUNDS = 8


class NothingToSummarizeError(HearthError):
    """The input holds no text."""


@dataclass(frozen=True)
class SummaryConfig:
    length: str = "medium"
    form: str = "prose"  # "prose" or "bullets"
    focus: str = ""  # optional: what the reader cares about
    overlap_tokens: int = 64
    max_chunk_tokens: int = 0  # 0: by model size (small models summarize small pieces far better)
    max_new_tokens: int = 0  # 0: from the length
    # Greedy: the same text gets the same summary; the penalty and generation's repetition guard keep small
    # models from looping.
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(
        temperature=0.0, repetition_penalty=1.15))

    def __post_init__(self) -> None:
        if self.length not in LENGTHS:
            raise InvalidConfigError(f"length must be short, medium or long, not {self.length!r}")
        if self.form not in FORMS:
            raise InvalidConfigError(f"form must be prose or bullets, not {self.form!r}")
        if self.overlap_tokens < 0 or not (self.max_chunk_tokens == 0 or self.max_chunk_tokens >= 64) \
                or self.max_new_tokens < 0:
            raise InvalidConfigError("overlap must be >= 0, max_chunk_tokens 0 (auto) or >= 64, "
                                     "and max_new_tokens >= 0")

    @property
    def final_max_new(self) -> int:
        return self.max_new_tokens or LENGTH_SPEC[self.length][2]


@dataclass
class SummaryResult:
    text: str  # Markdown
    parts: int  # pieces the input was cut into (1: it fitted)
    rounds: int  # combine rounds (0 when it fitted in one call)
    calls: int  # model calls in all
    input_tokens: int
    finish_reason: str = "eos"  # as GenerationResult; "cancelled" keeps the partial final text
    notice: str = ""


# Prompts in the form small instruct models were tuned on (SmolTalk's summaries, for one): the instruction
# is the system prompt and the text alone is the user's message. Tried on SmolLM2-135M, this form keeps to
# the text, where an instruction wrapped around the text in one message made it invent facts.
ASSISTANT = "You are an AI assistant."


def final_messages(text: str, config: SummaryConfig, combining: bool) -> list[ChatMessage]:
    """[system instruction, user text] for the summary the user sees."""
    prose, bullets, _ = LENGTH_SPEC[config.length]
    focus = f" Focus on: {config.focus.strip()}." if config.focus.strip() else ""
    source = ("The input is a set of notes on consecutive parts of one document. " if combining else "")
    whole = "the whole document" if combining else "the input text"
    if config.form == "bullets":
        ask = f"Summarize the key points of {whole} as {bullets}, using only the input."
    else:
        ask = f"Provide a concise, objective summary of {whole} {prose}, focusing on the key points."
    return [ChatMessage("system", f"{ASSISTANT} {source}{ask}{focus}"), ChatMessage("user", text)]


def part_messages(text: str, config: SummaryConfig, index: int, total: int, combining: bool) -> list[ChatMessage]:
    """[system instruction, user text] for a partial summary (a piece, or a group of notes)."""
    focus = f" Pay most attention to: {config.focus.strip()}." if config.focus.strip() else ""
    what = ("The input is notes on parts of a longer document. Merge them into a bulleted list of at most 8 key "
            "points" if combining else
            f"Summarize the key points of the input text (part {index} of {total} of a longer document) as a "
            f"bulleted list of at most 6 short points")
    return [ChatMessage("system", f"{ASSISTANT} {what}, keeping names, numbers and conclusions.{focus}"),
            ChatMessage("user", text)]


def auto_chunk_tokens(lm: LoadedModel) -> int:
    """The largest piece to summarize in one call: on SmolLM2-135M, pieces of ~1k tokens give faithful notes
    where 2k-token ones drift into invented text; bigger models keep track of more."""
    from engine.loader import parameter_count

    try:
        params = parameter_count(lm.model)  # a GGUF run quantized counts the file's weights
    except AttributeError:  # a stand-in model in tests
        return 1024
    return 1024 if params < 500e6 else 2048 if params < 4e9 else 4096


class _Planner:
    """Token arithmetic against one model: does a prompt fit, how big may a piece be."""

    def __init__(self, lm: LoadedModel, config: SummaryConfig) -> None:
        from engine.chat_template import ensure_chat_template, render

        ensure_chat_template(lm.tokenizer)
        self.lm, self.config, self._render = lm, config, render
        self.counter = TokenCounter(lm.tokenizer)
        self.context = lm.context_length
        self.max_chunk = config.max_chunk_tokens or auto_chunk_tokens(lm)

    def prompt_len(self, messages: list[ChatMessage]) -> int:
        return len(self._render(self.lm.tokenizer, [m.to_dict() for m in messages]))

    def fits(self, messages: list[ChatMessage], max_new: int) -> bool:
        return self.prompt_len(messages) + max_new <= self.context

    def piece_budget(self, make_messages: Callable[[str], list[ChatMessage]], max_new: int) -> int:
        overhead = self.prompt_len(make_messages(""))
        budget = min(self.max_chunk, self.context - max_new - overhead - 4)  # 4: joins re-tokenize
        if budget < 32:
            raise InvalidConfigError(f"The model's context ({self.context} tokens) is too small to summarize with "
                                     f"{max_new} new tokens; choose a shorter summary.")
        return budget


def summarize(lm: LoadedModel, text: str, config: SummaryConfig | None = None, *,
              on_text: Callable[[str], None] | None = None,
              on_progress: Callable[[float, str], None] | None = None,
              cancel: CancelToken | None = None) -> SummaryResult:
    """Summarize ``text`` with ``lm`` (a LoadedModel); streams only the final summary."""
    config = config or SummaryConfig()
    cancel = cancel or CancelToken()
    progress = on_progress or (lambda fraction, message: None)
    if not text or not text.strip():
        raise NothingToSummarizeError("There is no text to summarize.")
    plan = _Planner(lm, config)
    final_max = config.final_max_new
    calls = [0]
    looped = [0]  # partial summaries the repetition guard cut

    def run(messages: list[ChatMessage], max_new: int, stream: bool) -> Any:
        cancel.raise_if_cancelled()
        calls[0] += 1
        result = _generate(lm, messages, config.sampling.with_(max_new_tokens=max_new), on_text if stream else None,
                           cancel)
        if cancel.cancelled and not stream:
            raise CancelledError()
        looped[0] += not stream and result.finish_reason == "repetition"
        if not stream and result.finish_reason == "length":  # a note cut mid-sentence: end at its last whole one
            result.text = drop_unfinished(result.text)
        return result

    input_tokens = plan.counter(text)
    if input_tokens <= plan.max_chunk and plan.fits(final_messages(text, config, False), final_max):
        progress(0.0, "Summarizing")
        result = run(final_messages(text, config, False), final_max, True)
        progress(1.0, "Done")
        return SummaryResult(to_markdown(result.text, config.form), 1, 0, calls[0], input_tokens,
                             result.finish_reason, result.notice)

    part_max = min(PART_MAX_NEW, max(32, final_max))
    budget = plan.piece_budget(lambda t: part_messages(t, config, 99, 99, False), part_max)
    pieces = chunk_text(plan.counter, text, budget, min(config.overlap_tokens, budget // 4))
    if len(pieces) == 1:  # too long for the final prompt, short enough for a part's: halve it
        half = max(32, input_tokens // 2 + 1)
        pieces = chunk_text(plan.counter, text, half, min(config.overlap_tokens, half // 4))
    notes: list[str] = []
    for i, piece in enumerate(pieces, 1):
        progress((i - 1) / (len(pieces) + 1), f"Summarizing part {i} of {len(pieces)}")
        notes.append(_tidy(run(part_messages(piece, config, i, len(pieces), False), part_max, False).text))
    notes, rounds, empty = _reduce(plan, config, notes, part_max, final_max, run, progress, len(pieces))
    progress(len(pieces) / (len(pieces) + 1), "Combining the partial summaries")
    result = run(final_messages("\n\n".join(notes), config, True), final_max, True)
    progress(1.0, "Done")
    notices = [result.notice,
               f"The model wrote nothing for {empty} of the parts; they are missing from the summary." if empty else "",
               f"The model began repeating itself in {looped[0]} of the partial summaries; they were cut there."
               if looped[0] else ""]
    notice = " ".join(n for n in notices if n)
    return SummaryResult(to_markdown(result.text, config.form), len(pieces), rounds + 1, calls[0], input_tokens,
                         result.finish_reason, notice)


def _reduce(plan: _Planner, config: SummaryConfig, notes: list[str], part_max: int, final_max: int,
            run: Callable, progress: Callable, parts: int) -> tuple[list[str], int, int]:
    """Combine notes in groups until they fit one final prompt. Returns (notes, rounds, empty parts)."""
    empty = sum(1 for n in notes if not n.strip())
    notes = [n for n in notes if n.strip()]
    if not notes:
        raise GenerationError("The model wrote nothing for any part of the text; try another model or a "
                              "higher temperature.")
    rounds = 0
    budget = plan.piece_budget(lambda t: part_messages(t, config, 0, 0, True), part_max)
    while not plan.fits(final_messages("\n\n".join(notes), config, True), final_max):
        rounds += 1
        groups = chunk_text(plan.counter, "\n\n".join(notes), budget, 0)
        if rounds > MAX_ROUNDS or len(groups) >= len(notes) > 1:  # not shrinking: keep what fits
            return _keep_fitting(plan, config, notes, final_max), rounds, empty
        combined = []
        for i, group in enumerate(groups, 1):
            progress(parts / (parts + 1), f"Combining: round {rounds}, part {i} of {len(groups)}")
            combined.append(_tidy(run(part_messages(group, config, i, len(groups), True), part_max, False).text))
        notes = [n for n in combined if n.strip()] or notes
    return notes, rounds, empty


def _keep_fitting(plan: _Planner, config: SummaryConfig, notes: list[str], final_max: int) -> list[str]:
    kept: list[str] = []
    for note in notes:
        if not plan.fits(final_messages("\n\n".join(kept + [note]), config, True), final_max):
            break
        kept.append(note)
    return kept or notes[:1]


def _generate(lm: LoadedModel, messages: list[ChatMessage], sampling: SamplingConfig, on_text, cancel) -> Any:
    """``messages`` is [system instruction, user text], as built above."""
    from engine.chat_generation import chat

    return chat(lm, messages[1:], sampling, system_prompt=messages[0].content, on_text=on_text, cancel=cancel)


def drop_unfinished(text: str) -> str:
    """``text`` without its last, unfinished sentence or line (unless that would take most of it away)."""
    text = text.rstrip()
    if not text or text[-1] in ".!?)]\"'`*|":
        return text
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s)|\n", text)]
    return text[:ends[-1]].rstrip() if ends and ends[-1] >= len(text) // 2 else text


def _tidy(text: str) -> str:
    """Model output -> clean Markdown: no surrounding blank lines, '•' and '*' bullets as '-'."""
    lines = []
    for line in text.strip().splitlines():
        stripped = line.lstrip()
        if stripped[:1] in ("•", "*", "–") and stripped[1:2] == " ":
            line = line[:len(line) - len(stripped)] + "- " + stripped[2:].lstrip()
        lines.append(line.rstrip())
    return "\n".join(lines).strip()


BLOCK_START = re.compile(r"^\s*([-+*]\s|\d+[.)]\s|#|>|\|)")  # lines Markdown keeps apart anyway
# "Here's a summary of the text:" and the like: chat habits, not summary.
PREAMBLE = re.compile(r"\A(here('s| is| are)|sure|certainly|of course)\b[^\n]{0,120}:[ \t]*\n", re.IGNORECASE)
LIST_ITEM = re.compile(r"^\s*([-+*]|\d+[.)])\s")


def to_markdown(text: str, form: str) -> str:
    """The final summary as Markdown in the form asked for, whatever the model did.

    Models write one sentence or point per line, which Markdown would run into
    one paragraph: plain lines become paragraphs. With ``bullets``, a summary
    written as prose is turned into one bullet per line (or per sentence).
    """
    text = PREAMBLE.sub("", _tidy(text), count=1).strip()
    lines = text.splitlines()
    if form == "bullets" and not any(LIST_ITEM.match(line) for line in lines):
        items = [line.strip() for line in lines if line.strip()]
        if len(items) == 1:
            items = [s for s in re.split(r"(?<=[.!?])\s+", items[0]) if s]
        return "\n".join(f"- {item}" for item in items)
    out: list[str] = []
    for line in lines:
        if out and out[-1].strip() and line.strip() and not BLOCK_START.match(line) \
                and not BLOCK_START.match(out[-1]):
            out.append("")  # a plain line after a plain line: a new paragraph
        out.append(line)
    return "\n".join(out)
