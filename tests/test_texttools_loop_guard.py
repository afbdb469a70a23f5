"""LoopGuard: streams at once, holds back a line that may be a repeat, cuts and stops on a repeat."""

from __future__ import annotations

from engine.cancel import CancelToken
from engine.texttools.loop_guard import LoopGuard


def feed(guard: LoopGuard, text: str, size: int = 3) -> None:
    for i in range(0, len(text), size):
        guard(text[i:i + size])


def test_streams_text_without_repeats_as_it_comes():
    out = []
    guard = LoopGuard(out.append, None)
    guard("Bonjour, le monde")
    assert out == ["Bonjour, le monde"]  # a line in the making is not held back
    assert guard.finish() == "Bonjour, le monde" and not guard.looped


def test_a_repeated_line_is_never_shown_and_stops_generation():
    out, caller = [], CancelToken()
    guard = LoopGuard(out.append, caller)
    feed(guard, "- What you need to know.\n- Other point here.\n- What you need to know.\n- more")
    assert guard.looped and guard.token.cancelled and not caller.cancelled
    assert "".join(out) == "- What you need to know.\n- Other point here.\n"
    assert guard.finish() == "- What you need to know.\n- Other point here."


def test_short_lines_may_repeat_and_caller_cancel_passes_through():
    caller = CancelToken()
    guard = LoopGuard(None, caller)
    feed(guard, "}\n}\n- Yes.\n- Yes.\n")
    assert not guard.looped and guard.finish() == "}\n}\n- Yes.\n- Yes.\n"
    caller.cancel()
    assert guard.token.cancelled


def test_an_unfinished_last_line_that_repeats_is_cut():
    guard = LoopGuard(None, None)
    feed(guard, "A long enough line.\nA long enough line.")
    assert guard.finish() == "A long enough line."
