"""The one progress line every subcommand prints on stderr.

On a terminal it is a single line rewritten in place (carriage return, erase to the end of the line).
Redirected to a file or a pipe, rewriting in place would leave every update and its escape codes in
the log, so there it prints a plain line only when the phase changes or every few seconds.
"""

from __future__ import annotations

import re
import sys
import time
from typing import TextIO

_NUMBERS = re.compile(r"\d+")


class ProgressLine:
    """``line(fraction, message)`` reports; ``line.end()`` clears the line (a terminal) before the result."""

    def __init__(self, stream: TextIO | None = None, width: int = 5, every_s: float = 5.0) -> None:
        self._stream = stream
        self._width = width  # 5: "[ 12.3%]", 3: "[ 12%]"
        self._every_s = every_s
        self._last_shape: str | None = None
        self._last_time = 0.0
        self._shown = False

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def _tty(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def __call__(self, fraction: float, message: str) -> None:
        percent = f"{fraction * 100:{self._width}.{1 if self._width >= 5 else 0}f}%"
        if self._tty():
            print(f"\r[{percent}] {message}\033[K", end="", file=self.stream, flush=True)
            self._shown = True
            return
        # A log: a new line when the phase changes (the message without its counters), else every few seconds.
        shape = _NUMBERS.sub("#", message)
        now = time.monotonic()
        if shape != self._last_shape or now - self._last_time >= self._every_s:
            print(f"[{percent}] {message}", file=self.stream, flush=True)
            self._last_shape, self._last_time = shape, now

    def end(self) -> None:
        if self._tty() and self._shown:
            print("\r\033[K", end="", file=self.stream, flush=True)
        self._shown = False
