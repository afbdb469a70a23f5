"""Stop a generation that has started repeating itself, and stream it line by line.

Small models fall into loops ("5. What you need to know" over and over). A
``LoopGuard`` sits between ``generate``'s ``on_text`` and the caller: it passes
on whole lines only, and when a substantial line comes back a second time it
stops generation (through its own cancel token, linked to the caller's) and
cuts the text before the repeat. Text streams on at once, except a line in the
making that could still turn into one already seen: it waits until it differs.
"""

from __future__ import annotations

from typing import Callable

from engine.cancel import CancelToken

MIN_LINE = 12  # shorter lines ("---", "}", "- Yes.") may repeat legitimately


class LinkedCancel(CancelToken):
    """Cancelled when the caller cancels, or when we decide to stop ourselves."""

    def __init__(self, outer: CancelToken | None) -> None:
        super().__init__()
        self.outer = outer or CancelToken()

    @property
    def cancelled(self) -> bool:
        return self.outer.cancelled or self._event.is_set()

    def raise_if_cancelled(self) -> None:
        self.outer.raise_if_cancelled()


class LoopGuard:
    def __init__(self, on_text: Callable[[str], None] | None, cancel: CancelToken | None) -> None:
        self.emit = on_text or (lambda chunk: None)
        self.token = LinkedCancel(cancel)
        self.text = ""
        self.emitted = 0
        self.cut: int | None = None
        self._seen: set[str] = set()
        self._checked = 0  # characters of text whose lines were checked

    def __call__(self, chunk: str) -> None:
        if self.cut is not None:
            return
        self.text += chunk
        end = self.text.rfind("\n") + 1
        while self._checked < end:  # judge each newly completed line
            line_end = self.text.index("\n", self._checked)
            line = self.text[self._checked:line_end].strip()
            if len(line) >= MIN_LINE and line in self._seen:
                self.cut = self._checked
                self.token.cancel()
                self._emit_to(self.cut)
                return
            self._seen.add(line)
            self._checked = line_end + 1
        partial = self.text[self._checked:].strip()
        could_repeat = any(len(seen) >= MIN_LINE and seen.startswith(partial) for seen in self._seen)
        self._emit_to(self._checked if could_repeat else len(self.text))

    def _emit_to(self, end: int) -> None:
        if end > self.emitted:
            self.emit(self.text[self.emitted:end])
            self.emitted = end

    @property
    def looped(self) -> bool:
        return self.cut is not None

    def finish(self) -> str:
        """The text without the loop; the unfinished last line is passed on now."""
        tail = self.text[self._checked:].strip()
        if self.cut is None and len(tail) >= MIN_LINE and tail in self._seen:
            self.cut = self._checked
        if self.cut is not None:
            return self.text[:self.cut].rstrip()
        self._emit_to(len(self.text))
        return self.text
