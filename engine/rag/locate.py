"""Open a cited passage in its file: the file's text now, and where the passage is in it.

Offsets are stored at indexing time; if the file changed since, the passage's
text is looked for instead, and if it is gone (or the file is), the stored
passage is shown alone with a sentence saying why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass

from engine.documents import read_document
from engine.errors import DocumentError

if TYPE_CHECKING:
    from engine.session import Session


@dataclass(frozen=True)
class LocatedPassage:
    path: str
    text: str  # the whole document's text (or only the passage, when the file cannot be read)
    start: int
    end: int
    line: int  # 1-based line where the passage starts
    notice: str = ""


def locate_passage(path: str, start: int, end: int, passage_text: str) -> LocatedPassage:
    try:
        text = read_document(path).text
    except DocumentError as exc:
        return LocatedPassage(path, passage_text, 0, len(passage_text), 1,
                              f"The file cannot be opened now ({exc.reason}); this is the passage as it was indexed.")
    if text[start:end] == passage_text:
        return LocatedPassage(path, text, start, end, text.count("\n", 0, start) + 1)
    found = text.find(passage_text)
    if found >= 0:
        return LocatedPassage(path, text, found, found + len(passage_text), text.count("\n", 0, found) + 1,
                              "The file changed since it was indexed; the passage was found at a new place.")
    return LocatedPassage(path, passage_text, 0, len(passage_text), 1,
                          "The file changed since it was indexed and no longer holds this passage; this is the "
                          "passage as it was indexed. Re-scan the collection to index the new version.")


def open_passage_task(session: Session, *, on_text=None, on_progress=None, cancel=None, path: str, start: int, end: int,
                      passage_text: str) -> LocatedPassage:
    return locate_passage(path, start, end, passage_text)
