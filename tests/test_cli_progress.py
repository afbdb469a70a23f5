"""The CLI's progress line: rewritten in place on a terminal, plain throttled lines in a log."""

import io

from engine.cli.progress import ProgressLine


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_rewrites_one_line_and_clears_it():
    out = _Terminal()
    line = ProgressLine(out)
    line(0.5, "Reading layer 1 of 30")
    line(0.6, "Reading layer 2 of 30")
    line.end()
    text = out.getvalue()
    assert "\n" not in text
    assert text.count("\r") == 3 and text.endswith("\r\033[K")
    assert "[ 60.0%] Reading layer 2 of 30" in text


def test_log_gets_plain_lines_only_when_the_phase_changes():
    out = io.StringIO()  # not a terminal: a file or a pipe
    line = ProgressLine(out, every_s=3600)
    for i in range(1, 31):
        line(i / 100, f"Reading layer {i} of 30")
    line(0.5, "Converting (one time only)… 3 s")
    line(0.6, "Converting (one time only)… 4 s")
    line(1.0, "Ready")
    line.end()
    lines = out.getvalue().splitlines()
    assert lines == ["[  1.0%] Reading layer 1 of 30", "[ 50.0%] Converting (one time only)… 3 s", "[100.0%] Ready"]
    assert "\r" not in out.getvalue() and "\033" not in out.getvalue()


def test_log_repeats_a_phase_after_the_interval():
    out = io.StringIO()
    line = ProgressLine(out, width=3, every_s=0.0)
    line(0.1, "step 1")
    line(0.2, "step 2")
    assert out.getvalue().splitlines() == ["[ 10%] step 1", "[ 20%] step 2"]
