"""Retrieval quality: recall@k and MRR over questions whose answer passages are known.

A QA file is JSON Lines, one question per line::

    {"question": "Where does Hearth keep my data?", "contains": "HEARTH_DATA_DIR", "file": "README.md"}

A retrieved passage answers the question when its text contains ``contains``
(case and whitespace ignored) and, if ``file`` is given, its path ends with it.
``contains`` may also be a list: any of them will do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.config import _check
from engine.rag.errors import CollectionError
from engine.rag.search import MODES, Passage, SearchRequest, search


@dataclass(frozen=True)
class QAItem:
    question: str
    contains: tuple[str, ...]
    file: str = ""

    def answered_by(self, passage: Passage) -> bool:
        if self.file and not Path(passage.path).as_posix().endswith(self.file.replace("\\", "/")):
            return False
        text = _norm(passage.text)
        return any(_norm(snippet) in text for snippet in self.contains)


@dataclass(frozen=True)
class EvalRequest:
    qa_path: str
    collection: int | str
    ks: tuple[int, ...] = (1, 3, 5, 10)
    modes: tuple[str, ...] = MODES

    def __post_init__(self) -> None:
        _check(bool(self.ks) and all(1 <= k <= 100 for k in self.ks), "every k must be between 1 and 100")
        _check(all(m in MODES for m in self.modes), f"modes must be among {', '.join(MODES)}")


@dataclass
class ModeScores:
    recall: dict[int, float] = field(default_factory=dict)  # k -> share of questions answered in the top k
    mrr: float = 0.0  # mean of 1/rank of the first answering passage (0 when none in the top max(k))


@dataclass
class EvalReport:
    questions: int
    scores: dict[str, ModeScores]
    misses: dict[str, list[str]]  # mode -> questions with no answer in the top max(k)

    def table(self) -> str:
        ks = sorted(next(iter(self.scores.values())).recall) if self.scores else []
        head = f"{'mode':<8}" + "".join(f"{'recall@' + str(k):>11}" for k in ks) + f"{'MRR':>8}"
        lines = [head]
        for mode, s in self.scores.items():
            lines.append(f"{mode:<8}" + "".join(f"{s.recall[k]:>11.3f}" for k in ks) + f"{s.mrr:>8.3f}")
        return "\n".join(lines) + f"\n({self.questions} questions)"

    def to_dict(self) -> dict:
        return {"questions": self.questions,
                "modes": {m: {"recall": {str(k): v for k, v in s.recall.items()}, "mrr": s.mrr}
                          for m, s in self.scores.items()}}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def read_qa(path: str | Path) -> list[QAItem]:
    items = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CollectionError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            contains = data["contains"]
            contains = (contains,) if isinstance(contains, str) else tuple(contains)
            if not data["question"].strip() or not contains:
                raise ValueError("empty question or answer")
            items.append(QAItem(data["question"], contains, data.get("file", "")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CollectionError(f"{path}, line {number}: expected a JSON object with \"question\" and "
                                  f"\"contains\" ({exc}).") from exc
    if not items:
        raise CollectionError(f"{path} has no questions.")
    return items


def evaluate_retrieval(db, request: EvalRequest, *, embedder_for=None,
                       on_progress: Callable[[float, str], None] | None = None) -> EvalReport:
    items = read_qa(request.qa_path)
    depth = max(request.ks)
    scores: dict[str, ModeScores] = {}
    misses: dict[str, list[str]] = {}
    steps, step = len(items) * len(request.modes), 0
    for mode in request.modes:
        hits = {k: 0 for k in request.ks}
        reciprocal = 0.0
        misses[mode] = []
        for item in items:
            found = search(db, SearchRequest(item.question, (request.collection,), k=depth, mode=mode,
                                             candidates=max(50, depth)), embedder_for=embedder_for)
            rank = next((i for i, p in enumerate(found, start=1) if item.answered_by(p)), None)
            if rank is None:
                misses[mode].append(item.question)
            else:
                reciprocal += 1.0 / rank
                for k in request.ks:
                    hits[k] += rank <= k
            step += 1
            if on_progress is not None:
                on_progress(step / steps, f"{mode}: {item.question[:60]}")
        scores[mode] = ModeScores({k: hits[k] / len(items) for k in request.ks}, reciprocal / len(items))
    return EvalReport(len(items), scores, misses)
