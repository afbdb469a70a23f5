"""Translate text with a chat model, streaming; long texts go piece by piece on paragraph boundaries.

The source language is given or detected (``language_detect``); each piece is
one chat turn asking for the translation only, and the pieces stream out in
order, separated by blank lines, so the layout of the original survives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from engine.cancel import CancelToken
from engine.texttools.chunking import TokenCounter, chunk_text
from engine.config import ChatMessage, SamplingConfig
from engine.errors import HearthError, InvalidConfigError
from engine.texttools.language_detect import LANGUAGES, detect_language, language_name

if TYPE_CHECKING:
    from engine.loader import LoadedModel

DEFAULT_SAMPLING = SamplingConfig(temperature=0.0, repetition_penalty=1.1, max_new_tokens=1024)  # greedy: stable


class NothingToTranslateError(HearthError):
    """The input holds no text."""


@dataclass(frozen=True)
class TranslateRequest:
    text: str
    target: str  # a language name or code: "French", "fr"
    source: str = ""  # "" = detect
    sampling: SamplingConfig = DEFAULT_SAMPLING

    def __post_init__(self) -> None:
        if not self.target.strip():
            raise InvalidConfigError("Choose the language to translate into.")
        object.__setattr__(self, "target", language_name(self.target))
        object.__setattr__(self, "source", language_name(self.source) if self.source.strip() else "")


@dataclass
class TranslationResult:
    text: str
    source: str  # the source language's name ("" when unknown)
    target: str
    detected: bool  # the source was detected, not given
    parts: int
    finish_reason: str = "eos"
    notice: str = ""


def messages_for(text: str, source: str, target: str) -> list[ChatMessage]:
    """[system instruction, user text]: the form small instruct models follow best (see summarize)."""
    origin = f" from {source}" if source else ""
    return [ChatMessage("system", f"You are an AI assistant. Translate the input text{origin} into {target}, "
                                  f"keeping its meaning, tone and formatting. Reply with the {target} translation "
                                  f"only."),
            ChatMessage("user", text)]


def translate(lm: LoadedModel, request: TranslateRequest, *, on_text: Callable[[str], None] | None = None,
              on_progress: Callable[[float, str], None] | None = None,
              cancel: CancelToken | None = None) -> TranslationResult:
    from engine.chat_generation import chat
    from engine.chat_template import ensure_chat_template, render

    cancel = cancel or CancelToken()
    emit = on_text or (lambda chunk: None)
    progress = on_progress or (lambda fraction, message: None)
    if not request.text.strip():
        raise NothingToTranslateError("There is no text to translate.")
    source, detected = request.source, False
    if not source:
        code = detect_language(request.text)
        source, detected = (LANGUAGES.get(code, ""), True) if code else ("", False)
    if source and source.lower() == request.target.lower():
        emit(request.text)
        return TranslationResult(request.text, source, request.target, detected, 0,
                                 notice=f"The text is already in {request.target}.")
    ensure_chat_template(lm.tokenizer)
    overhead = len(render(lm.tokenizer, [m.to_dict() for m in messages_for("", source, request.target)]))
    # A translation can take more tokens than its source (other scripts, accents): a piece gets one third
    # of the room, its answer up to two thirds.
    budget = max(32, min(1024, (lm.context_length - overhead) // 3 - 8))
    pieces = chunk_text(TokenCounter(lm.tokenizer), request.text, budget)
    out, reason, looped = [], "eos", 0
    for i, piece in enumerate(pieces, 1):
        progress((i - 1) / len(pieces), f"Translating part {i} of {len(pieces)}" if len(pieces) > 1 else "Translating")
        if out:
            emit("\n\n")
        system, *messages = messages_for(piece, source, request.target)
        result = chat(lm, messages, request.sampling.with_(
            max_new_tokens=min(request.sampling.max_new_tokens, budget * 2)), system_prompt=system.content,
            on_text=emit, cancel=cancel)  # generation's repetition guard cuts a piece that goes round in circles
        out.append(result.text.strip())
        reason = "cancelled" if cancel.cancelled else result.finish_reason
        looped += reason == "repetition"
        if reason == "cancelled":
            break
    progress(1.0, "Done")
    notice = (f"The model began repeating itself in {looped} of the {len(pieces)} parts; they were cut there."
              if looped and len(pieces) > 1 else "The translation began to repeat itself, so it was cut there."
              if looped else "")
    if looped and reason != "cancelled":
        reason = "repetition"
    return TranslationResult("\n\n".join(out), source, request.target, detected, len(pieces), reason, notice)
