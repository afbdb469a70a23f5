"""The presets Hearth ships with. Users may edit them (and reset them to these) or add their own."""

from __future__ import annotations

import json
import sqlite3
import time

from engine.config import SamplingConfig

BUILTIN_PRESETS: dict[str, tuple[str, str, SamplingConfig]] = {
    "assistant": (
        "Assistant",
        "You are a helpful, honest assistant. Answer clearly and concisely; say so when you are not sure.",
        SamplingConfig(temperature=0.7, top_p=0.9, top_k=50, repetition_penalty=1.1, max_new_tokens=512),
    ),
    "creative": (
        "Creative writer",
        "You are an imaginative writer. Write vivid, original prose with concrete detail and varied rhythm. "
        "Follow the requested form, length and tone.",
        SamplingConfig(temperature=1.0, top_p=0.95, top_k=0, min_p=0.05, repetition_penalty=1.15,
                       max_new_tokens=1024),
    ),
    "support": (
        "Customer support",
        "You are a friendly, patient customer support agent. Acknowledge the problem, ask for missing details, "
        "and give numbered steps. Never invent policies, prices or order details.",
        SamplingConfig(temperature=0.3, top_p=0.9, top_k=40, repetition_penalty=1.1, max_new_tokens=512),
    ),
    "translator": (
        "Translator",
        "You are a professional translator. Translate the user's text faithfully, keeping meaning, tone and "
        "formatting. If no target language is given, translate into English. Reply with the translation only.",
        SamplingConfig(temperature=0.2, top_p=0.9, top_k=40, repetition_penalty=1.05, max_new_tokens=1024),
    ),
    "coder": (
        "Coder",
        "You are an expert programmer. Write correct, idiomatic, well-structured code in fenced code blocks "
        "with the language named, and explain briefly. Point out edge cases and errors.",
        SamplingConfig(temperature=0.2, top_p=0.95, top_k=40, repetition_penalty=1.05, max_new_tokens=1024),
    ),
}


def insert_builtin_presets(conn: sqlite3.Connection, only: str | None = None) -> None:
    now = time.time()
    for position, (key, (name, prompt, sampling)) in enumerate(BUILTIN_PRESETS.items()):
        if only is not None and key != only:
            continue
        conn.execute(
            "INSERT INTO presets (name, system_prompt, sampling, builtin_key, position, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, prompt, json.dumps(sampling.to_dict()), key, position, now, now))
