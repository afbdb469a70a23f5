"""The thin Qt adapter over the engine's scheduler (engine/scheduler.py).

The scheduler's device thread owns the models and runs every task; the GUI thread never calls
the engine. ``EngineClient.submit(fn, **kwargs)`` queues a task and returns a :class:`TaskSignals`,
one per task, whose signals arrive queued on the GUI thread, in the handle's lifecycle order::

    started -> chunk(str) / progress(float, str) / event(str, object) ...
            -> exactly one of done(object) | failed(str message, str error_type) | cancelled(object)
            -> ended()

A view connects to the signals of its own task and keeps the object while it cares; it never
sees another view's task. ``.cancel()`` sets the task's cancel token directly (a busy thread
would never get a queued request), or takes it out of the queue if it has not started.

Anything with the same signals (``gui/finetune``'s training in a child process) is handled alike.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal, Slot

from engine.errors import HearthError
from engine.scheduler import Handle, Scheduler
from engine.tasks import Task

# Scheduler device keys (each its own thread and Session) besides the model's "default":
TRAINING = "training"  # in-window training: chat keeps working meanwhile
FILES = "files"  # quick jobs that need no model (reading files, listing runs, dataset previews): never
#                  stuck behind a long reply


def describe_error(error: BaseException) -> tuple[str, str]:
    """(message for people, error type name) for a task's error."""
    error_type = getattr(error, "error_type", None) or type(error).__name__  # a child process's own type name
    if isinstance(error, HearthError):
        return str(error), error_type
    return f"Unexpected error: {type(error).__name__}: {error}", type(error).__name__


class TaskSignals(QObject):
    """One task's events as Qt signals, delivered on the thread that created it (the GUI thread).

    It is also the scheduler listener of its handle: the ``on_*`` methods run on the scheduler's
    thread and only post to this object, so they never block the task.
    """

    started = Signal()
    chunk = Signal(str)
    progress = Signal(float, str)
    event = Signal(str, object)
    done = Signal(object)
    failed = Signal(str, str)  # message for people, error type name
    cancelled = Signal(object)  # the partial result, or None
    ended = Signal()
    _relay = Signal(str, object)  # any thread -> this object's thread

    def __init__(self, label: str = "", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.label = label
        self.handle: Handle | None = None
        self.outcome: str | None = None  # "done" | "failed" | "cancelled" once delivered
        self._relay.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    # ---- what views use ---------------------------------------------------------------------------
    @property
    def id(self) -> int:
        return self.handle.id if self.handle is not None else -1

    @property
    def state(self) -> str:
        """As the GUI has seen it so far: queued, running, done, failed or cancelled."""
        return self.outcome or ("running" if self._started else "queued")

    @property
    def finished(self) -> bool:
        """True once ``ended`` has been delivered."""
        return self._ended

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()

    def abandon(self) -> None:
        """Cancel, and deliver nothing more to the views: for a task replaced by a newer one."""
        self._abandoned = True
        self.cancel()

    _started = False
    _ended = False
    _abandoned = False
    _on_ended: Callable[[], None] | None = None  # the client's bookkeeping, runs even when abandoned

    # ---- the scheduler's listener interface (any thread) ------------------------------------------
    def on_started(self) -> None:
        self._post("started", None)

    def on_chunk(self, text: str) -> None:
        self._post("chunk", text)

    def on_progress(self, fraction: float, message: str) -> None:
        self._post("progress", (fraction, message))

    def on_event(self, name: str, payload: Any) -> None:
        self._post("event", (name, payload))

    def on_done(self, result: Any) -> None:
        self._post("done", result)

    def on_failed(self, error: BaseException) -> None:
        self._post("failed", describe_error(error))

    def on_cancelled(self, partial: Any) -> None:
        self._post("cancelled", partial)

    def on_ended(self) -> None:
        self._post("ended", None)

    def _post(self, kind: str, data: Any) -> None:
        try:
            self._relay.emit(kind, data)
        except RuntimeError:  # the window is gone (its C++ side deleted): nobody is listening
            pass

    @Slot(str, object)
    def _deliver(self, kind: str, data: Any) -> None:
        if kind == "started":
            self._started = True
        elif kind in ("done", "failed", "cancelled"):
            self.outcome = kind
        elif kind == "ended":
            self._ended = True
            if self._on_ended is not None:
                self._on_ended()
        if self._abandoned:
            return
        if kind == "started":
            self.started.emit()
        elif kind == "chunk":
            self.chunk.emit(data)
        elif kind == "progress":
            self.progress.emit(*data)
        elif kind == "event":
            self.event.emit(*data)
        elif kind == "done":
            self.done.emit(data)
        elif kind == "failed":
            self.failed.emit(*data)
        elif kind == "cancelled":
            self.cancelled.emit(data)
        elif kind == "ended":
            self.ended.emit()


class EngineClient(QObject):
    """Lives in the GUI thread; submits to a scheduler. Safe to call only from the GUI thread.

    ``scheduler`` None: a scheduler of its own (tests, a second window); the app passes the
    process-wide one (``engine.scheduler.default_scheduler()``) so a server in the same process
    shares the model with the window.
    """

    submitted = Signal(object)  # every new TaskSignals (the self-test watches all tasks for failures)

    def __init__(self, parent: QObject | None = None, name: str = "hearth-worker",
                 scheduler: Scheduler | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.scheduler = scheduler or Scheduler()
        self._live: set[TaskSignals] = set()  # kept alive until their ``ended`` is delivered
        self._closed = False

    @property
    def session(self):
        """The Session the scheduler's thread owns (tests set a model on it before any task runs)."""
        return self.scheduler.session()

    def submit(self, fn: Task, /, *, label: str = "", **kwargs: Any) -> TaskSignals:
        signals = self.adopt(TaskSignals(label or getattr(fn, "__name__", "task")))
        try:
            signals.handle = self.scheduler.submit(fn, label=signals.label, listener=signals, **kwargs)
        except HearthError as exc:  # the queue is full, or the window is closing: the task fails like any other
            signals._abandoned = self._closed  # ... and after shutdown, the views (being deleted) hear nothing
            signals.on_failed(exc)
            signals.on_ended()
        self.submitted.emit(signals)
        return signals

    def start_elsewhere(self, start: Callable[[TaskSignals], Handle], label: str = "") -> TaskSignals:
        """Adapt a task run elsewhere, like training in a child process (engine/finetune/process.py).

        ``start(listener)`` starts it with the listener already subscribed and returns its handle
        (anything with ``.id``, ``cancel()`` and the listener calls); its signals are as for ``submit``.
        """
        signals = self.adopt(TaskSignals(label))
        try:
            signals.handle = start(signals)
        except Exception:
            self._live.discard(signals)
            raise
        self.submitted.emit(signals)
        return signals

    def adopt(self, signals: TaskSignals) -> TaskSignals:
        """Count a task as this client's (``is_busy``, ``cancel``) until its ``ended`` is delivered."""
        self._live.add(signals)
        signals._on_ended = lambda: self._live.discard(signals)
        return signals

    def cancel(self) -> None:
        """Cancel every task of this client, queued or running."""
        for signals in list(self._live):
            signals.cancel()

    def is_busy(self) -> bool:
        """True while a task submitted here has not delivered its ``ended``."""
        return bool(self._live)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything and stop the scheduler's threads; True if they stopped in time.

        The window is closing: from now on no task delivers anything more to the views (their widgets are
        being deleted); views that must save something do it in their ``on_window_closing``, before this.
        """
        self._closed = True
        for signals in list(self._live):
            signals.abandon()
        stopped = self.scheduler.shutdown(timeout=timeout_ms / 1000)
        if not stopped:
            busy = ", ".join(sorted({s.label for s in self._live if s.handle is not None and not s.handle.ended}))
            print(f"hearth: the engine did not stop in time ({busy or 'a task'} still running)", file=sys.stderr)
        return stopped


def connect(task: TaskSignals, **slots: Callable) -> TaskSignals:
    """``task.<signal>.connect(slot)`` for each ``signal=slot``; returns the task."""
    for name, slot in slots.items():
        getattr(task, name).connect(slot)
    return task


def submit_held(client: EngineClient, held: set, fn: Task, /, *, on_error: Callable[[str], Any],
                done: Callable[[Any], Any] | None = None, **kwargs: Any) -> TaskSignals:
    """Submit a task nobody else keeps a reference to: ``held`` holds its signals until ``ended``
    (so they are not collected mid-task), a failure goes to ``on_error(message)``, the result to ``done``."""
    task = client.submit(fn, label=fn.__name__, **kwargs)
    held.add(task)
    connect(task, failed=lambda message, _type: on_error(message), ended=lambda: held.discard(task))
    if done is not None:
        task.done.connect(done)
    return task


def is_running(task: TaskSignals | None) -> bool:
    """True from submit until the task's ``ended`` has been delivered."""
    return task is not None and not task.finished
