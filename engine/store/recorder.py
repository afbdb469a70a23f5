"""Commit a streaming reply as it grows, so a crash or ``kill -9`` keeps what was already said.

Used as the ``on_text`` of a generation::

    rec = ReplyRecorder(store, conversation_id, parent_id=user_message.id, model=lm.name, sampling=sampling)
    try:
        result = chat(lm, history, sampling, on_text=rec.on_text, cancel=cancel)
    except BaseException:
        rec.interrupt()
        raise
    rec.finish(result)

The reply row exists (empty, status "streaming") before the first token; the
text is committed at most every ``interval`` seconds while chunks arrive.
A process that dies leaves it "streaming"; the next process to open the store
sees its writer is gone and marks it "interrupted" (see ``db.recover_interrupted``).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from engine.config import SamplingConfig
from engine.store.records import COMPLETE, INTERRUPTED, STREAMING, Message


class ReplyRecorder:
    def __init__(self, store: Any, conversation_id: int, parent_id: int | None, *, model: str | None = None,
                 sampling: SamplingConfig | None = None, continue_id: int | None = None, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Start a new reply under ``parent_id``, or (``continue_id``) carry on an earlier one's text."""
        self.store = store
        self.interval = interval
        self._clock = clock
        token = store.db.writer_token()
        if continue_id is not None:
            earlier = store.message(continue_id)
            self.prefix = earlier.content
            self.message_id = continue_id
            store.update_message(continue_id, status=STREAMING, writer=token)
            store.show_message(continue_id)
        else:
            self.prefix = ""
            self.message_id = store.add_message(conversation_id, "assistant", "", parent_id=parent_id,
                                                status=STREAMING, writer=token, model=model, sampling=sampling).id
        self._parts: list[str] = []
        self._dirty = False
        self._last_flush = clock()
        self.done = False

    @property
    def text(self) -> str:
        return self.prefix + "".join(self._parts)

    def on_text(self, chunk: str) -> None:
        if not chunk:
            return
        self._parts.append(chunk)
        self._dirty = True
        if self._clock() - self._last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self._dirty and not self.done:
            self.store.update_message(self.message_id, content=self.text)
            self._dirty = False
        self._last_flush = self._clock()

    def finish(self, result: Any = None) -> Message:
        """The reply ended (eos, length, stop string or a user's stop): store the text and its figures."""
        fields: dict = {"status": COMPLETE, "writer": None, "content": self.text}
        if result is not None:
            fields.update(content=self.prefix + result.text, finish_reason=result.finish_reason,
                          tok_s=round(float(result.tok_s), 2), new_tokens=int(result.new_tokens))
        return self._end(fields)

    def interrupt(self) -> Message:
        """The reply broke off (an error): keep what came, marked interrupted."""
        return self._end({"status": INTERRUPTED, "writer": None, "content": self.text})

    def _end(self, fields: dict) -> Message:
        if not self.done:
            self.store.update_message(self.message_id, **fields)
            self.done = True
        return self.store.message(self.message_id)
