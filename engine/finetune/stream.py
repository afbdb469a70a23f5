"""Big text files read in pieces, never whole.

A text file above ``STREAM_ABOVE`` bytes is not loaded: it is described by a
``TextFile`` (path, size, encoding, digest) and read one ``PIECE_BYTES`` piece at a
time when it is tokenized, so memory stays bounded whatever its size, and a run
that needs only part of the data reads only the pieces it needs. Pieces begin at
line starts (or at a space, or a character boundary, in a file without lines).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

PIECE_BYTES = 256 * 1024
STREAM_ABOVE = 1_000_000  # smaller files are read whole (their text is cheap to hold)
SNIFF_BYTES = 64 * 1024  # what the encoding and binary checks look at
BOUNDARY_SEARCH = 64 * 1024  # how far a piece boundary may move to reach a line start
STREAMABLE = ("utf-8", "utf-8-sig", "cp1252", "latin-1", "ascii")  # encodings where b"\n" is always a line end


@dataclass(frozen=True)
class TextFile:
    path: str
    size: int
    encoding: str
    digest: str  # of the bytes: exact duplicates of a big file are found without holding its text

    @property
    def pieces(self) -> int:
        return max(1, -(-self.size // PIECE_BYTES))


def describe(path: Path, size: int, encoding: str, *, cancel=None) -> TextFile:
    """Hash the file in 1 MB reads (a 100 MB file: well under a second; memory: one read)."""
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            if cancel is not None:
                cancel.raise_if_cancelled()
    return TextFile(str(path), size, encoding, h.hexdigest())


def read_piece(source: TextFile, index: int) -> str:
    """The text of piece ``index`` (0-based); consecutive pieces join up to the whole file."""
    with open(source.path, "rb") as fh:
        start = _boundary(fh, index * PIECE_BYTES, source.size)
        end = _boundary(fh, (index + 1) * PIECE_BYTES, source.size)
        fh.seek(start)
        data = fh.read(max(0, end - start))
    text = data.decode(source.encoding, errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_head(source: TextFile, limit: int = 400) -> str:
    with open(source.path, "rb") as fh:
        return fh.read(limit * 4).decode(source.encoding, errors="ignore")[:limit]


def _boundary(fh, offset: int, size: int) -> int:
    """The first line start at or after ``offset`` (a space or a character start if no line end is near)."""
    if offset <= 0:
        return 0
    if offset >= size:
        return size
    fh.seek(offset - 1)
    window = fh.read(BOUNDARY_SEARCH + 1)
    for mark in (b"\n", b" "):
        at = window.find(mark)
        if at >= 0:
            return offset + at
    # No line end or space: step over UTF-8 continuation bytes so no character is cut in two.
    at = 1
    while at < len(window) and (window[at] & 0xC0) == 0x80:
        at += 1
    return offset - 1 + at
