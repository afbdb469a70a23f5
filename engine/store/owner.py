"""Which process is streaming into a message, and whether it is still alive.

Several Hearth processes may share the database (the app and ``hearth-cli``).
A process that streams a reply holds an exclusive OS lock on its own file in
``<data>/locks/``; the kernel drops that lock when the process dies, even by
``kill -9``. So "is the writer alive?" is "is its lock file still locked?",
which, unlike a PID, cannot be confused by a reused process id.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

try:
    import fcntl

    RENAME_LOCKED = True  # POSIX lets a locked, open file be renamed

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False
except ImportError:  # Windows
    import msvcrt

    RENAME_LOCKED = False

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False


class WriterLock:
    """Held by a process for as long as it may stream into the database."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.token = uuid.uuid4().hex
        self.path = folder / f"{self.token}.lock"
        # Lock under a temporary name, then rename: a sweep by another process never sees the
        # file unlocked (it would take it for a dead writer's and delete it).
        pending = folder / f"{self.token}.pending" if RENAME_LOCKED else self.path
        self._fd = os.open(pending, os.O_CREAT | os.O_RDWR, 0o644)
        if not _try_lock(self._fd):  # a fresh random name: cannot happen unless the OS refuses locks
            os.close(self._fd)
            raise OSError(f"cannot lock {pending}")
        if pending != self.path:
            os.replace(pending, self.path)

    def release(self) -> None:
        if self._fd is not None:
            try:
                self.path.unlink(missing_ok=True)
            finally:
                os.close(self._fd)
                self._fd = None


def writer_alive(folder: Path, token: str | None) -> bool:
    """True while the process holding ``token``'s lock runs. Removes the file of a dead one."""
    if not token:
        return False
    path = folder / f"{token}.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        if not _try_lock(fd):
            return True
    finally:
        os.close(fd)  # closing also releases the lock we may just have taken
    path.unlink(missing_ok=True)
    return False
