"""One indexer per collection at a time, across processes (the app and hearth-cli).

An OS lock on ``<data>/locks/collection-<db>-<id>.lock``: the kernel drops it
when the process dies, so a crash never leaves a collection locked.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from engine.rag.errors import CollectionsLockedError
from engine.store.owner import _try_lock


class IndexLock:
    def __init__(self, db_path: Path, collection) -> None:
        key = hashlib.sha1(str(Path(db_path).resolve()).encode()).hexdigest()[:12]
        self.path = Path(db_path).parent / "locks" / f"collection-{key}-{collection.id}.lock"
        self.name = collection.name
        self._fd: int | None = None

    def __enter__(self) -> "IndexLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise CollectionsLockedError(f"The collection {self.name!r} is being indexed by another Hearth (the app "
                                         "or hearth-cli). Wait for it to finish; its progress is saved file by file.")
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock; the file stays (deleting it could race a new holder)
            self._fd = None
