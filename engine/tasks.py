"""What a task is (:class:`Task`), and the chat tasks: plain functions of a Session, runnable from any thread.

Each has the task signature ``fn(session, *, on_text, on_progress, cancel, **kwargs)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from engine.config import ChatMessage, LoadConfig, SamplingConfig

if TYPE_CHECKING:
    from engine.cancel import CancelToken
    from engine.session import Session

TextFn = Callable[[str], None]
ProgressFn = Callable[[float, str], None]  # (fraction 0..1, message for people)


class Task(Protocol):
    """What the scheduler runs (engine/scheduler.py) on a device thread: a plain function of that thread's
    Session. ``on_text`` streams text, ``on_progress`` reports progress, ``cancel`` is checked between
    steps; the task's own arguments are keyword-only dataclasses and values; it returns its result or
    raises a typed error (engine/errors.py). Every package names its tasks module ``tasks.py`` and its
    task functions ``*_task``.
    """

    def __call__(self, session: Session, /, *, on_text: TextFn | None = ..., on_progress: ProgressFn | None = ...,
                 cancel: CancelToken | None = ..., **kwargs: Any) -> Any: ...


def load_task(session: Session, *, on_text=None, on_progress=None, cancel=None,
              config: LoadConfig | None = None) -> dict:
    """Load a model (None: the default one) and make it the session's current model."""
    from engine.loader import load_model

    lm = load_model(config or LoadConfig(), on_progress=on_progress, cancel=cancel)
    session.set_model(lm)
    prepare = lm.extras.get("prepare_fast_path")  # set by the fast decode path when available
    if callable(prepare):
        prepare(lm)
    return lm.describe()


def chat_task(session: Session, *, on_text=None, on_progress=None, cancel=None, messages: Sequence[ChatMessage],
             system_prompt: str = "", sampling: SamplingConfig | None = None, model_path: str | None = None) -> Any:
    from engine.chat_generation import chat

    lm = session.model_for(model_path)
    return chat(lm, list(messages), sampling, system_prompt=system_prompt, on_text=on_text, cancel=cancel)


def continue_task(session: Session, *, on_text=None, on_progress=None, cancel=None, messages: Sequence[ChatMessage],
                  partial: str, system_prompt: str = "", sampling: SamplingConfig | None = None,
                  model_path: str | None = None) -> Any:
    """Continue a reply that broke off (a crash, Stop, or the token limit) where it ended."""
    from engine.chat_generation import continue_reply

    lm = session.model_for(model_path)
    return continue_reply(lm, list(messages), partial, sampling, system_prompt=system_prompt, on_text=on_text,
                          cancel=cancel)
