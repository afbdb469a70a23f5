"""Errors of the fine-tuning feature (all are HearthErrors, with messages for people)."""

from __future__ import annotations

from engine.errors import HearthError


class DatasetError(HearthError):
    """The files given cannot make a training set (empty, all skipped, too small...)."""


class TrainingError(HearthError):
    """Training could not start or could not go on (bad run folder, disk full...)."""


class RunNotFoundError(TrainingError):
    """A run folder named for resume, merge or compare does not hold what it should."""
