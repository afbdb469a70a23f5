"""Measure the text tools on a fixed set of inputs: loops, empty or cut outputs, length, time, faithfulness.

Follow a run: ``load_cases`` reads ``cases.json`` in the set's folder (each case
names a tool, a file and the tool's options), ``evaluate`` runs every case with
the model, greedy, and ``summarize_outputs`` turns the outputs into one figure
per tool. The text-level checks (``has_loop``, ``faithful_share``) look only at
the output, so they stay the same whatever decoding or prompts are tried: this is
the check that a later change must not make worse.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from engine.cancel import CancelToken
from engine.errors import InvalidConfigError

if TYPE_CHECKING:
    from engine.loader import LoadedModel

TOOLS = ("summarize", "translate", "complete")
CURSOR = "<|cursor|>"  # where a code case's cursor is, in its file


@dataclass(frozen=True)
class EvalCase:
    tool: str  # one of TOOLS
    file: Path
    options: dict = field(default_factory=dict)  # summarize: length, form; translate: target, source

    def __post_init__(self) -> None:
        if self.tool not in TOOLS:
            raise InvalidConfigError(f"{self.file.name}: tool must be one of {', '.join(TOOLS)}, not {self.tool!r}")

    @property
    def name(self) -> str:
        return f"{self.tool}:{self.file.name}" + "".join(f":{v}" for v in self.options.values())


@dataclass
class EvalOutput:
    case: EvalCase
    text: str
    finish_reason: str
    seconds: float
    source: str  # the input text (for faithfulness)

    def to_dict(self) -> dict:
        return {"case": self.case.name, "finish_reason": self.finish_reason, "words": len(words(self.text)),
                "loop": has_loop(self.text), "seconds": round(self.seconds, 2), "output": self.text}


def default_set() -> Path:
    """The set that ships with the tests."""
    return Path(__file__).resolve().parents[2] / "tests" / "data" / "texttools_eval"


def load_cases(folder: Path, tools: tuple[str, ...] = TOOLS, limit: int = 0) -> list[EvalCase]:
    """The cases of ``folder/cases.json`` for ``tools``; ``limit`` > 0 keeps that many per tool."""
    path = Path(folder) / "cases.json"
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidConfigError(f"Cannot read the evaluation set {path}: {exc}") from exc
    cases = []
    for tool in tools:
        entries = spec.get(tool, [])
        for entry in entries[:limit] if limit > 0 else entries:
            entry = dict(entry)
            cases.append(EvalCase(tool, Path(folder) / entry.pop("file"), entry))
    return cases


def run_case(lm: LoadedModel, case: EvalCase, cancel: CancelToken) -> EvalOutput:
    """One call of the tool, as a user would make it (the tools' own defaults: greedy)."""
    text = case.file.read_text(encoding="utf-8")
    start = time.perf_counter()
    if case.tool == "summarize":
        from engine.texttools.summarize import SummaryConfig, summarize

        result = summarize(lm, text, SummaryConfig(**case.options), cancel=cancel)
        out, reason, source = result.text, result.finish_reason, text
    elif case.tool == "translate":
        from engine.texttools.translate import TranslateRequest, translate

        result = translate(lm, TranslateRequest(text, **case.options), cancel=cancel)
        out, reason, source = result.text, result.finish_reason, text
    else:
        from engine.texttools.code_completion import CompletionRequest, complete_code

        prefix, _, suffix = text.partition(CURSOR)
        result = complete_code(lm, CompletionRequest(prefix, suffix, **case.options), cancel=cancel)
        out, reason, source = result.text, result.finish_reason, prefix + suffix
    return EvalOutput(case, out, reason, time.perf_counter() - start, source)


def evaluate(lm: LoadedModel, cases: list[EvalCase], *, on_progress: Callable[[float, str], None] | None = None,
             cancel: CancelToken | None = None) -> dict:
    """Run every case; returns the JSON-ready report (per tool, then per case)."""
    cancel = cancel or CancelToken()
    progress = on_progress or (lambda fraction, message: None)
    outputs = []
    for i, case in enumerate(cases):
        cancel.raise_if_cancelled()
        progress(i / len(cases), f"{case.name} ({i + 1} of {len(cases)})")
        outputs.append(run_case(lm, case, cancel))
    progress(1.0, "Done")
    tools = {tool: summarize_outputs([o for o in outputs if o.case.tool == tool])
             for tool in TOOLS if any(o.case.tool == tool for o in outputs)}
    return {"model": getattr(lm, "name", ""), "decoding": "greedy (each tool's defaults)",
            "tools": tools, "cases": [o.to_dict() for o in outputs]}


def summarize_outputs(outputs: list[EvalOutput]) -> dict:
    """One tool's figures."""
    n = len(outputs)
    report = {
        "calls": n,
        "loops": sum(has_loop(o.text) for o in outputs),  # target 0
        "cut_for_repetition": sum(o.finish_reason == "repetition" for o in outputs),  # loops the guard stopped
        "empty": sum(not o.text.strip() for o in outputs),
        "cut_by_token_limit": sum(o.finish_reason == "length" for o in outputs),
        "mean_words": round(sum(len(words(o.text)) for o in outputs) / n, 1) if n else 0.0,
        "seconds_per_call": round(sum(o.seconds for o in outputs) / n, 2) if n else 0.0,
    }
    if outputs and outputs[0].case.tool == "summarize":
        shares = [faithful_share(o.text, o.source) for o in outputs if o.text.strip()]
        report["faithful_sentence_share"] = round(sum(shares) / len(shares), 3) if shares else 0.0
    return report


# --- text-level checks -------------------------------------------------------------------------------------

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]", re.UNICODE)


def words(text: str) -> list[str]:
    """Words and punctuation marks, lower-cased: what the loop check compares."""
    return [w.lower() for w in WORD.findall(text)]


def has_loop(text: str, max_period: int = 60) -> bool:
    """A span of words said three times in a row (at least 8 words in all, with a letter in it),
    a long span (12+ words) said twice in a row, or a line of 4+ words that comes back 3 times anywhere.

    Independent of the token-level guard (engine/repetition.py), so it also sees what the guard lets through."""
    w = words(text)
    for p in range(1, min(max_period, len(w) // 2) + 1):
        run = 0
        for i in range(p, len(w)):
            run = run + 1 if w[i] == w[i - p] else 0
            span = run + p
            if (span >= 3 * p and span >= 8) or (p >= 12 and span >= 2 * p):
                if any(ch.isalpha() for word in w[i - p + 1:i + 1] for ch in word):
                    return True
    counts: dict[str, int] = {}
    for line in text.splitlines():
        key = " ".join(words(line))
        if len(key.split()) >= 4:
            counts[key] = counts.get(key, 0) + 1
            if counts[key] >= 3:
                return True
    return False


STOPWORDS = set("""a an the and or but if then else of to in on at by for with from as is are was were be been being it
its this that these those there their they them he she his her we our you your i not no nor so such than too very can
will would shall should may might must do does did done has have had having into onto over under about above below
also any all each every other some more most less least only own same both either neither which who whom whose what
when where why how while up down out off again further once here s t just don now one two three""".split())


def _stem(word: str) -> str:
    """A crude stem, enough that "copies", "copied" and "copy" or "distributed" and "distribute" meet."""
    for suffix, instead in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("ly", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[:-len(suffix)] + instead
            break
    return word.rstrip("e") if len(word) > 3 else word


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in words(text) if len(w) >= 3 and w.isalpha() and w not in STOPWORDS}


MARK = re.compile(r"^\s*([-+*]|\d+[.)]|#+)\s+")  # a list item or heading begins


def sentences(text: str) -> list[str]:
    """Summary sentences: list items and headings apart, lines a sentence runs on over joined, then split
    after . ! ?; Markdown marks off."""
    items: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if items and not MARK.match(line) and not re.search(r"[.!?:]\W*$", items[-1]):
            items[-1] += " " + line.strip()  # the model broke a sentence over lines
        else:
            items.append(MARK.sub("", line).strip())
    return [s.strip() for item in items for s in re.split(r"(?<=[.!?])\s+", item) if s.strip()]


# Words a summary uses to talk about its source, not to claim something of its own.
ABOUT_SOURCE = {_stem(w) for w in """text document summary overall outline outlines describes explains discusses
provides highlights emphasizes mentions states covers addresses key main points point section sections author aims
purpose focus focuses""".split()}


def faithful_share(summary: str, source: str) -> float:
    """Share of the summary's sentences whose content words all occur in the source (a cheap faithfulness
    signal: an invented name or claim usually brings a word the source does not have). Words about the
    source itself ("the text outlines...") are allowed."""
    known = content_words(source) | ABOUT_SOURCE
    judged = [s for s in sentences(summary) if content_words(s)]
    if not judged:
        return 0.0
    return sum(content_words(s) <= known for s in judged) / len(judged)
