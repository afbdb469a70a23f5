"""Hearth's engine: load local models and generate, with no Qt and no network.

Importing ``engine`` is cheap (torch loads on first use), so the GUI can show
its window first. The public API::

    from engine import load_model, generate, chat, LoadConfig, SamplingConfig, ChatMessage, CancelToken
    lm = load_model()                      # the embedded default model
    result = chat(lm, [ChatMessage("user", "Hi!")], on_text=print)

    # Or through the scheduler, whose thread owns the model (what the window, CLI and server do):
    from engine import default_scheduler
    from engine.tasks import chat_task, load_task
    default_scheduler().submit(load_task).result()
    reply = default_scheduler().submit(chat_task, messages=[ChatMessage("user", "Hi!")]).result()
"""

from engine import offline as _offline  # noqa: F401  (must run before any HF import)
from engine.cancel import CancelToken
from engine.config import ChatMessage, LoadConfig, SamplingConfig
from engine.errors import (CancelledError, DataDirError, DocumentError, GenerationError, HearthError,
                           InvalidConfigError, ModelLoadError, ModelNotLoadedError, OutOfMemoryError)

_LAZY = {
    "load_model": "engine.loader", "LoadedModel": "engine.loader",
    "generate": "engine.generation", "GenerationResult": "engine.generation",
    "chat": "engine.chat_generation",
    "Scheduler": "engine.scheduler", "Handle": "engine.scheduler", "default_scheduler": "engine.scheduler",
}

__all__ = ["CancelToken", "ChatMessage", "LoadConfig", "SamplingConfig", "HearthError",
           "CancelledError", "DataDirError", "DocumentError", "GenerationError", "InvalidConfigError",
           "ModelLoadError", "ModelNotLoadedError", "OutOfMemoryError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
