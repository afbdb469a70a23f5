"""The server's request log: what the Server view shows and ``hearth-cli serve`` prints.

Records are kept in a bounded deque; listeners (the GUI's adapter, the CLI's printer) are
called on the server's thread for each finished request, so they must be quick.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("hearth.server")


@dataclass(frozen=True)
class RequestRecord:
    client: str  # "127.0.0.1:53412"
    method: str
    path: str
    status: int
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tok_s: float = 0.0
    seconds: float = 0.0
    note: str = ""  # "cancelled: client disconnected", an error's message...
    time: float = field(default_factory=time.time)

    def line(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.time))
        tokens = f" {self.prompt_tokens}+{self.completion_tokens} tok {self.tok_s:.1f} tok/s" \
            if self.completion_tokens else ""
        note = f" ({self.note})" if self.note else ""
        return f"{when} {self.client} {self.method} {self.path} {self.status} {self.model}{tokens} " \
               f"{self.seconds:.2f}s{note}"


class RequestLog:
    def __init__(self, keep: int = 500) -> None:
        self.records: collections.deque[RequestRecord] = collections.deque(maxlen=keep)
        self._listeners: list[Callable[[RequestRecord], None]] = []
        self._lock = threading.Lock()

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self.records.append(record)
            listeners = list(self._listeners)
        log.info("%s", record.line())
        for listener in listeners:
            try:
                listener(record)
            except Exception:  # noqa: BLE001 — a broken listener must not break serving
                log.exception("request log listener failed")

    def subscribe(self, listener: Callable[[RequestRecord], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[RequestRecord], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self.records)
