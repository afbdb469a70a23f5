"""Conversations: create, list (pinned first, most recent first), rename, pin, delete, duplicate."""

from __future__ import annotations

import time

from engine.config import SamplingConfig
from engine.store.errors import NotFoundError
from engine.store.records import Conversation, sampling_to_json

TITLE_LENGTH = 60
_LIST_SQL = """
SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count
FROM conversations c
"""


def title_from(text: str, limit: int = TITLE_LENGTH) -> str:
    """A title from a first message: its first non-empty line, cut at a word near ``limit``."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(line.lstrip("#>*- ").split())
    if len(line) <= limit:
        return line or "New chat"
    cut = line[:limit].rsplit(" ", 1)[0]
    return (cut if len(cut) > limit // 2 else line[:limit]).rstrip(" ,.;:") + "…"


class ConversationsMixin:
    def create_conversation(self, title: str = "", *, system_prompt: str = "", sampling: SamplingConfig | None = None,
                            preset_id: int | None = None, model: str | None = None) -> Conversation:
        now = time.time()
        with self.db.write() as conn:
            cur = conn.execute(
                "INSERT INTO conversations (title, title_auto, system_prompt, sampling, preset_id, model, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (title.strip(), 0 if title.strip() else 1, system_prompt, sampling_to_json(sampling), preset_id,
                 model, now, now))
        return self.conversation(cur.lastrowid)

    def conversation(self, conversation_id: int) -> Conversation:
        row = self.db.query_one(_LIST_SQL + " WHERE c.id = ?", (conversation_id,))
        if row is None:
            raise NotFoundError(f"There is no conversation {conversation_id}.")
        return Conversation.from_row(row)

    def list_conversations(self, *, filter_text: str = "", limit: int | None = None,
                           offset: int = 0) -> list[Conversation]:
        """Pinned first, then the most recently updated; ``filter_text`` matches titles."""
        sql, params = _LIST_SQL, []
        if filter_text.strip():
            sql += " WHERE c.title LIKE ? ESCAPE '\\'"
            params.append("%" + _like_escape(filter_text.strip()) + "%")
        sql += " ORDER BY c.pinned DESC, c.updated_at DESC, c.id DESC"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return [Conversation.from_row(r) for r in self.db.query(sql, params)]

    def rename_conversation(self, conversation_id: int, title: str) -> Conversation:
        title = " ".join(title.split())
        if not title:  # back to the automatic title
            first = self.db.query_one("SELECT content FROM messages WHERE conversation_id = ? AND role = 'user' "
                                      "ORDER BY id LIMIT 1", (conversation_id,))
            title = title_from(first["content"]) if first else ""
            self._update_conversation(conversation_id, touch=False, title=title, title_auto=1)
        else:
            self._update_conversation(conversation_id, touch=False, title=title, title_auto=0)
        return self.conversation(conversation_id)

    def set_pinned(self, conversation_id: int, pinned: bool) -> None:
        self._update_conversation(conversation_id, touch=False, pinned=int(bool(pinned)))

    def set_conversation_settings(self, conversation_id: int, *, system_prompt: str | None = None,
                                  sampling: SamplingConfig | None = None, preset_id: int | None = None,
                                  clear_preset: bool = False, model: str | None = None) -> Conversation:
        changes: dict = {}
        if system_prompt is not None:
            changes["system_prompt"] = system_prompt
        if sampling is not None:
            changes["sampling"] = sampling_to_json(sampling)
        if preset_id is not None or clear_preset:
            changes["preset_id"] = preset_id
        if model is not None:
            changes["model"] = model
        if changes:
            self._update_conversation(conversation_id, touch=False, **changes)
        return self.conversation(conversation_id)

    def apply_preset(self, conversation_id: int, preset_id: int) -> Conversation:
        """Use a preset here: its system prompt and sampling become the conversation's."""
        preset = self.preset(preset_id)
        return self.set_conversation_settings(conversation_id, system_prompt=preset.system_prompt,
                                              sampling=preset.sampling, preset_id=preset.id)

    def delete_conversation(self, conversation_id: int) -> None:
        with self.db.write() as conn:
            # Leaf pointer first: the cascade below must not trip over it.
            conn.execute("UPDATE conversations SET current_leaf_id = NULL WHERE id = ?", (conversation_id,))
            cur = conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        if cur.rowcount == 0:
            raise NotFoundError(f"There is no conversation {conversation_id}.")

    def duplicate_conversation(self, conversation_id: int) -> Conversation:
        """A full copy: every branch and alternative, the same current message, title "… (copy)"."""
        source = self.conversation(conversation_id)
        now = time.time()
        with self.db.write() as conn:
            cur = conn.execute(
                "INSERT INTO conversations (title, title_auto, pinned, system_prompt, sampling, preset_id, model, "
                "created_at, updated_at) SELECT title || ' (copy)', 0, 0, system_prompt, sampling, preset_id, model, "
                "?, ? FROM conversations WHERE id = ?", (now, now, conversation_id))
            new_id = cur.lastrowid
            mapping: dict[int, int] = {}
            rows = conn.execute("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id",
                                (conversation_id,)).fetchall()
            for row in _parents_first(rows):
                cur = conn.execute(
                    "INSERT INTO messages (conversation_id, parent_id, role, content, status, model, sampling, tok_s, "
                    "new_tokens, finish_reason, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (new_id, mapping.get(row["parent_id"]), row["role"], row["content"],
                     "interrupted" if row["status"] == "streaming" else row["status"], row["model"], row["sampling"],
                     row["tok_s"], row["new_tokens"], row["finish_reason"], row["created_at"], row["updated_at"]))
                mapping[row["id"]] = cur.lastrowid
            for row in rows:
                if row["active_child_id"] in mapping:
                    conn.execute("UPDATE messages SET active_child_id = ? WHERE id = ?",
                                 (mapping[row["active_child_id"]], mapping[row["id"]]))
            conn.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?",
                         (mapping.get(source.current_leaf_id), new_id))
        return self.conversation(new_id)

    def _update_conversation(self, conversation_id: int, *, touch: bool = True, **columns) -> None:
        if touch:
            columns["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self.db.write() as conn:
            cur = conn.execute(f"UPDATE conversations SET {assignments} WHERE id = ?",
                               (*columns.values(), conversation_id))
        if cur.rowcount == 0:
            raise NotFoundError(f"There is no conversation {conversation_id}.")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _parents_first(rows: list) -> list:
    """Rows ordered so a parent always comes before its children (ids normally already are)."""
    by_id = {r["id"]: r for r in rows}
    done: set[int] = set()
    out: list = []

    def visit(row) -> None:
        stack = []
        while row is not None and row["id"] not in done:
            stack.append(row)
            row = by_id.get(row["parent_id"])
        for item in reversed(stack):
            done.add(item["id"])
            out.append(item)

    for r in rows:
        visit(r)
    return out
