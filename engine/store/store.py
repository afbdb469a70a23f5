"""``Store``: Hearth's conversations, messages, search and presets in one SQLite file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from engine.store.conversations import ConversationsMixin, title_from
from engine.store.db import Database
from engine.store.messages import MessagesMixin
from engine.store.presets import PresetsMixin
from engine.store.records import ROLES, Conversation
from engine.store.search import SearchMixin


class Store(ConversationsMixin, MessagesMixin, SearchMixin, PresetsMixin):
    """One connection's view of the store. Use one Store per thread; close it when done.

    ``Store()`` opens ``$HEARTH_DATA_DIR/hearth.db``, creating or upgrading it,
    and marks replies whose writer died as interrupted. ``store.notice`` holds
    a sentence the user must see (for example: a damaged file was kept aside).
    """

    def __init__(self, path: str | Path | None = None, *, recover: bool = True) -> None:
        self.db = Database(path, recover=recover)

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def notice(self) -> str:
        return self.db.notice

    @property
    def read_only(self) -> bool:
        return self.db.read_only

    def import_thread(self, title: str, system_prompt: str, messages: Sequence[tuple[str, str]]) -> Conversation:
        """A new conversation holding ``messages`` [(role, content)] as one thread, in one transaction."""
        now = time.time()
        first_user = next((c for r, c in messages if r == "user"), "")
        title = " ".join(title.split()) or title_from(first_user)
        with self.db.write() as conn:
            cur = conn.execute("INSERT INTO conversations (title, title_auto, system_prompt, created_at, updated_at) "
                               "VALUES (?, 0, ?, ?, ?)", (title, system_prompt, now, now))
            conversation_id, parent = cur.lastrowid, None
            for role, content in messages:
                assert role in ROLES
                cur = conn.execute("INSERT INTO messages (conversation_id, parent_id, role, content, created_at, "
                                   "updated_at) VALUES (?, ?, ?, ?, ?, ?)", (conversation_id, parent, role, content,
                                                                            now, now))
                if parent is not None:
                    conn.execute("UPDATE messages SET active_child_id = ? WHERE id = ?", (cur.lastrowid, parent))
                parent = cur.lastrowid
            conn.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?", (parent, conversation_id))
        return self.conversation(conversation_id)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
