"""Files and folders → examples (``Record``), with every skipped file or line and why.

Text-like files (plain text, Markdown, reST, code, PDF, DOCX) are read by
``engine.documents``; JSON, JSONL and CSV are read here because their rows are
examples, not prose:

* ``{"messages": [{"role", "content"}, ...]}`` → a chat example
* ``{"prompt", "completion"}`` / ``{"input", "output"}`` / ``{"instruction", "output"}`` → an input→output pair
* ``{"text"}`` → plain text
* CSV with two columns → input, output (a header row naming them is recognised)

Nothing is cut silently: a big text file becomes a streamed record (engine/finetune/stream.py, read in
pieces when tokenized), JSON Lines and CSV are read line by line whatever their size, and only a
whole-document .json over ``max_file_mb`` is refused, with the reason. Every file or line left out is a
``Skipped`` with its reason: binary data (naming the format when the bytes say it, e.g. a PNG named .txt),
empty files, broken or looping links, unreadable lines.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from engine.cancel import CancelToken
from engine.finetune.stream import SNIFF_BYTES, STREAM_ABOVE, STREAMABLE, TextFile, describe, read_head

JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}
CSV_SUFFIXES = {".csv", ".tsv"}
PAIR_KEYS = (("prompt", "completion"), ("input", "output"), ("instruction", "output"),
             ("question", "answer"), ("source", "target"))
MAX_LISTED_LINES = 12  # named in a skipped file's one-line reason
MAX_KEPT_LINES = 1000  # kept one by one (with their reasons) for the CLI's --json and the window; all are counted


@dataclass
class Record:
    """One example before tokenisation."""

    kind: str  # "text", "chat" or "pair"
    file: str  # the file it came from (the unit of the train/validation split)
    where: str  # file, or file:line, for the preview
    text: str = ""  # kind == "text"
    messages: tuple = ()  # kind == "chat": ((role, content), ...)
    prompt: str = ""  # kind == "pair"
    completion: str = ""
    stream: TextFile | None = None  # a big text file, read in pieces when tokenized (``text`` stays empty)
    pieces: tuple[int, int] = (0, 0)  # the pieces of ``stream`` this record covers: [first, last)

    def key(self) -> tuple:
        """Identity for exact-duplicate removal."""
        if self.stream is not None:
            return ("stream", self.stream.digest, self.pieces)
        return (self.kind, self.text, self.messages, self.prompt, self.completion)

    def size(self) -> int:
        if self.stream is not None:
            share = (self.pieces[1] - self.pieces[0]) / self.stream.pieces
            return int(self.stream.size * share)
        return len(self.text) + sum(len(c) for _, c in self.messages) + len(self.prompt) + len(self.completion)

    def preview(self, limit: int = 160) -> str:
        if self.stream is not None:
            body = read_head(self.stream, limit * 2)
        elif self.kind == "text":
            body = self.text
        elif self.kind == "chat":
            body = " | ".join(f"{r}: {c}" for r, c in self.messages)
        else:
            body = f"{self.prompt} → {self.completion}"
        body = " ".join(body.split())
        return body if len(body) <= limit else body[: limit - 1] + "…"


@dataclass(frozen=True)
class Skipped:
    """A file left out, or the lines (items, rows) of a file left out, with the reason for each."""

    path: str
    reason: str  # one line: "the file is empty", or "3 lines skipped: 51 (not valid JSON), …"
    lines: tuple[tuple[str, str], ...] = ()  # ("line 51", "not valid JSON"), … (the first MAX_KEPT_LINES)
    count: int = 0  # lines (items, rows) skipped in all; 0 for a whole file
    unit: str = ""  # "lines", "items" or "rows"

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    @property
    def headline(self) -> str:
        """The reason without the list of lines: "3 lines skipped" (the reason itself for a whole file)."""
        return f"{self.count:,} {_unit(self.unit, self.count)} skipped" if self.count else self.reason

    def to_dict(self) -> dict:
        d = {"path": self.path, "reason": self.reason}
        if self.count:
            d.update(skipped=self.count, unit=self.unit,
                     lines=[{"where": where, "reason": why} for where, why in self.lines])
        return d

    @classmethod
    def from_dict(cls, d: dict | list) -> "Skipped":
        """From ``to_dict`` (or an older run's [path, reason] pair in its events)."""
        if isinstance(d, (list, tuple)):
            return cls(*d)
        lines = tuple((x["where"], x["reason"]) for x in d.get("lines", ()))
        return cls(d["path"], d["reason"], lines, int(d.get("skipped", 0)), d.get("unit", ""))


def _unit(unit: str, count: int) -> str:
    return unit[:-1] if count == 1 and unit.endswith("s") else unit


def skipped_summary(skipped: list[Skipped]) -> str:
    """"4 files and 3 lines of 1 file skipped", "nothing skipped"."""
    files = sum(1 for s in skipped if not s.count)
    partial = [s for s in skipped if s.count]
    parts = [f"{files} file{'s' if files != 1 else ''}"] if files else []
    if partial:
        units = {s.unit for s in partial}
        unit = units.pop() if len(units) == 1 else "lines"
        n = sum(s.count for s in partial)
        parts.append(f"{n:,} {_unit(unit, n)} of {len(partial)} file{'s' if len(partial) != 1 else ''}")
    return " and ".join(parts) + " skipped" if parts else "nothing skipped"


@dataclass
class Collected:
    records: list[Record] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    files: int = 0


def expand_paths(paths: Iterable[str]) -> tuple[list[Path], list[Skipped]]:
    """Files named, plus every file under folders named (sorted, hidden ones left out).

    Links are followed to files; a link that loops or points nowhere is skipped with that reason
    (``Path.is_file`` would just say False and the file would vanish from the list unexplained).
    """
    files: list[Path] = []
    skipped: list[Skipped] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_symlink() and (reason := _bad_link(path)):
            skipped.append(Skipped(str(path), reason))
        elif not path.exists():
            skipped.append(Skipped(str(path), "no such file or folder"))
        elif path.is_dir():
            found = []
            for p in sorted(path.rglob("*")):
                if _hidden(p.relative_to(path)):
                    continue
                if p.is_symlink() and (reason := _bad_link(p)):
                    skipped.append(Skipped(str(p), reason))
                elif p.is_file():
                    found.append(p)
            if not found and not skipped:
                skipped.append(Skipped(str(path), "the folder has no files"))
            files.extend(found)
        else:
            files.append(path)
    return list(dict.fromkeys(files)), skipped


def _bad_link(path: Path) -> str:
    """Why a symbolic link cannot be read ("" if it leads to something)."""
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return "a symbolic link that loops back on itself"
    except OSError as exc:
        import errno

        if exc.errno == errno.ELOOP:
            return "a symbolic link that loops back on itself"
        return "a broken symbolic link (its target does not exist)"
    return ""


def _hidden(relative: Path) -> bool:
    from engine.documents import SKIPPED_FOLDERS

    return any(part.startswith(".") or part in SKIPPED_FOLDERS for part in relative.parts)


def collect(paths: Iterable[str], *, max_bytes: int, cancel: CancelToken | None = None,
            on_progress: Callable[[float, str], None] | None = None) -> Collected:
    """Read every file into records; progress is by bytes, so one big file moves the bar too."""
    files, skipped = expand_paths(paths)
    out = Collected(skipped=skipped, files=len(files))
    sizes = [_size(p) for p in files]
    total, done = max(1, sum(sizes)), 0
    for path, size in zip(files, sizes):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if on_progress is not None:
            on_progress(done / total, f"Reading {path.name} ({len(out.records):,} examples so far)")
        done += size
        if size == 0:
            out.skipped.append(Skipped(str(path), "the file is empty"))
            continue
        if reason := _foreign_format(path):
            out.skipped.append(Skipped(str(path), reason))
            continue
        suffix = path.suffix.lower()
        if suffix in JSON_SUFFIXES:
            reader = read_json_records
        elif suffix in CSV_SUFFIXES:
            reader = read_csv_records
        else:
            reader = read_text_records
        before = len(out.records)
        reader(path, out, max_bytes)
        if len(out.records) == before and not any(s.path.startswith(str(path)) for s in out.skipped):
            out.skipped.append(Skipped(str(path), "no usable text in this file"))
    return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


MAGIC = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
         (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip archive"), (b"\x7fELF", "a program (ELF)"),
         (b"MZ", "a Windows program"), (b"RIFF", "a RIFF media file"), (b"%PDF", "a PDF"),
         (b"SQLite format 3\x00", "an SQLite database"), (b"GGUF", "a GGUF model file"))


def _foreign_format(path: Path) -> str:
    """The reason to skip a file whose first bytes name another format than its name says ("" if none)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    suffix = path.suffix.lower()
    for magic, what in MAGIC:
        if head.startswith(magic):
            if (what == "a PDF" and suffix == ".pdf") or (what == "a ZIP archive" and suffix == ".docx"):
                return ""
            if what == "a Windows program" and suffix not in (".exe", ".dll"):
                continue  # "MZ" also begins ordinary text
            named = f" named {suffix}" if suffix else ""
            return f"this is {what}{named}, not text"
    return ""


def read_text_records(path: Path, out: Collected, max_bytes: int) -> None:
    from engine.documents import decode_bytes, kind_of, read_document
    from engine.errors import DocumentError

    size = _size(path)
    if size > STREAM_ABOVE and kind_of(path)[0] in ("text", "markdown", "rst", "code"):
        # Big plain text: checked on its first bytes, then streamed in pieces (no cut, bounded memory).
        try:
            with path.open("rb") as fh:
                head = fh.read(SNIFF_BYTES)
            _text, encoding, notice = decode_bytes(head, path, truncated=True)
        except (OSError, DocumentError) as exc:
            out.skipped.append(Skipped(str(path), getattr(exc, "reason", None) or f"cannot read it ({exc})"))
            return
        if encoding in STREAMABLE:
            if notice:
                out.notices.append(f"{path.name}: {notice}")
            stream = describe(path, size, encoding)
            out.records.append(Record("text", str(path), str(path), stream=stream, pieces=(0, stream.pieces)))
            return
    if kind_of(path)[0] not in ("pdf", "docx"):
        max_bytes = max(max_bytes, size)  # text is never cut; only PDF and DOCX have a size limit
    try:
        doc = read_document(path, max_bytes=max_bytes)
    except DocumentError as exc:
        out.skipped.append(Skipped(str(path), exc.reason))
        return
    if doc.notice:
        out.notices.append(f"{path.name}: {doc.notice}")
    if doc.text.strip():
        out.records.append(Record("text", str(path), str(path), text=doc.text))


def _open_text(path: Path, out: Collected):
    """The file as a text stream in its own encoding (judged on its first bytes), or None if skipped."""
    from engine.documents import decode_bytes
    from engine.errors import DocumentError

    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
        _text, encoding, notice = decode_bytes(head, path, truncated=len(head) == SNIFF_BYTES)
        if notice:
            out.notices.append(f"{path.name}: {notice}")
        return path.open("r", encoding=encoding, errors="replace", newline="")
    except OSError as exc:
        out.skipped.append(Skipped(str(path), f"cannot read it ({exc.strerror or exc})"))
    except DocumentError as exc:
        out.skipped.append(Skipped(str(path), exc.reason))
    return None


def read_json_records(path: Path, out: Collected, max_bytes: int) -> None:
    """A .json document is parsed whole (refused, with the reason, above ``max_bytes``); JSON Lines are
    read line by line, whatever the size."""
    bad = _Bad()
    if path.suffix.lower() == ".json":
        if _size(path) > max_bytes:
            out.skipped.append(Skipped(str(path), f"the file is {_size(path) / 1e6:.0f} MB, over the "
                                       f"{max_bytes / 1e6:.0f} MB limit for one JSON document; save it as "
                                       "JSON Lines (.jsonl), which is read line by line at any size"))
            return
        fh = _open_text(path, out)
        if fh is None:
            return
        with fh:
            text = fh.read()
        if text.lstrip()[:1] in ("[", "{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                data = None  # maybe JSON Lines saved as .json
            if data is not None:
                items = _json_items(data)
                if items is None:
                    out.skipped.append(Skipped(str(path), "expected a list of examples (objects) in this JSON file"))
                    return
                for n, item in enumerate(items, 1):
                    _add_object(item, path, f"{path}#{n}", out, bad, f"item {n}")
                _report_bad(path, bad, out, "items")
                return
        lines = io.StringIO(text)
    else:
        lines = _open_text(path, out)
        if lines is None:
            return
    with lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                bad.append((f"line {n}", "not valid JSON"))
                continue
            _add_object(obj, path, f"{path}:{n}", out, bad, f"line {n}")
    _report_bad(path, bad, out, "lines")


def _json_items(data) -> list | None:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        if any(k in data for k in ("messages", "text")) or any(a in data for a, _ in PAIR_KEYS):
            return [data]
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    return None


def _add_object(obj, path: Path, where: str, out: Collected, bad: "_Bad", label: str) -> None:
    record, reason = record_from_object(obj, str(path), where)
    if record is None:
        bad.append((label, reason))
    else:
        out.records.append(record)


def record_from_object(obj, file: str, where: str) -> tuple[Record | None, str]:
    """One JSON object → a Record, or None and the reason."""
    if not isinstance(obj, dict):
        return None, "not an object"
    if "messages" in obj:
        return _chat_record(obj["messages"], file, where)
    for a, b in PAIR_KEYS:
        if a in obj and b in obj:
            prompt, completion = obj[a], obj[b]
            if a == "instruction" and obj.get("input"):
                prompt = f"{prompt}\n\n{obj['input']}"
            if not isinstance(prompt, str) or not isinstance(completion, str):
                return None, f"{a!r} and {b!r} must be strings"
            if not completion.strip():
                return None, f"empty {b!r}"
            return Record("pair", file, where, prompt=prompt, completion=completion), ""
    if "text" in obj:
        if not isinstance(obj["text"], str) or not obj["text"].strip():
            return None, "empty 'text'"
        return Record("text", file, where, text=obj["text"]), ""
    return None, "no messages, prompt/completion, input/output or text field"


def _chat_record(messages, file: str, where: str) -> tuple[Record | None, str]:
    if not isinstance(messages, list) or not messages:
        return None, "'messages' must be a non-empty list"
    turns = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            return None, "every message needs a 'role' and a text 'content'"
        role = m.get("role")
        if role not in ("system", "user", "assistant"):
            return None, f"unknown role {role!r}"
        turns.append((role, m["content"]))
    if not any(r == "assistant" and c.strip() for r, c in turns):
        return None, "no assistant message to learn from"
    return Record("chat", file, where, messages=tuple(turns)), ""


class _Bad(list):
    """The lines (items, rows) of one file left out: (where, why) of the first MAX_KEPT_LINES, all counted
    (a file of a million broken lines keeps a thousand)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def append(self, item: tuple[str, str]) -> None:
        self.count += 1
        if len(self) < MAX_KEPT_LINES:
            super().append(item)


def _report_bad(path: Path, bad: _Bad, out: Collected, unit: str) -> None:
    """One Skipped for the file, naming each line (item, row) left out and why."""
    if not bad.count:
        return
    # "line 51" -> "51 (not valid JSON)": the unit is said once, in front
    listed = ", ".join(f"{where.removeprefix('line ')} ({why})" for where, why in bad[:MAX_LISTED_LINES])
    more = f", and {bad.count - MAX_LISTED_LINES:,} more" if bad.count > MAX_LISTED_LINES else ""
    out.skipped.append(Skipped(str(path), f"{bad.count:,} {_unit(unit, bad.count)} skipped: {listed}{more}",
                               lines=tuple(bad), count=bad.count, unit=unit))


def read_csv_records(path: Path, out: Collected, max_bytes: int) -> None:
    """Rows read one at a time (a table of any size); the first 4 KB decide the delimiter and header."""
    fh = _open_text(path, out)
    if fh is None:
        return
    with fh:
        head = fh.read(4096)
        fh.seek(0)
        delimiter = "\t" if path.suffix.lower() == ".tsv" else _sniff_delimiter(head)
        rows = (r for r in csv.reader(fh, delimiter=delimiter) if any(c.strip() for c in r))
        first = next(rows, None)
        if first is None:
            out.skipped.append(Skipped(str(path), "the table is empty"))
            return
        columns, start = _csv_columns(first, head)
        if columns is None:
            out.skipped.append(Skipped(str(path), f"expected two columns (input, output), found {len(first)}"))
            return
        bad = _Bad()
        numbered = enumerate(rows, 2) if start == 1 else enumerate(_chain(first, rows), 1)
        for n, row in numbered:
            values = {name: row[i].strip() if i < len(row) else "" for name, i in columns.items()}
            if "text" in values:
                obj = {"text": values["text"]}
            else:
                obj = {"input": values["input"], "output": values["output"]}
            _add_object(obj, path, f"{path}:{n}", out, bad, f"row {n}")
    _report_bad(path, bad, out, "rows")


def _chain(first, rest):
    yield first
    yield from rest


def _sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _csv_columns(header: list[str], text: str) -> tuple[dict[str, int] | None, int]:
    """Column indices of input/output (or text), and the first data row."""
    names = [h.strip().lower() for h in header]
    for a, b in PAIR_KEYS:
        if a in names and b in names:
            return {"input": names.index(a), "output": names.index(b)}, 1
    if "text" in names:
        return {"text": names.index("text")}, 1
    if len(header) != 2:
        return None, 0
    try:
        has_header = csv.Sniffer().has_header(text[:4096])
    except csv.Error:
        has_header = False
    return {"input": 0, "output": 1}, 1 if has_header else 0


def iter_files(paths: Iterable[str]) -> Iterator[Path]:
    yield from expand_paths(paths)[0]
