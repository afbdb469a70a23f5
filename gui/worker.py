"""The one module that speaks both Qt and engine: a worker thread that owns the model.

``Worker`` is a long-lived QObject moved to its own QThread. The GUI thread
never calls the engine; it calls ``EngineClient.submit(fn, **kwargs)``, which
queues the task to the worker and returns a task id. Results come back as
queued signals carrying that id:

* ``chunk_received(id, text)``      streamed text, in order
* ``progress_changed(id, fraction, message)``
* then exactly one of ``finished(id, result)``, ``failed(id, message, error_type)``,
  ``cancelled(id, partial_result_or_None)``.

Cancel does not go through the event loop (the worker is busy): it sets the
task's ``CancelToken`` directly, and the engine reads it after every token.
"""

from __future__ import annotations

import itertools
import sys
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.cancel import CancelToken
from engine.errors import CancelledError, HearthError


class Worker(QObject):
    chunk_received = Signal(int, str)
    progress_changed = Signal(int, float, str)
    finished = Signal(int, object)
    failed = Signal(int, str, str)
    cancelled = Signal(int, object)
    started = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        from engine.session import Session

        self.session = Session()

    @Slot(int, object, object, object)
    def run_task(self, task_id: int, fn: Callable, kwargs: dict, token: CancelToken) -> None:
        if token.cancelled:  # cancelled while it waited in the queue
            self.cancelled.emit(task_id, None)
            return
        self.started.emit(task_id)
        try:
            result = fn(self.session, on_text=lambda text: self.chunk_received.emit(task_id, text),
                        on_progress=lambda f, m="": self.progress_changed.emit(task_id, float(f), str(m)),
                        cancel=token, **kwargs)
        except CancelledError:
            self.cancelled.emit(task_id, None)
        except HearthError as exc:
            self.failed.emit(task_id, str(exc), type(exc).__name__)
        except MemoryError:
            self.failed.emit(task_id, "Out of memory. Try a smaller model, batch or input.", "OutOfMemoryError")
        except Exception as exc:  # a bug: keep the app alive, show it, log the traceback
            traceback.print_exc(file=sys.stderr)
            self.failed.emit(task_id, f"Unexpected error: {type(exc).__name__}: {exc}", type(exc).__name__)
        else:
            if getattr(result, "finish_reason", None) == "cancelled":
                self.cancelled.emit(task_id, result)
            else:
                self.finished.emit(task_id, result)


class EngineClient(QObject):
    """Lives in the GUI thread; owns the worker thread. Safe to call only from the GUI thread."""

    _request = Signal(int, object, object, object)

    def __init__(self, parent: QObject | None = None, name: str = "hearth-worker") -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._tokens: dict[int, CancelToken] = {}
        self.thread = QThread()
        self.thread.setObjectName(name)
        self.worker = Worker()
        self.worker.moveToThread(self.thread)
        self._request.connect(self.worker.run_task)  # queued: the worker lives in another thread
        for signal in (self.worker.finished, self.worker.failed, self.worker.cancelled):
            signal.connect(self._forget)
        self.thread.start()
        # Re-export the worker's signals so views connect to the client.
        self.chunk_received = self.worker.chunk_received
        self.progress_changed = self.worker.progress_changed
        self.finished = self.worker.finished
        self.failed = self.worker.failed
        self.cancelled = self.worker.cancelled
        self.started = self.worker.started

    def submit(self, fn: Callable, **kwargs: Any) -> int:
        task_id = next(self._ids)
        token = CancelToken()
        self._tokens[task_id] = token
        self._request.emit(task_id, fn, kwargs, token)
        return task_id

    def cancel(self, task_id: int | None = None) -> None:
        """Cancel one task, or every pending one when ``task_id`` is None."""
        ids = list(self._tokens) if task_id is None else [task_id]
        for tid in ids:
            token = self._tokens.get(tid)
            if token is not None:
                token.cancel()

    def is_busy(self) -> bool:
        return bool(self._tokens)

    @Slot(int)
    def _forget(self, task_id: int, *_: Any) -> None:
        self._tokens.pop(task_id, None)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything and stop the thread; True if it stopped in time."""
        self.cancel()
        self.thread.quit()
        return self.thread.wait(timeout_ms)
