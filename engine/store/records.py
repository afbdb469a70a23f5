"""What the store hands out: plain frozen dataclasses, built from database rows."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from engine.config import SamplingConfig

ROLES = ("system", "user", "assistant")
COMPLETE, STREAMING, INTERRUPTED = "complete", "streaming", "interrupted"


def sampling_from_json(text: str | None) -> SamplingConfig | None:
    if not text:
        return None
    try:
        return SamplingConfig.from_dict(json.loads(text))
    except (ValueError, TypeError):  # a bad value written by hand: fall back to the app's default
        return None


def sampling_to_json(sampling: SamplingConfig | dict | None) -> str | None:
    if sampling is None:
        return None
    return json.dumps(sampling.to_dict() if isinstance(sampling, SamplingConfig) else sampling)


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    pinned: bool
    system_prompt: str
    sampling: SamplingConfig | None
    preset_id: int | None
    model: str | None
    current_leaf_id: int | None
    created_at: float
    updated_at: float
    message_count: int = 0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Conversation":
        keys = row.keys()
        return cls(id=row["id"], title=row["title"], pinned=bool(row["pinned"]), system_prompt=row["system_prompt"],
                   sampling=sampling_from_json(row["sampling"]), preset_id=row["preset_id"], model=row["model"],
                   current_leaf_id=row["current_leaf_id"], created_at=row["created_at"],
                   updated_at=row["updated_at"], message_count=row["message_count"] if "message_count" in keys else 0)


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    parent_id: int | None
    role: str
    content: str
    status: str
    model: str | None
    sampling: SamplingConfig | None
    tok_s: float | None
    new_tokens: int | None
    finish_reason: str | None
    created_at: float
    updated_at: float
    siblings: tuple[int, ...] = ()  # ids of the alternatives at this place, oldest first (self included)

    @property
    def alternative(self) -> tuple[int, int]:
        """(1-based position among its alternatives, how many there are): the ‹ 2/3 › of the view."""
        if not self.siblings:
            return 1, 1
        return self.siblings.index(self.id) + 1, len(self.siblings)

    @property
    def incomplete(self) -> bool:
        return self.status != COMPLETE

    @classmethod
    def from_row(cls, row: sqlite3.Row, siblings: tuple[int, ...] = ()) -> "Message":
        return cls(id=row["id"], conversation_id=row["conversation_id"], parent_id=row["parent_id"], role=row["role"],
                   content=row["content"], status=row["status"], model=row["model"],
                   sampling=sampling_from_json(row["sampling"]), tok_s=row["tok_s"], new_tokens=row["new_tokens"],
                   finish_reason=row["finish_reason"], created_at=row["created_at"], updated_at=row["updated_at"],
                   siblings=siblings)


@dataclass(frozen=True)
class Preset:
    id: int
    name: str
    system_prompt: str
    sampling: SamplingConfig
    builtin_key: str | None
    position: int

    @property
    def builtin(self) -> bool:
        return self.builtin_key is not None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Preset":
        return cls(id=row["id"], name=row["name"], system_prompt=row["system_prompt"],
                   sampling=sampling_from_json(row["sampling"]) or SamplingConfig(), builtin_key=row["builtin_key"],
                   position=row["position"])


@dataclass(frozen=True)
class SearchHit:
    conversation_id: int
    conversation_title: str
    message_id: int
    role: str
    snippet: str  # with the matched words between [ and ]
    created_at: float
