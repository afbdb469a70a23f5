"""File menu actions for conversations: export as Markdown or JSON, import JSON."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from engine.store import StoreError
from engine.store import exchange

FILTERS = {"md": "Markdown (*.md)", "json": "OpenAI messages JSON (*.json)"}


def safe_file_name(title: str) -> str:
    name = re.sub(r"[^\w\- ]+", "", title).strip()[:60]
    return name or "conversation"


def export_conversation(parent: QWidget, history, conversation_id: int, fmt: str) -> Path | None:
    """Ask where, then write the conversation's current thread; errors go to the window."""
    conversation = history.safely(history.store.conversation, conversation_id) if history.store else None
    if conversation is None:
        return None
    suggested = str(Path.home() / f"{safe_file_name(conversation.title)}.{fmt}")
    path, _ = QFileDialog.getSaveFileName(parent, "Export conversation", suggested, FILTERS[fmt])
    if not path:
        return None
    target = Path(path)
    if not target.suffix:
        target = target.with_suffix(f".{fmt}")
    render = exchange.to_markdown if fmt == "md" else exchange.to_json
    text = history.safely(render, history.store, conversation_id)
    if text is None:
        return None
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        history.report_error(f"Could not write {target}: {exc.strerror or exc}")
        return None
    return target


def import_conversation(parent: QWidget, history) -> int | None:
    """Ask for a JSON file and import it as a new conversation; returns its id."""
    if history.store is None:
        history.report_error(history.error or "Chat history is not available.")
        return None
    path, _ = QFileDialog.getOpenFileName(parent, "Import conversation", str(Path.home()),
                                          "OpenAI messages JSON (*.json);;All files (*)")
    if not path:
        return None
    try:
        return exchange.import_file(history.store, path).id
    except StoreError as exc:
        history.report_error(str(exc))
        return None
