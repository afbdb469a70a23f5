"""The chat view's link to the conversation store: what is shown, what is saved.

The GUI thread owns one ``Store`` (SQLite calls take milliseconds). The user's
message is committed when sent; a streaming reply goes through a
``ReplyRecorder`` fed from the view's flush timer, so it is committed about
once a second and survives a crash. Long threads are shown lazily: only the
newest ``PAGE`` messages are turned into rows, older ones when scrolled to.

If the database cannot be opened the chat still works, unsaved, and the user
is told why.
"""

from __future__ import annotations

from engine.config import ChatMessage, SamplingConfig
from engine.errors import HearthError
from engine.store import Message, ReplyRecorder, Store, StoreError
from engine.store.messages import LEAF
from gui.chat.list_model import ChatItem

PAGE = 60


def item_for(message: Message) -> ChatItem:
    position, count = message.alternative
    meta = {"id": message.id, "model": message.model, "alternative": position, "alternatives": count,
            "status": message.status}
    if message.tok_s:
        meta.update(tok_s=message.tok_s, new_tokens=message.new_tokens or 0)
    if message.status == "interrupted":
        meta["finish_reason"] = "interrupted"
    elif message.finish_reason:
        meta["finish_reason"] = message.finish_reason
    return ChatItem(message.role, message.content, meta)


class ChatHistory:
    def __init__(self, report_error) -> None:
        self.report_error = report_error  # callable(text): the window's error banner
        self.store: Store | None = None
        self.error = ""
        self.conversation_id: int | None = None
        self.older_ids: list[int] = []  # thread ids above the first shown row, not loaded yet
        self.recorder: ReplyRecorder | None = None
        try:
            self.store = Store()
        except HearthError as exc:  # a StoreError, or an unusable data folder: the chat works without history
            self.error = f"Chat history is off: {exc}"

    @property
    def notice(self) -> str:
        return self.store.notice if self.store is not None else ""

    def safely(self, fn, *args, default=None, **kwargs):
        """Run a store call (``fn``: a store method's name, or a callable); a StoreError becomes a message in the
        window, never a lost session. Without a store (closed, e.g. a settings save queued as the window shuts)
        nothing runs."""
        if self.store is None:
            return default
        if isinstance(fn, str):
            fn = getattr(self.store, fn)
        try:
            return fn(*args, **kwargs)
        except StoreError as exc:
            self.report_error(str(exc))
            return default

    # -- loading ---------------------------------------------------------------------------------------------
    def open(self, conversation_id: int | None) -> list[ChatItem]:
        """Show a conversation: the newest PAGE messages of its current thread."""
        self.conversation_id = conversation_id
        self.older_ids = []
        if conversation_id is None:
            return []
        ids = self.safely("path_ids", conversation_id, default=[])
        self.older_ids, shown = ids[:-PAGE], ids[-PAGE:]
        return [item_for(m) for m in self.safely("messages", shown, default=[])]

    def older(self) -> list[ChatItem]:
        """The next page above what is shown (empty when the top is reached)."""
        if not self.older_ids:
            return []
        shown, self.older_ids = self.older_ids[-PAGE:], self.older_ids[:-PAGE]
        return [item_for(m) for m in self.safely("messages", shown, default=[])]

    def tail_from(self, message_id: int) -> list[ChatItem]:
        """The shown thread from ``message_id`` down to the current leaf."""
        ids = self.safely("path_ids", self.conversation_id, default=[])
        if message_id not in ids:
            return []
        return [item_for(m) for m in self.safely("messages", ids[ids.index(message_id):], default=[])]

    def conversation(self):
        if self.conversation_id is None:
            return None
        return self.safely("conversation", self.conversation_id)

    def thread(self, upto_id: int | None) -> list[ChatMessage] | None:
        """What the model sees: the whole thread down to ``upto_id`` (not just the rows shown)."""
        if self.store is None or self.conversation_id is None or upto_id is None:
            return None
        from engine.store.turn import history

        return self.safely(history, self.store, self.conversation_id, upto_id)

    # -- writing ---------------------------------------------------------------------------------------------
    def add_user_message(self, text: str, parent_id=LEAF, *, system_prompt: str = "",
                         sampling: SamplingConfig | None = None, preset_id: int | None = None) -> int | None:
        """Commit the user's message (starting a conversation if needed); returns its id."""
        if self.store is None:
            return None
        if self.conversation_id is None:
            created = self.safely("create_conversation", system_prompt=system_prompt, sampling=sampling,
                                  preset_id=preset_id)
            if created is None:
                return None
            self.conversation_id = created.id
        message = self.safely("add_message", self.conversation_id, "user", text, parent_id=parent_id)
        return message.id if message is not None else None

    def start_reply(self, parent_id: int | None, model: str | None, sampling: SamplingConfig) -> int | None:
        if parent_id is None or self.conversation_id is None:
            return None
        self.recorder = self.safely(ReplyRecorder, self.store, self.conversation_id, parent_id, model=model,
                                    sampling=sampling)
        return self.recorder.message_id if self.recorder is not None else None

    def continue_reply(self, message_id: int) -> None:
        self.recorder = self.safely(ReplyRecorder, self.store, self.conversation_id, None, continue_id=message_id)

    def on_text(self, text: str) -> None:
        if self.recorder is not None:
            self.safely(self.recorder.on_text, text)

    def end_reply(self, result, *, failed: bool = False, empty: bool = False) -> Message | None:
        """Close the recorded reply; an empty stopped reply is removed rather than kept."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        if empty and not recorder.prefix:
            self.safely(recorder.finish, result)
            self.safely("delete_message", recorder.message_id)
            return None
        if failed:
            return self.safely(recorder.interrupt)
        return self.safely(recorder.finish, result)

    def save_settings(self, *, system_prompt: str | None = None, sampling: SamplingConfig | None = None,
                      preset_id: int | None = None, clear_preset: bool = False) -> None:
        if self.conversation_id is not None:
            self.safely("set_conversation_settings", self.conversation_id, system_prompt=system_prompt,
                        sampling=sampling, preset_id=preset_id, clear_preset=clear_preset)
