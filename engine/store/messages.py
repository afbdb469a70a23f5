"""The message tree: every message has a parent; siblings are alternatives.

* Regenerating a reply adds a sibling assistant message under the same user message.
* Editing a message adds a sibling with the new text: a new branch; the old one stays.
* The conversation remembers its current leaf; the shown thread is the path root → leaf.
* Each message remembers the child shown last (``active_child_id``), so stepping back to
  an alternative returns to where that branch was left, not to its first reply.
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

from engine.config import SamplingConfig
from engine.store.conversations import title_from
from engine.store.errors import NotFoundError
from engine.store.records import COMPLETE, ROLES, Message, sampling_to_json

LEAF = object()  # "append to the conversation's current leaf"
_CHUNK = 500  # ids per IN (...) query, well under SQLite's variable limit

_PATH_SQL = """
WITH RECURSIVE up(id, parent_id, depth) AS (
    SELECT id, parent_id, 0 FROM messages WHERE id = ?
    UNION ALL
    SELECT m.id, m.parent_id, up.depth + 1 FROM messages m JOIN up ON m.id = up.parent_id
)
SELECT id FROM up ORDER BY depth DESC
"""

_SUBTREE_SQL = """
WITH RECURSIVE sub(id) AS (
    SELECT ? UNION ALL SELECT m.id FROM messages m JOIN sub ON m.parent_id = sub.id
)
SELECT id FROM sub
"""


class MessagesMixin:
    # -- adding ------------------------------------------------------------------------------------------------
    def add_message(self, conversation_id: int, role: str, content: str, *, parent_id=LEAF,
                    status: str = COMPLETE, model: str | None = None, sampling: SamplingConfig | None = None,
                    tok_s: float | None = None, new_tokens: int | None = None, finish_reason: str | None = None,
                    writer: str | None = None) -> Message:
        """Add a message under ``parent_id`` (default: the current leaf; None: a first message) and show it."""
        if role not in ROLES:
            from engine.store.errors import StoreError

            raise StoreError(f"A message's role must be one of {', '.join(ROLES)}, not {role!r}.")
        conversation = self.conversation(conversation_id)
        if parent_id is LEAF:
            parent_id = conversation.current_leaf_id
        now = time.time()
        with self.db.write() as conn:
            if parent_id is not None:
                owner = conn.execute("SELECT conversation_id FROM messages WHERE id = ?", (parent_id,)).fetchone()
                if owner is None or owner[0] != conversation_id:
                    raise NotFoundError(f"Conversation {conversation_id} has no message {parent_id}.")
            cur = conn.execute(
                "INSERT INTO messages (conversation_id, parent_id, role, content, status, writer, model, sampling, "
                "tok_s, new_tokens, finish_reason, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (conversation_id, parent_id, role, content, status, writer, model, sampling_to_json(sampling),
                 tok_s, new_tokens, finish_reason, now, now))
            new_id = cur.lastrowid
            if parent_id is not None:
                conn.execute("UPDATE messages SET active_child_id = ? WHERE id = ?", (new_id, parent_id))
            conn.execute("UPDATE conversations SET current_leaf_id = ?, updated_at = ?, model = COALESCE(?, model) "
                         "WHERE id = ?", (new_id, now, model, conversation_id))
            if role == "user" and conversation.title == "":
                conn.execute("UPDATE conversations SET title = ? WHERE id = ? AND title_auto = 1",
                             (title_from(content), conversation_id))
        return self.message(new_id)

    def edit_message(self, message_id: int, content: str) -> Message:
        """Edit by branching: a sibling with the new text becomes the shown one; the original stays."""
        old = self.message(message_id)
        return self.add_message(old.conversation_id, old.role, content, parent_id=old.parent_id)

    def update_message(self, message_id: int, **columns) -> None:
        """Change stored fields of a message (content while streaming, status, figures when done)."""
        if "sampling" in columns:
            columns["sampling"] = sampling_to_json(columns["sampling"])
        columns["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self.db.write() as conn:
            cur = conn.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*columns.values(), message_id))
            if cur.rowcount:
                conn.execute("UPDATE conversations SET updated_at = ? WHERE id = "
                             "(SELECT conversation_id FROM messages WHERE id = ?)", (columns["updated_at"], message_id))
        if cur.rowcount == 0:
            raise NotFoundError(f"There is no message {message_id}.")

    # -- reading -----------------------------------------------------------------------------------------------
    def message(self, message_id: int) -> Message:
        found = self.messages([message_id])
        if not found:
            raise NotFoundError(f"There is no message {message_id}.")
        return found[0]

    def messages(self, ids: Sequence[int]) -> list[Message]:
        """The messages with these ids, in the order given, each knowing its alternatives."""
        rows: dict[int, object] = {}
        for start in range(0, len(ids), _CHUNK):
            part = list(ids[start:start + _CHUNK])
            marks = ",".join("?" * len(part))
            for row in self.db.query(f"SELECT * FROM messages WHERE id IN ({marks})", part):
                rows[row["id"]] = row
        siblings = self._siblings_of(rows.values())
        return [Message.from_row(rows[i], siblings.get((rows[i]["conversation_id"], rows[i]["parent_id"]), ()))
                for i in ids if i in rows]

    def _siblings_of(self, rows: Iterable) -> dict[tuple[int, int | None], tuple[int, ...]]:
        keys = {(r["conversation_id"], r["parent_id"]) for r in rows}
        out: dict[tuple[int, int | None], list[int]] = {k: [] for k in keys}
        parents = sorted({p for _, p in keys if p is not None})
        for start in range(0, len(parents), _CHUNK):
            part = parents[start:start + _CHUNK]
            marks = ",".join("?" * len(part))
            for row in self.db.query(f"SELECT id, conversation_id, parent_id FROM messages WHERE parent_id IN "
                                     f"({marks}) ORDER BY id", part):
                out[(row["conversation_id"], row["parent_id"])].append(row["id"])
        for conversation_id in {c for c, p in keys if p is None}:
            for row in self.db.query("SELECT id FROM messages WHERE conversation_id = ? AND parent_id IS NULL "
                                     "ORDER BY id", (conversation_id,)):
                out[(conversation_id, None)].append(row["id"])
        return {k: tuple(v) for k, v in out.items()}

    def path_ids(self, conversation_id: int, leaf_id: int | None = None) -> list[int]:
        """Ids from the first message to ``leaf_id`` (default: the current leaf). Cheap: for lazy views."""
        if leaf_id is None:
            leaf_id = self.conversation(conversation_id).current_leaf_id
            if leaf_id is None:
                return []
        return [r["id"] for r in self.db.query(_PATH_SQL, (leaf_id,))]

    def current_path(self, conversation_id: int) -> list[Message]:
        """The thread as shown: root → current leaf, with each message's alternatives."""
        return self.messages(self.path_ids(conversation_id))

    def children(self, message_id: int) -> list[int]:
        return [r["id"] for r in self.db.query("SELECT id FROM messages WHERE parent_id = ? ORDER BY id",
                                               (message_id,))]

    def descend(self, message_id: int) -> int:
        """The leaf reached from ``message_id`` following the child shown last (else the newest)."""
        current = message_id
        while True:
            row = self.db.query_one(
                "SELECT COALESCE((SELECT c.id FROM messages c WHERE c.parent_id = m.id AND c.id = m.active_child_id),"
                " (SELECT MAX(c.id) FROM messages c WHERE c.parent_id = m.id)) AS next FROM messages m WHERE m.id = ?",
                (current,))
            if row is None or row["next"] is None:
                return current
            current = row["next"]

    # -- moving around -----------------------------------------------------------------------------------------
    def set_current_leaf(self, conversation_id: int, message_id: int) -> None:
        """Show the thread ending at ``message_id``, and remember that choice at every fork on the way."""
        ids = self.path_ids(conversation_id, message_id)
        if not ids or self.message(message_id).conversation_id != conversation_id:
            raise NotFoundError(f"Conversation {conversation_id} has no message {message_id}.")
        with self.db.write() as conn:
            conn.executemany("UPDATE messages SET active_child_id = ? WHERE id = ? AND active_child_id IS NOT ?",
                             [(child, parent, child) for parent, child in zip(ids, ids[1:])])
            conn.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?", (message_id, conversation_id))

    def show_message(self, message_id: int) -> int:
        """Make ``message_id`` part of the shown thread (a search hit, an alternative); returns the new leaf."""
        message = self.message(message_id)
        leaf = self.descend(message_id)
        self.set_current_leaf(message.conversation_id, leaf)
        return leaf

    def step_alternative(self, message_id: int, step: int) -> Message:
        """Show the previous (-1) or next (+1) alternative of ``message_id``; returns the one now shown."""
        message = self.message(message_id)
        index = message.siblings.index(message.id) + step
        target = message.siblings[max(0, min(len(message.siblings) - 1, index))]
        self.show_message(target)
        return self.message(target)

    # -- deleting ----------------------------------------------------------------------------------------------
    def delete_message(self, message_id: int) -> int | None:
        """Delete a message with everything that followed it; returns the conversation's new current leaf."""
        message = self.message(message_id)
        conversation_id = message.conversation_id
        on_path = message_id in self.path_ids(conversation_id)
        others = [s for s in message.siblings if s != message_id]
        subtree = [r["id"] for r in self.db.query(_SUBTREE_SQL, (message_id,))]
        with self.db.write() as conn:
            for start in range(0, len(subtree), _CHUNK):
                part = subtree[start:start + _CHUNK]
                conn.execute(f"DELETE FROM messages WHERE id IN ({','.join('?' * len(part))})", part)
            if message.parent_id is not None:
                conn.execute("UPDATE messages SET active_child_id = ? WHERE id = ? AND active_child_id = ?",
                             (others[-1] if others else None, message.parent_id, message_id))
        if on_path:
            if others:  # show the neighbouring alternative instead
                later = [s for s in others if s > message_id]
                return self.show_message(later[0] if later else others[-1])
            leaf = message.parent_id
            with self.db.write() as conn:
                conn.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?", (leaf, conversation_id))
            return leaf
        return self.conversation(conversation_id).current_leaf_id
