"""Errors of the Transformer lab (HearthErrors, with messages for people)."""

from __future__ import annotations

from engine.errors import HearthError, OutOfMemoryError


class LabError(HearthError):
    """Base class of the lab's errors."""


class NotEnoughTextError(LabError):
    """The files hold too little text for the chosen context."""


class TooBigError(LabError, OutOfMemoryError):
    """The chosen size would not fit in this machine's memory (the message has the estimate)."""


class LabRunError(LabError):
    """A lab folder cannot be trained into, resumed or read."""


class AttentionUnavailableError(LabError):
    """The model's attention implementation does not give its weights back."""
