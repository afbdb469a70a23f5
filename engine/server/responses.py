"""Response bodies in the shapes the official ``openai`` client parses.

A :class:`Reply` is one request's answer as it is built: the same id and creation time on
every chunk, the role on the first delta, ``finish_reason`` only on the last.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    kind: str  # "chat" or "completion"
    model: str
    logprobs: bool
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    offset: int = 0  # characters of completion text sent so far (legacy logprobs' text_offset)

    def __post_init__(self) -> None:
        if not self.id:
            prefix = "chatcmpl-" if self.kind == "chat" else "cmpl-"
            self.id = prefix + uuid.uuid4().hex[:24]

    # ---- streaming ----
    def first_chunk(self) -> dict | None:
        """Chat only: the delta that carries the role."""
        if self.kind != "chat":
            return None
        return self._chunk({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                            "finish_reason": None})

    def text_chunk(self, text: str, entries: list[dict]) -> dict:
        return self._chunk(self._choice(text, entries, None, delta=True))

    def final_chunk(self, finish_reason: str, entries: list[dict]) -> dict:
        return self._chunk(self._choice("", entries, finish_reason, delta=True))

    def usage_chunk(self, usage: dict) -> dict:
        return {**self._chunk(None), "choices": [], "usage": usage}

    # ---- whole answers ----
    def whole(self, result: Any) -> dict:
        return {"id": self.id, "object": "chat.completion" if self.kind == "chat" else "text_completion",
                "created": self.created, "model": self.model, "system_fingerprint": None,
                "choices": [self._choice(result.text, result.logprobs, result.finish_reason, delta=False)],
                "usage": usage_of(result)}

    def _chunk(self, choice: dict | None) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk" if self.kind == "chat" else "text_completion",
                "created": self.created, "model": self.model, "system_fingerprint": None,
                "choices": [choice] if choice is not None else []}

    def _choice(self, text: str, entries: list[dict], finish_reason: str | None, *, delta: bool) -> dict:
        logprobs = self._logprobs(entries) if self.logprobs else None
        if self.kind == "chat":
            body = {"delta": {"content": text} if text else {}} if delta else \
                {"message": {"role": "assistant", "content": text, "refusal": None}}
            return {"index": 0, **body, "logprobs": logprobs, "finish_reason": finish_reason}
        return {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}

    def _logprobs(self, entries: list[dict]) -> dict | None:
        if self.kind == "chat":
            return {"content": list(entries), "refusal": None}
        # The legacy completions shape: parallel lists, top alternatives as {token: logprob}.
        offsets = []
        for entry in entries:
            offsets.append(self.offset)
            self.offset += len(entry["token"])
        return {"tokens": [e["token"] for e in entries], "token_logprobs": [e["logprob"] for e in entries],
                "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
                "text_offset": offsets}


def usage_of(result: Any) -> dict:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens}


def model_card(name: str, created: int, context_length: int | None) -> dict:
    card = {"id": name, "object": "model", "created": created, "owned_by": "hearth"}
    if context_length:
        card["context_length"] = context_length  # not in OpenAI's shape; vLLM and llama.cpp send theirs too
    return card
