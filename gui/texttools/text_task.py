"""One running engine task of a text-tool view: its streamed text, progress and end, filtered by id.

A view keeps one ``TextTask`` per kind of job; ``start`` submits to the shared
worker (``window.client``), starting a new one cancels the previous one, and
the signals only ever carry this task's events.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, Signal


class TextTask(QObject):
    chunk = Signal(str)
    progress = Signal(float, str)
    done = Signal(object)  # the result
    failed = Signal(str)  # a message for people
    stopped = Signal(object)  # cancelled; the partial result or None
    busy_changed = Signal(bool)

    def __init__(self, client, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.task_id: int | None = None
        client.chunk_received.connect(self._on_chunk)
        client.progress_changed.connect(self._on_progress)
        client.finished.connect(self._on_finished)
        client.failed.connect(self._on_failed)
        client.cancelled.connect(self._on_cancelled)

    @property
    def busy(self) -> bool:
        return self.task_id is not None

    def start(self, fn: Callable, **kwargs: Any) -> int:
        if self.task_id is not None:
            self.client.cancel(self.task_id)
        self.task_id = self.client.submit(fn, **kwargs)
        self.busy_changed.emit(True)
        return self.task_id

    def cancel(self) -> None:
        if self.task_id is not None:
            self.client.cancel(self.task_id)

    def _end(self, task_id: int) -> bool:
        if task_id != self.task_id:
            return False
        self.task_id = None
        self.busy_changed.emit(False)
        return True

    def _on_chunk(self, task_id: int, text: str) -> None:
        if task_id == self.task_id:
            self.chunk.emit(text)

    def _on_progress(self, task_id: int, fraction: float, message: str) -> None:
        if task_id == self.task_id:
            self.progress.emit(fraction, message)

    def _on_finished(self, task_id: int, result: object) -> None:
        if self._end(task_id):
            self.done.emit(result)

    def _on_failed(self, task_id: int, message: str, error_type: str) -> None:
        if self._end(task_id):
            self.failed.emit(message)

    def _on_cancelled(self, task_id: int, result: object) -> None:
        if self._end(task_id):
            self.stopped.emit(result)
