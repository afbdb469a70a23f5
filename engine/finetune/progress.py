"""Progress of the phases before training (reading, tokenizing, first validation), with a time estimate.

Each phase reports ``on_progress(fraction, "Phase: detail · about 0:12 left")``; the estimate is
the time spent so far scaled by what is left, once a little of the phase is done.
"""

from __future__ import annotations

import time
from typing import Callable

Progress = Callable[[float, str], None]


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Phase:
    """One named phase: ``phase(fraction, detail)`` reports it scaled into [lo, hi] of the whole."""

    def __init__(self, on_progress: Progress | None, name: str, lo: float = 0.0, hi: float = 1.0) -> None:
        self.on_progress, self.name, self.lo, self.hi = on_progress, name, lo, hi
        self.started = time.monotonic()

    def __call__(self, fraction: float, detail: str = "") -> None:
        if self.on_progress is None:
            return
        fraction = min(1.0, max(0.0, fraction))
        text = f"{self.name}: {detail}" if detail else self.name
        if left := self.left(fraction):
            text += f" · about {left} left"
        self.on_progress(self.lo + (self.hi - self.lo) * fraction, text)

    def left(self, fraction: float) -> str:
        elapsed = time.monotonic() - self.started
        if fraction < 0.02 or fraction >= 1.0 or elapsed < 1.0:
            return ""
        return format_duration(elapsed * (1 - fraction) / fraction)
