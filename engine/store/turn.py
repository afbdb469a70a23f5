"""One stored chat turn: the user's message committed when sent, the reply as it streams.

Used by ``hearth-cli chat``; the window records turns through ``gui/chat/history.py``, which
writes the same rows with the same ``ReplyRecorder`` (so both leave the same interrupted reply after a crash).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from engine.cancel import CancelToken
from engine.config import ChatMessage, SamplingConfig
from engine.store.recorder import ReplyRecorder
from engine.store.records import Message
from engine.store.store import Store

if TYPE_CHECKING:
    from engine.loader import LoadedModel


def history(store: Store, conversation_id: int, leaf_id: int | None = None) -> list[ChatMessage]:
    """The thread root → ``leaf_id`` as chat messages (empty replies left out)."""
    thread = store.messages(store.path_ids(conversation_id, leaf_id))
    return [ChatMessage(m.role, m.content) for m in thread if m.role != "system" and m.content.strip()]


@dataclass
class StoredTurn:
    store: Store
    conversation_id: int | None  # None: a new conversation is made when the message is sent
    system_prompt: str

    @classmethod
    def begin(cls, conversation_id: int | None = None, system_prompt: str = "", store: Store | None = None,
              ) -> "StoredTurn":
        """Open the store and check the conversation exists (cheap: do it before loading a model)."""
        store = store or Store()
        if conversation_id is not None:
            conversation = store.conversation(conversation_id)
            system_prompt = system_prompt or conversation.system_prompt
        return cls(store, conversation_id, system_prompt)

    def run(self, lm: LoadedModel, text: str, sampling: SamplingConfig, *, on_text: Callable[[str], None] | None = None,
            cancel: CancelToken | None = None) -> tuple[Any, Message]:
        """Commit ``text`` as the user's message, then stream the reply into the store."""
        if self.conversation_id is None:
            self.conversation_id = self.store.create_conversation(system_prompt=self.system_prompt, model=lm.name).id
        elif self.system_prompt != self.store.conversation(self.conversation_id).system_prompt:
            self.store.set_conversation_settings(self.conversation_id, system_prompt=self.system_prompt)
        user = self.store.add_message(self.conversation_id, "user", text)
        return reply(self.store, lm, self.conversation_id, user.id, sampling, system_prompt=self.system_prompt,
                     on_text=on_text, cancel=cancel)


def reply(store: Store, lm: LoadedModel, conversation_id: int, parent_id: int, sampling: SamplingConfig, *,
          system_prompt: str = "", on_text: Callable[[str], None] | None = None,
          cancel: CancelToken | None = None) -> tuple[Any, Message]:
    """Answer the thread ending at ``parent_id``, recording the reply as it streams (a new alternative
    when ``parent_id`` already has replies)."""
    from engine.chat_generation import chat

    messages = history(store, conversation_id, parent_id)
    recorder = ReplyRecorder(store, conversation_id, parent_id, model=lm.name, sampling=sampling)

    def both(chunk: str) -> None:
        recorder.on_text(chunk)
        if on_text is not None:
            on_text(chunk)

    try:
        result = chat(lm, messages, sampling, system_prompt=system_prompt, on_text=both, cancel=cancel)
    except BaseException:
        recorder.interrupt()
        raise
    return result, recorder.finish(result)
