"""Typed errors of document collections; each message names the collection, file or folder."""

from __future__ import annotations

from engine.errors import HearthError


class CollectionError(HearthError):
    """A collection cannot do what was asked (unknown name, duplicate name, bad input)."""


class CollectionsLockedError(CollectionError):
    """Another Hearth holds the documents database locked for too long."""


class EmbedderError(HearthError):
    """The sentence-embedding model is missing or cannot be loaded."""
