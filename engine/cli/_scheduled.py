"""Run engine tasks from the command line on the process-wide scheduler (engine/scheduler.py).

The CLI is one more headless client of the thread that owns the model, like the HTTP server:
it submits a task, prints its streamed text as the events arrive, and Ctrl+C cancels the task
(a second Ctrl+C ends the program).
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any, Callable

from engine.config import LoadConfig
from engine.cli.progress import ProgressLine

if TYPE_CHECKING:
    from engine.session import Session


def run_task(fn: Callable, *, on_chunk: Callable[[str], None] | None = None,
             on_progress: Callable[[float, str], None] | None = None, **kwargs: Any) -> Any:
    """Submit ``fn`` and wait for it; returns its result, or the partial result of a cancelled
    generation (CancelledError when there is none). The task's errors are raised here."""
    from engine.errors import CancelledError
    from engine.scheduler import default_scheduler

    handle = default_scheduler().submit(fn, label=getattr(fn, "__name__", "task"), **kwargs)
    previous = _on_interrupt(handle)
    try:
        for event in handle.events():
            if event.kind == "chunk" and on_chunk is not None:
                on_chunk(event.data)
            elif event.kind == "progress" and on_progress is not None:
                on_progress(*event.data)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        return handle.result()
    except CancelledError as exc:
        if getattr(exc, "partial", None) is not None:
            return exc.partial
        raise


def _on_interrupt(handle) -> Any:
    """Ctrl+C cancels the task (it ends cleanly, with what it has); a second one interrupts."""
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if handle.cancel_token.cancelled:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        handle.cancel()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        return None
    return previous


def load_on_scheduler(args, quiet: bool = False) -> dict:
    """Load ``--model`` on the scheduler's thread; returns the model's description (name, device, ...)."""
    from engine.tasks import load_task

    progress = ProgressLine()
    info = run_task(load_task, on_progress=None if quiet else progress,
                    config=LoadConfig(path=args.model, device=args.device, dtype=args.dtype))
    progress.end()
    return info


def _call_task(session: Session, *, on_text=None, on_progress=None, cancel=None, call):
    return call(session.require_model(), on_text=on_text, on_progress=on_progress, cancel=cancel)


class ModelRunner:
    """The model a command uses: loaded on the scheduler's thread (local), or ``--server``'s (remote).

    ``run(call)`` runs ``call(lm, *, on_text, on_progress, cancel)`` where the model lives: a task on
    the scheduler for a local model, here for a remote one. Ctrl+C cancels it either way.
    """

    def __init__(self, args, quiet: bool = False) -> None:
        self.remote = None
        if getattr(args, "server", None):
            from engine.cli._common import load_from

            self.remote = load_from(args, quiet)
            self.name = self.remote.name
        else:
            self.name = load_on_scheduler(args, quiet)["name"]

    def run(self, call: Callable, *, on_chunk: Callable[[str], None] | None = None,
            on_progress: Callable[[float, str], None] | None = None) -> Any:
        if self.remote is not None:
            from engine.cli._common import cancel_on_interrupt

            return call(self.remote, on_text=on_chunk, on_progress=on_progress, cancel=cancel_on_interrupt())
        return run_task(_call_task, on_chunk=on_chunk, on_progress=on_progress, call=call)
