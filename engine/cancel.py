"""A cancel token shared between the thread that asks and the thread that works.

The GUI thread calls :meth:`CancelToken.cancel` directly (no queued signal: a
busy worker would never get to it); the worker polls :attr:`cancelled` between
tokens, steps or files.
"""

from __future__ import annotations

import threading

from engine.errors import CancelledError


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError()

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"


class LinkedCancel(CancelToken):
    """Cancelled when the caller cancels, or when we decide to stop ourselves (a code boundary reached)."""

    def __init__(self, outer: CancelToken | None) -> None:
        super().__init__()
        self.outer = outer or CancelToken()

    @property
    def cancelled(self) -> bool:
        return self.outer.cancelled or self._event.is_set()

    def raise_if_cancelled(self) -> None:
        self.outer.raise_if_cancelled()
