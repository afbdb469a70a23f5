"""Where a code completion should end: the end of the block or statement, the suffix, or a line limit.

``find_cut(text)`` looks at the completion generated so far and answers the
character index to cut at, or None to keep going. Rules, in order:

* single-line mode (the cursor has code after it on its line): the first line break;
* a line that repeats the first line of the code after the cursor (the model is
  rewriting what already exists);
* indentation languages (Python, YAML...): a line indented less than the block
  the cursor is in - the block is finished;
* brace languages: a ``}`` that closes a block opened before the cursor; it is
  kept when the code after the cursor does not close it already;
* a substantial line the completion already wrote (small models loop);
* two blank lines in a row, or more than ``max_lines`` lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INDENT_LANGUAGES = {"python", "yaml", "nim", "coffeescript", "fsharp", "haskell", "elm", "pug", "sass"}
BRACE_LANGUAGES = {"c", "cpp", "csharp", "java", "javascript", "typescript", "jsx", "tsx", "go", "rust", "kotlin",
                   "scala", "swift", "dart", "php", "css", "scss", "less", "groovy", "objective-c", "zig", "json"}


def _indent(line: str) -> int:
    """Columns of leading whitespace (a tab counts 4); -1 for a blank line."""
    if not line.strip():
        return -1
    return len(line[:len(line) - len(line.lstrip(" \t"))].replace("\t", "    "))


@dataclass
class Boundary:
    prefix: str
    suffix: str = ""
    language: str = ""
    max_lines: int = 12
    single_line: bool = False

    def __post_init__(self) -> None:
        head = self.prefix.rsplit("\n", 1)[-1]  # the cursor's line, up to the cursor
        rest = self.suffix.split("\n", 1)[0]
        self.single_line = self.single_line or bool(rest.strip())
        self.cursor_line = head
        next_lines = [line for line in self.suffix.split("\n")[1:] if line.strip()]
        self.suffix_first = (rest.strip() or (next_lines[0].strip() if next_lines else ""))
        self.suffix_closes = self.suffix.lstrip().startswith("}")
        # The block the cursor is in: a line ending with ':' opens a deeper one.
        last_code = next((line for line in reversed(self.prefix.split("\n")) if line.strip()), "")
        if head.strip():
            base = _indent(head)
        elif head:  # only whitespace before the cursor: that is the intended indentation
            base = len(head.replace("\t", "    "))
        else:
            base = max(0, _indent(last_code))
        opens = last_code.rstrip().endswith(":") and (not head.strip() or head is last_code)
        self.min_indent = (max(0, _indent(last_code)) + 1) if opens else base

    def find_cut(self, text: str, final: bool = False) -> int | None:
        """Where to cut ``text`` (generated so far; ``final``: generation has ended), or None."""
        if self.single_line:
            newline = text.find("\n")
            return newline if newline != -1 else None
        lines = text.split("\n")
        complete = len(lines) if final else len(lines) - 1  # the last line may still be growing
        offset = len(lines[0]) + 1
        depth = self._depth(lines[0])
        opened = depth > 0
        blank_run = 0
        seen = {lines[0].strip()}
        for i in range(1, complete):
            line = lines[i]
            if i >= self.max_lines:
                return offset - 1
            if not line.strip():
                blank_run += 1
                if blank_run >= 2:
                    return offset - 1
                offset += len(line) + 1
                continue
            blank_run = 0
            if self.suffix_first and line.strip() == self.suffix_first:
                return offset - 1
            if len(line.strip()) >= 10 and line.strip() in seen:  # the model is going round in circles
                return offset - 1
            seen.add(line.strip())
            if self.language in INDENT_LANGUAGES and _indent(line) < self.min_indent:
                return offset - 1
            if self.language in BRACE_LANGUAGES:
                depth += self._depth(line)
                if depth < 0:  # closes a block opened before the cursor: keep the '}' unless the suffix has it
                    closing_only = line.strip().startswith("}")
                    return offset + len(line) if closing_only and not self.suffix_closes else offset - 1
                opened = opened or depth > 0
                if opened and depth == 0:  # a block the completion opened is closed: done
                    return offset + len(line)
            offset += len(line) + 1
        return None

    @staticmethod
    def _depth(line: str) -> int:
        code = _strip_strings(line)
        return code.count("{") - code.count("}")


def _strip_strings(line: str) -> str:
    """The line without string literals and // comments, so braces inside them do not count."""
    line = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|`[^`]*`', '""', line)
    return line.split("//", 1)[0]


def trim_completion(text: str) -> str:
    """No trailing blank lines or spaces (the editor keeps what follows the cursor)."""
    return text.rstrip(" \t\n") if text.strip() else ""
