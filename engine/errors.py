"""Typed errors raised by the engine.

Every error carries a message written for a person: it names the file (or the
setting) and says what is wrong with it, so the GUI can show ``str(error)``
as-is and the command line can print it without a traceback.
"""

from __future__ import annotations


class HearthError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidConfigError(HearthError, ValueError):
    """A dataclass argument holds a value outside its allowed range."""


class DataDirError(HearthError):
    """The user data folder cannot be used (missing parent, read-only, a file...)."""


class ModelLoadError(HearthError):
    """A model folder or GGUF file could not be loaded."""

    def __init__(self, path, reason: str):
        self.path = str(path) if path is not None else None
        self.reason = reason
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"Could not load model {where}{reason}")


class BadModelFileError(ModelLoadError):
    """A model file is damaged or not what it claims: not GGUF, truncated, an unknown quantization
    type, or metadata missing a key its architecture needs."""


class NotEnoughMemoryError(ModelLoadError):
    """Loading would need more memory than the machine has available; nothing was loaded."""

    def __init__(self, path, needed: int, available: int):
        self.needed, self.available = needed, available
        super().__init__(path, f"it needs about {format_bytes(needed)} of memory, and only "
                               f"{format_bytes(available)} is available.")


def format_bytes(n: int | float) -> str:
    """1536 -> '1.5 KB'; decimal units, as file managers show sizes."""
    n = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class ModelNotLoadedError(HearthError):
    """A task needs a model but none is loaded yet."""

    def __init__(self, message: str = "No model is loaded yet."):
        super().__init__(message)


class GenerationError(HearthError):
    """Generation failed for a reason other than cancellation."""


class OutOfMemoryError(HearthError):
    """The device ran out of memory; the message suggests what to make smaller."""


class DocumentError(HearthError):
    """A file given as input cannot be read as text."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class CancelledError(HearthError):
    """Raised by long operations that have no partial result worth returning."""

    def __init__(self, message: str = "Cancelled."):
        super().__init__(message)


class QueueFullError(HearthError):
    """The scheduler's queue is full; ``retry_after`` says in how many seconds to try again."""

    def __init__(self, queued: int, retry_after: float = 1.0):
        self.queued = queued
        self.retry_after = float(retry_after)
        super().__init__(f"The engine is busy: {queued} tasks are waiting. Try again in {self.retry_after:.0f} s.")


class ContextOverflowError(GenerationError):
    """A prompt (plus the tokens asked for) does not fit the model's context window."""

    def __init__(self, prompt_tokens: int, context_length: int, max_tokens: int | None = None):
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length
        self.max_tokens = max_tokens
        if max_tokens is None or prompt_tokens >= context_length:
            detail = f"the prompt has {prompt_tokens} tokens"
        else:
            detail = f"the prompt has {prompt_tokens} tokens and {max_tokens} more were asked for"
        super().__init__(f"This model's context is {context_length} tokens, but {detail}. "
                         "Shorten the prompt or ask for fewer tokens.")
