"""Cited answers: retrieve passages for the last question, number them, and let the model answer from them.

The passages go in front of the newest user message only (earlier turns stay as
they were said), within a token budget that leaves room for the conversation
and the reply; the instruction asks for citations as [1], [2]. The result is the
chat's GenerationResult with ``.passages`` (the numbered passages it was given).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from engine.cancel import CancelToken
from engine.config import ChatMessage, SamplingConfig, _check
from engine.rag.search import Passage, SearchRequest, search

if TYPE_CHECKING:
    from engine.loader import LoadedModel

INSTRUCTION = ("Answer the question using the numbered passages below. After each fact, cite the passage it comes "
               "from as [1], [2] and so on. If the passages do not contain the answer, say so.")


@dataclass(frozen=True)
class RetrievalConfig:
    collections: tuple[int | str, ...]
    k: int = 4  # passages retrieved (fewer go in when the budget is tight); small models do better with few
    max_context_share: float = 0.5  # at most this share of the model's context holds passages
    mode: str = "hybrid"

    def __post_init__(self) -> None:
        _check(len(self.collections) > 0, "choose at least one collection")
        _check(1 <= self.k <= 50, f"k must be between 1 and 50, not {self.k}")
        _check(0.05 <= self.max_context_share <= 0.9,
               f"max_context_share must be between 0.05 and 0.9, not {self.max_context_share}")


def passage_budget(tokenizer: Any, messages: Sequence[ChatMessage], system_prompt: str, context_length: int,
                   max_new_tokens: int, share: float) -> int:
    """Tokens left for passages: the context, less the reply's room and the conversation, capped at ``share``."""
    used = sum(len(tokenizer(m.content, add_special_tokens=False)["input_ids"]) + 8 for m in messages)
    used += len(tokenizer(system_prompt + INSTRUCTION, add_special_tokens=False)["input_ids"]) + 32
    reserve = max(1, min(max_new_tokens, context_length // 4))
    return max(0, min(int(context_length * share), context_length - reserve - used))


def fit_passages(tokenizer: Any, passages: Sequence[Passage], budget: int) -> list[Passage]:
    """The best passages that fit in ``budget`` tokens, numbered 1, 2… in rank order."""
    chosen: list[Passage] = []
    used = 0
    for passage in passages:
        n = len(tokenizer(_format(passage), add_special_tokens=False)["input_ids"]) + 2
        if used + n > budget:
            continue  # a shorter, lower-ranked passage may still fit
        chosen.append(passage.cite(len(chosen) + 1))
        used += n
    return chosen


def _format(passage: Passage) -> str:
    return f"[{passage.number or 0}] ({Path(passage.path).name}) {passage.text.strip()}"


def grounded_question(question: str, passages: Sequence[Passage]) -> str:
    """The user's message with the numbered passages and the citation instruction in front."""
    if not passages:
        return question
    body = "\n\n".join(_format(p) for p in passages)
    return f"{INSTRUCTION}\n\nPassages:\n\n{body}\n\nQuestion: {question}"


def retrieval_query(messages: Sequence[ChatMessage], short: int = 6) -> str:
    """What to search for: the last user message, with the one before it when it is a short follow-up
    ("and in winter?"), whose words alone would find little."""
    users = [m.content for m in messages if m.role == "user" and m.content.strip()]
    if not users:
        return ""
    if len(users) > 1 and len(users[-1].split()) < short:
        return users[-2] + "\n" + users[-1]
    return users[-1]


def answer_with_documents(lm: LoadedModel, messages: Sequence[ChatMessage], retrieval: RetrievalConfig,
                          sampling: SamplingConfig | None = None, *, system_prompt: str = "", db=None,
                          embedder_for=None, on_text=None, on_progress=None, cancel: CancelToken | None = None):
    """Chat that answers the last user message from the collections' passages; ``result.passages`` lists them."""
    from engine.chat_generation import chat
    from engine.rag.db import DocsDatabase

    sampling = sampling or SamplingConfig()
    messages = list(messages)
    question = messages[-1].content
    if on_progress is not None:
        on_progress(0.0, "Searching the documents…")
    own = db is None
    db = db or DocsDatabase()
    try:
        query = retrieval_query(messages) or question
        found = search(db, SearchRequest(query, tuple(retrieval.collections), k=retrieval.k, mode=retrieval.mode),
                       embedder_for=embedder_for)
    finally:
        if own:
            db.close()
    budget = passage_budget(lm.tokenizer, messages, system_prompt, lm.context_length, sampling.max_new_tokens,
                            retrieval.max_context_share)
    passages = fit_passages(lm.tokenizer, found, budget)
    grounded = messages[:-1] + [ChatMessage(messages[-1].role, grounded_question(question, passages))]
    if cancel is not None:
        cancel.raise_if_cancelled()
    result = chat(lm, grounded, sampling, system_prompt=system_prompt, on_text=on_text, cancel=cancel)
    result.passages = passages
    if not passages:
        note = ("No passage of the chosen collections matched, so this reply is not grounded in your documents."
                if not found else "The conversation leaves no room in the context for passages; start a new chat.")
        result.notice = " ".join(n for n in (result.notice, note) if n)
    return result
