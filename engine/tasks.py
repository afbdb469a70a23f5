"""The worker's chat tasks: plain functions of a Session, runnable from any thread.

Each has the task signature ``fn(session, *, on_text, on_progress, cancel, **kwargs)``.
"""

from __future__ import annotations

from typing import Any, Sequence

from engine.config import ChatMessage, LoadConfig, SamplingConfig


def load_task(session, *, on_text=None, on_progress=None, cancel=None, config: LoadConfig | None = None) -> dict:
    """Load a model (None: the default one) and make it the session's current model."""
    from engine.loader import load_model

    lm = load_model(config or LoadConfig(), on_progress=on_progress, cancel=cancel)
    session.set_model(lm)
    prepare = lm.extras.get("prepare_fast_path")  # set by the fast decode path when available
    if callable(prepare):
        prepare(lm)
    return lm.describe()


def chat_task(session, *, on_text=None, on_progress=None, cancel=None, messages: Sequence[ChatMessage],
             system_prompt: str = "", sampling: SamplingConfig | None = None, model_path: str | None = None) -> Any:
    from engine.chat_generation import chat

    lm = session.model_for(model_path)
    return chat(lm, list(messages), sampling, system_prompt=system_prompt, on_text=on_text, cancel=cancel)


def continue_task(session, *, on_text=None, on_progress=None, cancel=None, messages: Sequence[ChatMessage],
                  partial: str, system_prompt: str = "", sampling: SamplingConfig | None = None,
                  model_path: str | None = None) -> Any:
    """Continue a reply that broke off (a crash, Stop, or the token limit) where it ended."""
    from engine.chat_generation import continue_reply

    lm = session.model_for(model_path)
    return continue_reply(lm, list(messages), partial, sampling, system_prompt=system_prompt, on_text=on_text,
                          cancel=cancel)
