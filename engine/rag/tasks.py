"""Worker tasks for document collections: ``fn(session, *, on_text, on_progress, cancel, **kwargs)``.

Each task opens its own connection to documents.db (connections are per thread)
and closes it before returning. The embedding model is shared process-wide
(``embedder.shared_embedder``), so the indexing thread, a search and the chat
load it once between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from engine.config import ChatMessage, SamplingConfig, _check
from engine.rag.answer import RetrievalConfig
from engine.rag.collections import Collection, FileEntry
from engine.rag.index import IndexRequest
from engine.rag.search import Passage, SearchRequest

if TYPE_CHECKING:
    from engine.session import Session

ACTIONS = ("list", "create", "rename", "delete", "add", "remove", "rescan")


@dataclass(frozen=True)
class CollectionEdit:
    """One change to the collections (``action="list"`` changes nothing)."""

    action: str = "list"
    collection: int | str | None = None
    name: str = ""  # create / rename
    paths: tuple[str, ...] = ()  # add / remove / rescan (empty rescan: every file)
    embedder: str = ""  # create: a local embedding model folder ('' = the default)

    def __post_init__(self) -> None:
        _check(self.action in ACTIONS, f"action must be one of {', '.join(ACTIONS)}, not {self.action!r}")
        if self.action not in ("list", "create"):
            _check(self.collection is not None, f"{self.action} needs a collection")


@dataclass
class CollectionsOverview:
    """Every collection, and the files of the one asked about (or just created)."""

    collections: list[Collection]
    selected: Collection | None = None
    files: list[FileEntry] | None = field(default_factory=list)  # None: not asked for (list unchanged)
    message: str = ""


def collections_task(session: Session, *, on_text=None, on_progress=None, cancel=None,
                     edit: CollectionEdit = CollectionEdit(),
                     show: int | None = None, with_files: bool = True) -> CollectionsOverview:
    """Apply ``edit`` and return the overview (``show``: the collection whose files to list;
    ``with_files=False``: counts only, for a refresh while a big collection indexes)."""
    from engine.rag import collections as c
    from engine.rag.db import DocsDatabase, take_notices
    from engine.rag.vectors import forget

    with DocsDatabase() as db:
        message, selected_id = "", show
        if edit.action == "create":
            selected_id = c.create_collection(db, edit.name, embedder=edit.embedder).id
        elif edit.action != "list":
            selected_id = c.get_collection(db, edit.collection).id
            if edit.action == "rename":
                c.rename_collection(db, selected_id, edit.name)
            elif edit.action == "delete":
                c.delete_collection(db, selected_id)
                forget(db.path)  # its matrix (up to ~150 MB) leaves memory; the others reload when used
                selected_id = None
            elif edit.action == "add":
                c.add_sources(db, selected_id, list(edit.paths))
            elif edit.action == "remove":
                message = f"{c.remove_paths(db, selected_id, list(edit.paths))} file(s) removed from the collection."
            elif edit.action == "rescan":
                c.mark_for_rescan(db, selected_id, list(edit.paths) or None)
        message = " ".join(m for m in (take_notices(), message) if m)
        collections = c.list_collections(db)
        selected = next((x for x in collections if x.id == selected_id), None)
        files = (c.list_files(db, selected.id) if selected else []) if with_files else None
    return CollectionsOverview(collections, selected, files, message)


def index_task(session: Session, *, on_text=None, on_progress=None, cancel=None, request: IndexRequest) -> Any:
    from engine.rag.collections import get_collection
    from engine.rag.db import DocsDatabase
    from engine.rag.index import index_collection
    from engine.rag.vectors import vector_index

    with DocsDatabase() as db:
        result = index_collection(db, request, on_progress=on_progress, cancel=cancel)
        if result.chunks or result.deleted:
            # Read the new matrix here, on the indexing thread, so the next search (or chat) does not wait
            # for it (2-5 s at 100,000 passages on a busy 2-core CPU).
            vector_index(db, get_collection(db, request.collection).id)
        return result


def pending_task(session: Session, *, on_text=None, on_progress=None, cancel=None) -> list[int]:
    """Collections with files still to index (an indexing run stopped by closing the app): resume them."""
    from engine.rag.db import DocsDatabase

    with DocsDatabase() as db:
        rows = db.query("SELECT DISTINCT collection_id FROM files WHERE status = 'pending' ORDER BY collection_id")
        return [r[0] for r in rows]


def warm_task(session: Session, *, on_text=None, on_progress=None, cancel=None) -> int:
    """Load the embedding models the collections use, once there are collections (returns how many).

    The first load imports transformers' BERT code, which holds the interpreter lock for up to half a
    second at a time: done at start-up, the window never stalls later, at the first search or index."""
    from engine.rag.db import DocsDatabase
    from engine.rag.embedder import shared_embedder

    with DocsDatabase() as db:
        embedders = [r[0] for r in db.query("SELECT DISTINCT embedder FROM collections")]
    for embedder in embedders:
        if cancel is not None:
            cancel.raise_if_cancelled()
        shared_embedder(embedder or None)
    return len(embedders)


def search_task(session: Session, *, on_text=None, on_progress=None, cancel=None,
                request: SearchRequest) -> list[Passage]:
    from engine.rag.db import DocsDatabase
    from engine.rag.search import search

    with DocsDatabase() as db:
        return search(db, request)


def documents_chat_task(session: Session, *, on_text=None, on_progress=None, cancel=None,
                        messages: Sequence[ChatMessage],
                        retrieval: RetrievalConfig, system_prompt: str = "", sampling: SamplingConfig | None = None,
                        model_path: str | None = None) -> Any:
    """A chat reply grounded in the collections; the result's ``.passages`` are the passages it was given."""
    from engine.rag.answer import answer_with_documents

    lm = session.model_for(model_path)
    return answer_with_documents(lm, messages, retrieval, sampling, system_prompt=system_prompt, on_text=on_text,
                                 on_progress=on_progress, cancel=cancel)


@dataclass(frozen=True)
class ConversationLinks:
    """What the chat view needs about one conversation: its collections, and every reply's passages."""

    collection_ids: tuple[int, ...]
    passages: dict[int, list[Passage]]  # message id -> passages


def conversation_links_task(session: Session, *, on_text=None, on_progress=None, cancel=None, conversation_id: int,
                            message_ids: Sequence[int] = (), set_collections: Sequence[int] | None = None,
                            save_passages: dict[int, list[Passage]] | None = None) -> ConversationLinks:
    """Read (and optionally change) a conversation's collections and its replies' stored passages."""
    from engine.rag import links
    from engine.rag.db import DocsDatabase

    with DocsDatabase() as db:
        if set_collections is not None:
            links.set_conversation_collections(db, conversation_id, set_collections)
        for message_id, passages in (save_passages or {}).items():
            links.save_reply_passages(db, message_id, passages)
        ids = tuple(c.id for c in links.conversation_collections(db, conversation_id))
        return ConversationLinks(ids, links.reply_passages(db, message_ids))
