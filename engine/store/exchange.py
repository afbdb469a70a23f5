"""Export a conversation to Markdown or to OpenAI ``messages`` JSON; import such JSON.

Export writes the thread as shown (root → current leaf). Import accepts
``{"messages": [...]}`` (with an optional ``"title"``) or a bare list of
messages; ``content`` may be a string or OpenAI's list of ``{"type": "text"}``
parts. The whole import is one transaction: a bad file adds nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from engine.store.errors import ImportFormatError
from engine.store.records import Conversation, Message

ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}
IMPORT_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_IMPORT_BYTES = 256 * 1024 * 1024


def _date(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def to_markdown(store: Any, conversation_id: int) -> str:
    conversation = store.conversation(conversation_id)
    thread = store.current_path(conversation_id)
    lines = [f"# {conversation.title or 'New chat'}", ""]
    lines.append(f"*Created {_date(conversation.created_at)} · updated {_date(conversation.updated_at)}"
                 + (f" · model {conversation.model}" if conversation.model else "") + "*")
    lines.append("")
    if conversation.system_prompt.strip():
        lines += ["## System", "", conversation.system_prompt.strip(), ""]
    for message in thread:
        lines += [f"## {_heading(message)}", "", message.content.rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def _heading(message: Message) -> str:
    heading = ROLE_NAMES[message.role]
    notes = []
    if message.role == "assistant" and message.model:
        notes.append(message.model)
    position, count = message.alternative
    if count > 1:
        notes.append(f"alternative {position} of {count}")
    if message.status == "interrupted":
        notes.append("interrupted")
    return heading + (f" ({', '.join(notes)})" if notes else "")


def to_openai(store: Any, conversation_id: int) -> dict:
    conversation = store.conversation(conversation_id)
    messages = []
    if conversation.system_prompt.strip():
        messages.append({"role": "system", "content": conversation.system_prompt})
    messages += [{"role": m.role, "content": m.content} for m in store.current_path(conversation_id)]
    return {"title": conversation.title, "messages": messages}


def to_json(store: Any, conversation_id: int) -> str:
    return json.dumps(to_openai(store, conversation_id), ensure_ascii=False, indent=2) + "\n"


def parse_openai(text: str, source: str = "the file") -> tuple[str, list[tuple[str, str]]]:
    """(title, [(role, content), ...]) from OpenAI-style JSON; ImportFormatError says what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                                f"{exc.msg}).") from exc
    title = ""
    if isinstance(data, dict):
        title = data.get("title") if isinstance(data.get("title"), str) else ""
        data = data.get("messages")
    if not isinstance(data, list):
        raise ImportFormatError(f"{source} holds no conversation: expected a list of messages or an object with "
                                "a \"messages\" list (OpenAI format).")
    if not data:
        raise ImportFormatError(f"{source} has an empty \"messages\" list: nothing to import.")
    return title, [_parse_message(item, i, source) for i, item in enumerate(data, start=1)]


def _parse_message(item: Any, number: int, source: str) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise ImportFormatError(f"{source}: message {number} is not an object with \"role\" and \"content\".")
    role = item.get("role")
    if role not in IMPORT_ROLES:
        raise ImportFormatError(f"{source}: message {number} has the role {role!r}; Hearth knows "
                                f"{', '.join(repr(r) for r in IMPORT_ROLES)}.")
    content = item.get("content")
    if content is None:
        content = ""
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("text", "input_text",
                                                                                                    "output_text")]
        if content and not texts:
            raise ImportFormatError(f"{source}: message {number} has no text parts (images and files cannot be "
                                    "imported).")
        content = "\n\n".join(t for t in texts if isinstance(t, str))
    if not isinstance(content, str):
        raise ImportFormatError(f"{source}: message {number}'s content is not text.")
    return IMPORT_ROLES[role], content


def import_json(store: Any, text: str, *, source: str = "the file", title: str = "") -> Conversation:
    """Create a conversation from OpenAI-style JSON text. Leading system messages become its system prompt."""
    file_title, messages = parse_openai(text, source)
    system_parts = []
    while messages and messages[0][0] == "system":
        system_parts.append(messages.pop(0)[1])
    return store.import_thread(title or file_title, "\n\n".join(system_parts), messages)


def import_file(store: Any, path: str | Path) -> Conversation:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise ImportFormatError(f"{path} is larger than {MAX_IMPORT_BYTES // 2**20} MB; is it a conversation?")
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path} is not UTF-8 text, so it cannot be JSON.") from exc
    except OSError as exc:
        raise ImportFormatError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    return import_json(store, text, source=str(path), title="")
