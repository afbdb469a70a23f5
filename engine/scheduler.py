"""The scheduler: one thread per device owns the models and runs tasks from a bounded FIFO queue.

Everything that runs a model goes through here: the window (through the thin Qt adapter in
``gui/worker.py``), the command line, and the HTTP server, from whatever threads they like.
A task is a plain engine function (see ``engine/tasks.py``)::

    fn(session, *, on_text, on_progress, cancel, **kwargs) -> result

and may also take ``on_event(payload)`` (named events: ``on_event(name, payload)`` is
delivered to listeners; a task calling ``on_event(payload)`` with one argument emits the
event ``"event"``).  ``submit`` returns a :class:`Handle` whose lifecycle is::

    started -> any number of chunk / progress / event -> exactly one of done | failed | cancelled -> ended

``ended`` always comes, exactly once, even when a listener raises or the task is cancelled
while it still waits in the queue.

Listeners are plain objects with any of ``on_started()``, ``on_chunk(text)``,
``on_progress(fraction, message)``, ``on_event(name, payload)``, ``on_done(result)``,
``on_failed(error)``, ``on_cancelled(partial)`` and ``on_ended()``. They are called on the
device's thread (a task cancelled while queued is ended on the thread that cancelled it),
so they must be quick: the Qt adapter only re-emits them as queued signals.

Subscribing replays nothing: a listener added after ``started`` misses what came before,
but it still gets the terminal event and ``ended`` if they were not delivered yet; added
after the task ended, it gets them at once, on the subscriber's thread. To miss nothing,
pass ``listener=`` to :meth:`Scheduler.submit` (attached before the task can start), or
read :meth:`Handle.events`, which does replay the task's whole history.

Qt-free and torch-free at import time.
"""

from __future__ import annotations

import collections
import inspect
import itertools
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from engine.cancel import CancelToken
from engine.errors import CancelledError, HearthError, OutOfMemoryError, QueueFullError

if TYPE_CHECKING:
    from engine.session import Session
    from engine.tasks import Task

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
TERMINAL_KINDS = {"done": DONE, "failed": FAILED, "cancelled": CANCELLED}
_LISTENER_METHODS = {"started": "on_started", "chunk": "on_chunk", "progress": "on_progress",
                     "event": "on_event", "done": "on_done", "failed": "on_failed",
                     "cancelled": "on_cancelled", "ended": "on_ended"}


@dataclass(frozen=True)
class Event:
    """One step of a task's life, as :meth:`Handle.events` yields it.

    ``data`` by kind: started None; chunk str; progress (fraction, message); event (name, payload);
    done result; failed the exception; cancelled the partial result or None; ended None.
    """

    kind: str
    data: Any = None


class Handle:
    """One submitted task. Safe to use from any thread."""

    def __init__(self, task_id: int, label: str, fn: Task, kwargs: dict, device: str) -> None:
        self.id = task_id
        self.label = label or getattr(fn, "__name__", "task")
        self.device = device
        self.state = QUEUED
        self.cancel_token = CancelToken()
        self.submitted_at = time.monotonic()
        self._fn, self._kwargs = fn, kwargs
        self._lock = threading.RLock()
        self._listeners: list[Any] = []
        self._history: list[Event] = []  # for events(): a reader that comes late misses nothing
        self._readers: list[collections.deque] = []
        self._reader_wakeup = threading.Condition(self._lock)
        self._terminal: Event | None = None  # set once, when the outcome is decided
        self._ended = threading.Event()
        self._scheduler_cancel: Callable[[Handle], bool] | None = None

    def __repr__(self) -> str:
        return f"Handle({self.id}, {self.label!r}, {self.state})"

    # ---- for users --------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Queued: the task never starts (cancelled, then ended). Running: sets its CancelToken."""
        self.cancel_token.cancel()
        remove = self._scheduler_cancel
        if self.state == QUEUED and remove is not None and remove(self):
            self._finish(Event("cancelled", None))

    def subscribe(self, listener: Any) -> None:
        """Add a listener; see the module docstring for what a late listener gets."""
        with self._lock:
            if self._terminal is None:
                self._listeners.append(listener)
                return
            terminal = self._terminal
        # The outcome is decided: deliver it here, or it would never come.
        _call(listener, terminal)
        _call(listener, Event("ended"))

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Every event of the task from its start, in order; the iterator ends after ``ended``.

        ``timeout`` bounds the wait for each next event (TimeoutError when it passes).
        """
        reader: collections.deque = collections.deque()
        with self._lock:
            reader.extend(self._history)
            self._readers.append(reader)
        try:
            while True:
                with self._lock:
                    if not reader and not self._reader_wakeup.wait_for(lambda: bool(reader), timeout):
                        raise TimeoutError(f"No event from task {self.id} ({self.label}) in {timeout} s.")
                    event = reader.popleft()
                yield event
                if event.kind == "ended":
                    return
        finally:
            with self._lock:
                if reader in self._readers:
                    self._readers.remove(reader)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the outcome: the result, or the task's error (CancelledError, with ``.partial``)."""
        if not self._ended.wait(timeout):
            raise TimeoutError(f"Task {self.id} ({self.label}) did not end within {timeout} s.")
        terminal = self._terminal
        if terminal.kind == "done":
            return terminal.data
        if terminal.kind == "failed":
            raise terminal.data
        error = CancelledError()
        error.partial = terminal.data
        raise error

    def wait(self, timeout: float | None = None) -> bool:
        """True once the task has ended (whatever its outcome)."""
        return self._ended.wait(timeout)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    # ---- for the scheduler's thread ---------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        with self._lock:
            if self._terminal is not None:
                return  # nothing after the outcome (a late chunk from a task's helper thread)
            self._record(event)
            listeners = list(self._listeners)
        for listener in listeners:
            _call(listener, event)

    def _finish(self, terminal: Event) -> bool:
        """Deliver the outcome and ``ended``, exactly once. False if it was already decided."""
        with self._lock:
            if self._terminal is not None:
                return False
            self._terminal = terminal
            self.state = TERMINAL_KINDS[terminal.kind]
            self._record(terminal)
            self._record(Event("ended"))
            listeners, self._listeners = list(self._listeners), []
        try:
            for listener in listeners:
                _call(listener, terminal)
            for listener in listeners:
                _call(listener, Event("ended"))
        finally:
            self._fn = self._kwargs = None  # the task's arguments may be large (documents, datasets)
            self._ended.set()
        return True

    def _record(self, event: Event) -> None:
        self._history.append(event)
        for reader in self._readers:
            reader.append(event)
        self._reader_wakeup.notify_all()


def _call(listener: Any, event: Event) -> None:
    """Call the listener's method for ``event``; a listener that raises harms no one else."""
    method = getattr(listener, _LISTENER_METHODS[event.kind], None)
    if method is None:
        return
    try:
        if event.kind in ("started", "ended"):
            method()
        elif event.kind in ("progress", "event"):
            method(*event.data)
        else:
            method(event.data)
    except Exception:  # noqa: BLE001 — a listener's bug must not stop the device's thread
        print(f"hearth: a listener of {event.kind!r} raised:", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)


def _accepts_on_event(fn: Task) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "on_event" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class _Device:
    """One thread, one Session, one FIFO queue."""

    def __init__(self, name: str, session: Session, max_queue: int) -> None:
        self.name = name
        self.session = session
        self.max_queue = max_queue
        self.queue: collections.deque[Handle] = collections.deque()
        self.running: Handle | None = None
        self.cond = threading.Condition()
        self.stopping = False
        self.mean_seconds = 5.0  # running mean of task durations, for QueueFullError.retry_after
        self.thread = threading.Thread(target=self._loop, name=f"hearth-{name}", daemon=True)
        self.thread.start()

    def put(self, handle: Handle) -> None:
        with self.cond:
            if self.stopping:
                raise HearthError("The engine is shutting down; the task was not started.")
            if len(self.queue) >= self.max_queue:
                wait = self.mean_seconds * (len(self.queue) + 1)
                raise QueueFullError(len(self.queue), retry_after=max(1.0, round(wait, 1)))
            self.queue.append(handle)
            self.cond.notify()

    def remove(self, handle: Handle) -> bool:
        with self.cond:
            try:
                self.queue.remove(handle)
            except ValueError:
                return False  # already taken by the thread: it sees the cancelled token
            return True

    def _loop(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.queue or self.stopping)
                if not self.queue:
                    return  # stopping, and nothing left
                handle = self.running = self.queue.popleft()
            started = time.monotonic()
            try:
                self._run(handle)
            finally:
                with self.cond:
                    self.running = None
                    self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * (time.monotonic() - started)
                    self.cond.notify_all()

    def _run(self, handle: Handle) -> None:
        token = handle.cancel_token
        if token.cancelled:  # cancelled in the instant between the queue and here
            handle._finish(Event("cancelled", None))
            return
        with handle._lock:
            handle.state = RUNNING
        handle._emit(Event("started"))
        fn, kwargs = handle._fn, dict(handle._kwargs)
        if "on_event" not in kwargs and _accepts_on_event(fn):
            kwargs["on_event"] = lambda *args: handle._emit(Event("event", _event_args(args)))
        try:
            result = fn(self.session, on_text=lambda text: handle._emit(Event("chunk", str(text))),
                        on_progress=lambda f, m="": handle._emit(Event("progress", (float(f), str(m)))),
                        cancel=token, **kwargs)
        except CancelledError as exc:
            handle._finish(Event("cancelled", getattr(exc, "partial", None)))
        except HearthError as exc:
            handle._finish(Event("failed", exc))
        except MemoryError:
            handle._finish(Event("failed", OutOfMemoryError("Out of memory. Try a smaller model, batch or input.")))
        except Exception as exc:  # noqa: BLE001 — a bug: keep the thread alive, log the traceback
            traceback.print_exc(file=sys.stderr)
            handle._finish(Event("failed", exc))
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: end the task, then let it go on
            handle._finish(Event("failed", exc))
            raise
        else:
            if getattr(result, "finish_reason", None) == "cancelled":  # stopped, with the text so far
                handle._finish(Event("cancelled", result))
            else:
                handle._finish(Event("done", result))


def _event_args(args: tuple) -> tuple[str, Any]:
    """``on_event(payload)`` -> ("event", payload); ``on_event(name, payload)`` -> (name, payload)."""
    if len(args) == 1:
        return ("event", args[0])
    if len(args) == 2:
        return (str(args[0]), args[1])
    raise TypeError("on_event takes (payload) or (name, payload)")


class Scheduler:
    """Runs engine tasks on one thread per device; see the module docstring."""

    def __init__(self, *, max_queue: int = 64, session: Session | None = None) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.max_queue = max_queue
        self._session = session
        self._devices: dict[str, _Device] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False

    def session(self, device: str = "default") -> Session:
        """The Session the device's thread owns (touch it only from tasks, or before any task runs)."""
        return self._device(device).session

    def submit(self, fn: Task, /, *, label: str = "", device: str = "default", listener: Any = None,
               **kwargs: Any) -> Handle:
        """Queue ``fn`` to run on ``device``'s thread; QueueFullError when the queue is full.

        ``listener`` (optional) is subscribed before the task can start, so it misses nothing.
        """
        worker = self._device(device)
        handle = Handle(next(self._ids), label, fn, kwargs, device)
        handle._scheduler_cancel = worker.remove
        if listener is not None:
            handle.subscribe(listener)
        worker.put(handle)
        return handle

    def queue_length(self, device: str | None = None) -> int:
        """Tasks waiting (not counting the running ones), on one device or all."""
        with self._lock:
            devices = list(self._devices.values()) if device is None else [self._devices.get(device)]
        return sum(len(d.queue) for d in devices if d is not None)

    def running(self, device: str = "default") -> Handle | None:
        worker = self._devices.get(device)
        return worker.running if worker is not None else None

    def is_busy(self) -> bool:
        return any(d.running is not None or d.queue for d in list(self._devices.values()))

    def alive(self) -> bool:
        """True while any of its threads runs (False after a shutdown that waited)."""
        return any(d.thread.is_alive() for d in list(self._devices.values()))

    def cancel_all(self) -> None:
        """Cancel every queued task and the running ones."""
        for worker in list(self._devices.values()):
            with worker.cond:
                pending = list(worker.queue)
                running = worker.running
            for handle in pending:
                handle.cancel()
            if running is not None:
                running.cancel()

    def shutdown(self, *, cancel_running: bool = True, wait: bool = True, timeout: float | None = None) -> bool:
        """Stop taking tasks; cancel the queued ones (and the running ones unless told not to).

        With ``wait``, block until the threads have finished (at most ``timeout`` s); True if they did.
        """
        with self._lock:
            self._closed = True
            devices = list(self._devices.values())
        for worker in devices:
            with worker.cond:
                worker.stopping = True
                pending = list(worker.queue)
                running = worker.running
                worker.cond.notify_all()
            for handle in pending:
                handle.cancel()
            if cancel_running and running is not None:
                running.cancel()
        if not wait:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in devices:
            if worker.thread is threading.current_thread():
                continue
            worker.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(w.thread.is_alive() for w in devices if w.thread is not threading.current_thread())

    def _device(self, name: str) -> _Device:
        with self._lock:
            if self._closed:
                raise HearthError("The engine is shutting down; the task was not started.")
            worker = self._devices.get(name)
            if worker is None:
                session = self._session if name == "default" and self._session is not None else _new_session()
                worker = self._devices[name] = _Device(name, session, self.max_queue)
            return worker


def _new_session() -> Session:
    from engine.session import Session

    return Session()


_default: Scheduler | None = None
_default_lock = threading.Lock()


def default_scheduler() -> Scheduler:
    """The process-wide scheduler (created on first use, again after a shutdown): the CLI, the
    server and the window share it."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Scheduler()
        return _default
