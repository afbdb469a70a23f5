"""Typed errors of the conversation store; each message names the file and says what to do."""

from __future__ import annotations

from engine.errors import HearthError


class StoreError(HearthError):
    """The conversation database cannot do what was asked."""


class StoreLockedError(StoreError):
    """Another program holds a write lock on the database for too long."""


class StoreReadOnlyError(StoreError):
    """The database file (or its folder) cannot be written."""


class StoreVersionError(StoreError):
    """The database was written by a newer Hearth than this one."""


class NotFoundError(StoreError, KeyError):
    """No conversation, message or preset has that id."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else "Not found."


class ImportFormatError(StoreError, ValueError):
    """A file given to import is not a conversation Hearth can read."""
