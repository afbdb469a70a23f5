"""Turn generated token ids into text chunks, safely, as they arrive.

Two rules (as in litgpt's ``generate_fn``):

* Decode by prefix difference: the whole generated sequence is decoded and the
  part already emitted is cut off. Decoding token by token would break
  characters that span several byte-level tokens and words whose leading space
  depends on the previous token.
* Hold back any tail that could be the start of a stop string, so a stop string
  split across tokens never leaks to the screen; and hold back a trailing
  U+FFFD, which means a multi-byte character is not complete yet.
"""

from __future__ import annotations

from typing import Any, Sequence


class TextStream:
    def __init__(self, tokenizer: Any, stop: Sequence[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.token_ids: list[int] = []
        self.text = ""  # decoded so far (may include held-back text)
        self.emitted = 0  # characters of self.text already handed out
        self.stopped_by: str | None = None

    def push(self, token_ids: Sequence[int]) -> str:
        """Add new token ids; return the text that is now safe to show."""
        if self.stopped_by is not None:
            return ""
        self.token_ids.extend(int(t) for t in token_ids)
        self.text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        hit = self._find_stop()
        if hit is not None:
            index, stop = hit
            self.stopped_by = stop
            self.text = self.text[:index]
            return self._emit(len(self.text))
        safe_end = len(self.text)
        if self.text.endswith("\ufffd"):
            safe_end -= 1
        safe_end = min(safe_end, len(self.text) - self._partial_stop_len())
        return self._emit(max(safe_end, self.emitted))

    def finish(self) -> str:
        """End of generation: whatever was held back (a partial stop string) is real text."""
        end = len(self.text)
        if self.stopped_by is None and self.text.endswith("\ufffd"):
            end -= 1  # an unfinished character at the very end is dropped, never shown half
        return self._emit(max(end, self.emitted))

    @property
    def output(self) -> str:
        """The final text: everything up to (not including) a stop string."""
        text = self.text
        if self.stopped_by is None and text.endswith("\ufffd"):
            text = text[:-1]
        return text

    def _emit(self, end: int) -> str:
        chunk = self.text[self.emitted:end]
        self.emitted = end
        return chunk

    def _find_stop(self) -> tuple[int, str] | None:
        # Only look where a stop could newly appear: from just before what was emitted.
        start = max(0, self.emitted - max((len(s) for s in self.stop), default=0))
        best: tuple[int, str] | None = None
        for stop in self.stop:
            index = self.text.find(stop, start)
            if index != -1 and (best is None or index < best[0]):
                best = (index, stop)
        return best

    def _partial_stop_len(self) -> int:
        """Length of the longest text suffix that is a proper prefix of a stop string."""
        longest = 0
        for stop in self.stop:
            for n in range(min(len(stop) - 1, len(self.text)), longest, -1):
                if self.text.endswith(stop[:n]):
                    longest = n
                    break
        return longest
