"""Read the files people drop on Hearth as plain text: one reader per format.

The stable API (summarize, fine-tuning and the Transformer lab use it)::

    doc = read_document("report.pdf")          # -> Document, or raises DocumentError
    for item in iter_documents(["notes/", "a.md"]):
        if isinstance(item, Skipped): print(item.path, item.reason)
        else: use(item.text)

Size limit (chosen on purpose): a text-like file (.txt, .md, code, .html...)
bigger than ``max_bytes`` is *capped*: its first ``max_bytes`` are read, cut at
a line end, and the Document says ``truncated=True`` with a notice naming the
limit. A PDF or .docx bigger than ``max_bytes`` is *refused* with a
DocumentError naming the limit, because a container cannot be read in part.

Encodings: UTF-8 (with or without BOM), UTF-16/32 with a BOM, UTF-16 without a
BOM (told by its zero bytes), an HTML ``<meta charset>``; otherwise cp1252 and
then latin-1, with a notice saying which encoding was assumed.
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from engine.errors import DocumentError

DEFAULT_MAX_BYTES = 16 * 1024 * 1024  # ~2.5 million words of English: far more than a CPU can summarize

MARKDOWN_EXTENSIONS = {".md", ".markdown", ".mdown", ".mkd"}
HTML_EXTENSIONS = {".html", ".htm", ".xhtml"}
TEXT_EXTENSIONS = {".txt", ".text", ".log", ".csv", ".tsv", ".rst", ".org", ".adoc", ".tex", ".srt", ".vtt", ""}
# Source code: extension -> language name (as Pygments and the code view know it).
CODE_EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".pyw": "python", ".ipynb": "json", ".js": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".jsx": "jsx", ".ts": "typescript", ".tsx": "tsx", ".java": "java", ".kt": "kotlin",
    ".kts": "kotlin", ".scala": "scala", ".groovy": "groovy", ".c": "c", ".h": "c", ".cpp": "cpp", ".cc": "cpp",
    ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp", ".cs": "csharp", ".go": "go", ".rs": "rust",
    ".rb": "ruby", ".php": "php", ".swift": "swift", ".m": "objective-c", ".mm": "objective-c", ".dart": "dart",
    ".lua": "lua", ".pl": "perl", ".pm": "perl", ".r": "r", ".jl": "julia", ".hs": "haskell", ".ml": "ocaml",
    ".fs": "fsharp", ".ex": "elixir", ".exs": "elixir", ".erl": "erlang", ".clj": "clojure", ".lisp": "common-lisp",
    ".el": "emacs-lisp", ".scm": "scheme", ".sh": "bash", ".bash": "bash", ".zsh": "zsh", ".fish": "fish",
    ".ps1": "powershell", ".bat": "batch", ".cmd": "batch", ".sql": "sql", ".json": "json", ".jsonl": "json",
    ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".ini": "ini", ".cfg": "ini", ".conf": "ini",
    ".xml": "xml", ".svg": "xml", ".css": "css", ".scss": "scss", ".sass": "sass", ".less": "less",
    ".vue": "vue", ".svelte": "svelte", ".cmake": "cmake", ".mk": "make", ".proto": "protobuf",
    ".graphql": "graphql", ".zig": "zig", ".nim": "nim", ".v": "verilog", ".vhd": "vhdl", ".asm": "nasm",
    ".s": "gas", ".f90": "fortran", ".pas": "pascal", ".tf": "terraform", ".dockerfile": "docker",
}
CODE_FILENAMES = {"makefile": "make", "dockerfile": "docker", "cmakelists.txt": "cmake", "gemfile": "ruby",
                  "rakefile": "ruby", "jenkinsfile": "groovy", "vagrantfile": "ruby"}
# Known binary formats: refused at once with a useful name instead of sniffing bytes.
BINARY_EXTENSIONS = {
    ".png": "an image", ".jpg": "an image", ".jpeg": "an image", ".gif": "an image", ".bmp": "an image",
    ".webp": "an image", ".tif": "an image", ".tiff": "an image", ".ico": "an image", ".heic": "an image",
    ".zip": "an archive", ".gz": "an archive", ".tgz": "an archive", ".bz2": "an archive", ".xz": "an archive",
    ".7z": "an archive", ".rar": "an archive", ".tar": "an archive", ".zst": "an archive",
    ".exe": "a program", ".dll": "a program", ".so": "a program", ".dylib": "a program", ".bin": "a binary file",
    ".pyc": "compiled Python", ".o": "an object file", ".class": "compiled Java", ".jar": "an archive",
    ".mp3": "audio", ".wav": "audio", ".flac": "audio", ".ogg": "audio", ".m4a": "audio",
    ".mp4": "a video", ".mkv": "a video", ".mov": "a video", ".avi": "a video", ".webm": "a video",
    ".safetensors": "model weights", ".gguf": "model weights", ".pt": "model weights", ".pth": "model weights",
    ".ckpt": "model weights", ".onnx": "model weights", ".npy": "a NumPy array", ".npz": "NumPy arrays",
    ".sqlite": "a database", ".db": "a database", ".xlsx": "a spreadsheet", ".xls": "a spreadsheet",
    ".pptx": "a presentation", ".ppt": "a presentation", ".odt": "an OpenDocument file",
    ".epub": "an e-book", ".woff": "a font", ".woff2": "a font", ".ttf": "a font", ".otf": "a font",
}
SKIPPED_FOLDERS = {"__pycache__", "node_modules", ".git", ".venv", "venv", ".tox", ".mypy_cache", "build", "dist"}


@dataclass(frozen=True)
class Document:
    path: str
    text: str
    kind: str  # "text", "markdown", "rst", "html", "code", "pdf" or "docx"
    encoding: str  # the encoding the bytes were decoded with ("" for pdf/docx)
    truncated: bool = False  # only the first max_bytes of a large text file were read
    notice: str = ""  # a sentence for the user when something was assumed or cut
    language: str = ""  # for kind == "code": the language name (e.g. "python")

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def kind_of(path: str | os.PathLike) -> tuple[str, str]:
    """(kind, language) judged from the file name alone."""
    p = Path(path)
    ext, name = p.suffix.lower(), p.name.lower()
    if ext == ".pdf":
        return "pdf", ""
    if ext == ".docx":
        return "docx", ""
    if ext in MARKDOWN_EXTENSIONS:
        return "markdown", "markdown"
    if ext == ".rst":
        return "rst", "rst"
    if ext in HTML_EXTENSIONS:
        return "html", "html"
    if name in CODE_FILENAMES:
        return "code", CODE_FILENAMES[name]
    if ext in CODE_EXTENSIONS:
        return "code", CODE_EXTENSIONS[ext]
    return "text", ""


def read_document(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """Read one file as text, or raise DocumentError saying why it cannot be."""
    p = Path(path).expanduser()
    size = _check_file(p)
    ext = p.suffix.lower()
    if ext in BINARY_EXTENSIONS:
        raise DocumentError(p, f"this is {BINARY_EXTENSIONS[ext]}, not a text document.")
    if ext == ".doc":
        raise DocumentError(p, "old Word (.doc) files cannot be read; save it as .docx or PDF first.")
    kind, language = kind_of(p)
    if kind in ("pdf", "docx"):
        if size > max_bytes:
            raise DocumentError(p, f"the file is {_mb(size)}, over the {_mb(max_bytes)} limit for {kind.upper()} "
                                   f"files. Split it into smaller files.")
        reader = _read_pdf if kind == "pdf" else _read_docx
        text, notice = reader(p)
        return Document(str(p), text, kind, "", False, notice)
    return _read_text_file(p, size, kind, language, max_bytes)


def iter_documents(paths: Iterable[str | os.PathLike], *, recursive: bool = True,
                   max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Document | Skipped]:
    """Read files and folders in order; what cannot be read comes back as Skipped with the reason."""
    for path in paths:
        p = Path(path).expanduser()
        if p.is_dir():
            yield from _walk(p, recursive, max_bytes, top=True)
        else:
            yield _read_or_skip(p, max_bytes)


def _walk(folder: Path, recursive: bool, max_bytes: int, top: bool = False) -> Iterator[Document | Skipped]:
    try:
        entries = sorted(folder.iterdir(), key=lambda e: (e.is_dir(), e.name.lower()))
    except OSError as exc:
        yield Skipped(str(folder), f"the folder cannot be read ({exc.strerror or exc}).")
        return
    for entry in entries:
        if entry.name.startswith("."):
            yield Skipped(str(entry), "hidden")
        elif entry.is_dir():
            if entry.name in SKIPPED_FOLDERS:
                yield Skipped(str(entry), "a build, cache or dependency folder")
            elif recursive:
                yield from _walk(entry, recursive, max_bytes)
            else:
                yield Skipped(str(entry), "a folder (subfolders are not searched)")
        else:
            yield _read_or_skip(entry, max_bytes)


def _read_or_skip(p: Path, max_bytes: int) -> Document | Skipped:
    try:
        return read_document(p, max_bytes=max_bytes)
    except DocumentError as exc:
        return Skipped(str(p), exc.reason)


def _check_file(p: Path) -> int:
    if p.is_dir():
        raise DocumentError(p, "this is a folder; choose a file (or give the folder where folders are accepted).")
    if not p.exists():
        raise DocumentError(p, "no such file.")
    if not p.is_file():
        raise DocumentError(p, "not a regular file.")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise DocumentError(p, f"cannot be read ({exc.strerror or exc}).") from exc
    if size == 0:
        raise DocumentError(p, "the file is empty.")
    return size


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


# --- plain text, Markdown, code, HTML --------------------------------------------------------------------

def _read_text_file(p: Path, size: int, kind: str, language: str, max_bytes: int) -> Document:
    truncated = size > max_bytes
    try:
        with open(p, "rb") as f:
            data = f.read(max_bytes if truncated else size)
    except OSError as exc:
        raise DocumentError(p, f"cannot be read ({exc.strerror or exc}).") from exc
    hint = _html_charset(data) if kind == "html" else None
    text, encoding, notice = decode_bytes(data, p, truncated=truncated, hint=hint)
    if truncated:
        text = _cut_at_line(text)
        notice = _join(notice, f"The file is {_mb(size)}; only its first {_mb(max_bytes)} were read "
                               f"(the limit for one file).")
    if kind == "html":
        text = html_to_text(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DocumentError(p, "the file contains no text." if kind != "html" else "the page contains no text.")
    return Document(str(p), text, kind, encoding, truncated, notice, language)


def decode_bytes(data: bytes, path: str | os.PathLike = "<text>", *, truncated: bool = False,
                 hint: str | None = None) -> tuple[str, str, str]:
    """Decode file bytes -> (text, encoding, notice). Raises DocumentError for binary data."""
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                          (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return _strict(data, encoding, path, truncated), encoding, ""
    bomless = _utf16_without_bom(data)
    if bomless:
        return _strict(data, bomless, path, truncated), bomless, ""
    if b"\x00" in data[:8192]:
        raise DocumentError(path, "this looks like a binary file, not text.")
    if hint:
        try:
            return _strict(data, hint, path, truncated), codecs.lookup(hint).name, ""
        except (LookupError, DocumentError):
            pass
    try:
        return _strict(data, "utf-8", path, truncated), "utf-8", ""
    except DocumentError:
        pass
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _control_ratio(text) > 0.05:
            break
        return text, encoding, (f"The file is not UTF-8; it was read as {encoding} "
                                f"({'Windows Western European' if encoding == 'cp1252' else 'ISO Latin-1'}).")
    raise DocumentError(path, "the text is in an encoding that could not be recognised (not UTF-8, UTF-16 or "
                              "Windows-1252); save it as UTF-8 and try again.")


def _strict(data: bytes, encoding: str, path, truncated: bool) -> str:
    # A capped file may end inside a multi-byte character: drop up to 3 trailing bytes.
    for trim in range(4 if truncated else 1):
        try:
            return data[:len(data) - trim].decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DocumentError(path, f"the file is not valid {encoding}.")


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text without a BOM has a zero in every other byte (for Latin-script text)."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _control_ratio(text: str) -> float:
    sample = text[:20000]
    bad = sum(1 for c in sample if (ord(c) < 32 and c not in "\n\r\t\f\v") or 0x7F <= ord(c) < 0xA0)
    return bad / max(1, len(sample))


def _html_charset(data: bytes) -> str | None:
    match = re.search(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", data[:4096], re.IGNORECASE)
    return match.group(1).decode("ascii") if match else None


def _cut_at_line(text: str) -> str:
    cut = text.rfind("\n")
    return text[:cut + 1] if cut > len(text) // 2 else text


def _join(*notices: str) -> str:
    return " ".join(n for n in notices if n)


def html_to_text(html: str) -> str:
    """The readable text of an HTML page: no tags, scripts or styles; paragraphs kept apart."""
    from engine.html_text import HtmlText

    parser = HtmlText()
    parser.feed(html)
    parser.close()
    return parser.text()


# --- PDF and Word -----------------------------------------------------------------------------------------

def _read_pdf(p: Path) -> tuple[str, str]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged files log dozens of warnings
    try:
        reader = PdfReader(str(p))
        if reader.is_encrypted and not _decrypt_blank(reader):
            raise DocumentError(p, "the PDF is encrypted with a password; open it, save an unprotected copy "
                                   "and try again.")
        pages = [_page_text(page) for page in reader.pages]
    except DocumentError:
        raise
    except FileNotDecryptedError as exc:
        raise DocumentError(p, "the PDF is encrypted with a password; save an unprotected copy first.") from exc
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise DocumentError(p, f"the PDF is damaged or not a PDF ({exc}).") from exc
    if not any(t.strip() for t in pages):
        raise DocumentError(p, f"the PDF has no extractable text ({len(pages)} page(s)); it is probably scanned "
                               f"images. Run it through OCR first.")
    empty = sum(1 for t in pages if not t.strip())
    notice = f"{empty} of {len(pages)} pages had no text (scanned images?) and were left out." if empty else ""
    return "\n\n".join(t.strip() for t in pages if t.strip()), notice


def _decrypt_blank(reader) -> bool:
    """Many PDFs are 'encrypted' with an empty user password (copy protection only)."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # pypdf raises several types for unsupported ciphers
        return False


def _page_text(page) -> str:
    try:
        return page.extract_text() or ""
    except Exception:  # one broken page should not lose the rest of the document
        return ""


def _read_docx(p: Path) -> tuple[str, str]:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(p))
        blocks = [_docx_block(block) for block in document.iter_inner_content()]
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentError(p, "the Word file is damaged or not a .docx file.") from exc
    text = "\n\n".join(b for b in blocks if b.strip())
    if not text.strip():
        raise DocumentError(p, "the Word document contains no text.")
    return text, ""


def _docx_block(block) -> str:
    """A paragraph as one Markdown line (headings and list items marked), a table as pipe rows."""
    if hasattr(block, "rows"):
        rows = []
        for row in block.rows:
            rows.append(" | ".join(cell.text.strip().replace("\n", " ") for cell in row.cells))
        return "\n".join(rows)
    text = block.text.strip()
    style = (block.style.name if block.style is not None else "") or ""
    if style.startswith("Heading") and style[-1:].isdigit() and text:
        return "#" * int(style[-1]) + " " + text
    if style == "Title" and text:
        return "# " + text
    if style.startswith("List") and text:
        return "- " + text
    return text
