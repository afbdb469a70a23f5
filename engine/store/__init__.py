"""Conversations that last: Hearth's chat history in SQLite (WAL), with branches, search and export.

    from engine.store import Store, ReplyRecorder
    with Store() as store:                                  # $HEARTH_DATA_DIR/hearth.db
        conv = store.create_conversation()
        user = store.add_message(conv.id, "user", "Hi there")
        rec = ReplyRecorder(store, conv.id, user.id, model="SmolLM2")
        ...                                                 # rec.on_text as the generation's on_text
        rec.finish(result)

Modules: ``db`` (opening, WAL, damaged files, locking policy), ``schema``
(migrations), ``conversations``, ``messages`` (the tree), ``recorder``
(streaming durability), ``search`` (FTS5), ``presets``, ``exchange``
(Markdown / OpenAI JSON), ``owner`` (is a streaming process still alive?).
No Qt here.
"""

from engine.store.errors import (ImportFormatError, NotFoundError, StoreError, StoreLockedError, StoreReadOnlyError,
                                 StoreVersionError)
from engine.store.records import COMPLETE, INTERRUPTED, STREAMING, Conversation, Message, Preset, SearchHit
from engine.store.recorder import ReplyRecorder
from engine.store.store import Store

__all__ = ["Store", "ReplyRecorder", "Conversation", "Message", "Preset", "SearchHit", "StoreError",
           "StoreLockedError", "StoreReadOnlyError", "StoreVersionError", "NotFoundError", "ImportFormatError",
           "COMPLETE", "STREAMING", "INTERRUPTED"]
