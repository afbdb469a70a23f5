"""Files and folders → examples (``Record``), with every skipped file or line and why.

Text-like files (plain text, Markdown, reST, code, PDF, DOCX) are read by
``engine.documents``; JSON, JSONL and CSV are read here because their rows are
examples, not prose:

* ``{"messages": [{"role", "content"}, ...]}`` → a chat example
* ``{"prompt", "completion"}`` / ``{"input", "output"}`` / ``{"instruction", "output"}`` → an input→output pair
* ``{"text"}`` → plain text
* CSV with two columns → input, output (a header row naming them is recognised)
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from engine.cancel import CancelToken

JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}
CSV_SUFFIXES = {".csv", ".tsv"}
PAIR_KEYS = (("prompt", "completion"), ("input", "output"), ("instruction", "output"),
             ("question", "answer"), ("source", "target"))
MAX_LISTED_LINES = 12


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

    def key(self) -> tuple:
        """Identity for exact-duplicate removal."""
        return (self.kind, self.text, self.messages, self.prompt, self.completion)

    def size(self) -> int:
        return len(self.text) + sum(len(c) for _, c in self.messages) + len(self.prompt) + len(self.completion)

    def preview(self, limit: int = 160) -> str:
        if self.kind == "text":
            body = self.text
        elif self.kind == "chat":
            body = " | ".join(f"{r}: {c}" for r, c in self.messages)
        else:
            body = f"{self.prompt} → {self.completion}"
        body = " ".join(body.split())
        return body if len(body) <= limit else body[: limit - 1] + "…"


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Collected:
    records: list[Record] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    files: int = 0


def expand_paths(paths: Iterable[str]) -> tuple[list[Path], list[Skipped]]:
    """Files named, plus every file under folders named (sorted, hidden ones left out)."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            skipped.append(Skipped(str(path), "no such file or folder"))
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path)))
            if not found:
                skipped.append(Skipped(str(path), "the folder has no files"))
            files.extend(found)
        else:
            files.append(path)
    return list(dict.fromkeys(files)), skipped


def _hidden(relative: Path) -> bool:
    from engine.documents import SKIPPED_FOLDERS

    return any(part.startswith(".") or part in SKIPPED_FOLDERS for part in relative.parts)


def collect(paths: Iterable[str], *, max_bytes: int, cancel: CancelToken | None = None,
            on_progress: Callable[[float, str], None] | None = None) -> Collected:
    files, skipped = expand_paths(paths)
    out = Collected(skipped=skipped, files=len(files))
    for i, path in enumerate(files):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if on_progress is not None:
            on_progress(i / max(1, len(files)), f"Reading {path.name}")
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


def read_text_records(path: Path, out: Collected, max_bytes: int) -> None:
    from engine.documents import read_document
    from engine.errors import DocumentError

    try:
        doc = read_document(path, max_bytes=max_bytes)
    except DocumentError as exc:
        out.skipped.append(Skipped(str(path), exc.reason))
        return
    if doc.notice:
        out.notices.append(f"{path.name}: {doc.notice}")
    if doc.text.strip():
        out.records.append(Record("text", str(path), str(path), text=doc.text))


def _read_capped(path: Path, out: Collected, max_bytes: int) -> str | None:
    """The file's text (its first ``max_bytes``, cut at a line end), or None if skipped."""
    from engine.documents import decode_bytes
    from engine.errors import DocumentError

    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        out.skipped.append(Skipped(str(path), f"cannot read it ({exc.strerror or exc})"))
        return None
    truncated = len(raw) > max_bytes
    if truncated:
        raw = raw[:max_bytes]
        if b"\n" in raw:  # never end on half a line
            raw = raw[: raw.rindex(b"\n") + 1]
        out.notices.append(f"{path.name}: only the first {max_bytes / 1e6:.0f} MB were used.")
    try:
        text, _encoding, notice = decode_bytes(raw, path, truncated=truncated)
    except DocumentError as exc:
        out.skipped.append(Skipped(str(path), exc.reason))
        return None
    if notice:
        out.notices.append(f"{path.name}: {notice}")
    return text


def read_json_records(path: Path, out: Collected, max_bytes: int) -> None:
    text = _read_capped(path, out, max_bytes)
    if text is None:
        return
    bad: list[str] = []
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" and stripped[:1] in "[{":
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
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad.append(f"{n} (not valid JSON)")
            continue
        _add_object(obj, path, f"{path}:{n}", out, bad, str(n))
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


def _add_object(obj, path: Path, where: str, out: Collected, bad: list[str], label: str) -> None:
    record, reason = record_from_object(obj, str(path), where)
    if record is None:
        bad.append(f"{label} ({reason})")
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


def _report_bad(path: Path, bad: list[str], out: Collected, unit: str) -> None:
    if not bad:
        return
    listed = ", ".join(bad[:MAX_LISTED_LINES])
    more = f", and {len(bad) - MAX_LISTED_LINES} more" if len(bad) > MAX_LISTED_LINES else ""
    out.skipped.append(Skipped(str(path), f"{len(bad)} {unit} skipped: {listed}{more}"))


def read_csv_records(path: Path, out: Collected, max_bytes: int) -> None:
    text = _read_capped(path, out, max_bytes)
    if text is None:
        return
    delimiter = "\t" if path.suffix.lower() == ".tsv" else _sniff_delimiter(text)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        out.skipped.append(Skipped(str(path), "the table is empty"))
        return
    columns, start = _csv_columns(rows[0], text)
    if columns is None:
        out.skipped.append(Skipped(str(path), f"expected two columns (input, output), found {len(rows[0])}"))
        return
    bad: list[str] = []
    for n, row in enumerate(rows[start:], start + 1):
        values = {name: row[i].strip() if i < len(row) else "" for name, i in columns.items()}
        if "text" in values:
            obj = {"text": values["text"]}
        else:
            obj = {"input": values["input"], "output": values["output"]}
        _add_object(obj, path, f"{path}:{n}", out, bad, f"row {n}")
    _report_bad(path, bad, out, "rows")


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
