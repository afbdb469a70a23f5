"""Worker tasks of the text tools (summarize, code, translate, notebook, files).

Each has the task signature ``fn(session, *, on_text, on_progress, cancel, **kwargs)``;
the GUI submits them with ``window.client.submit(fn, **kwargs)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from engine.config import SamplingConfig

if TYPE_CHECKING:
    from engine.session import Session


@dataclass
class LoadedText:
    text: str  # the documents' texts, each under a "# name" heading when there are several
    documents: list[tuple[str, int, str]] = field(default_factory=list)  # (path, words, notice)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def report(self) -> str:
        """One line per problem, for a notice under the text."""
        lines = [f"{path}: {notice}" for path, _, notice in self.documents if notice]
        lines += [f"Skipped {path}: {reason}" for path, reason in self.skipped if reason != "hidden"]
        return "\n".join(lines)


def load_documents(paths: Sequence[str], *, cancel=None, on_progress=None) -> LoadedText:
    """Read files and folders; raises DocumentError when a single file was given and cannot be read."""
    from pathlib import Path

    from engine.documents import Document, iter_documents, read_document

    if len(paths) == 1 and not Path(paths[0]).expanduser().is_dir():
        doc = read_document(paths[0])  # one file: its error is the answer
        return LoadedText(doc.text, [(doc.path, doc.words, doc.notice)])
    loaded = LoadedText("")
    texts = []
    for item in iter_documents(paths):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if isinstance(item, Document):
            loaded.documents.append((item.path, item.words, item.notice))
            texts.append(f"# {item.name}\n\n{item.text.strip()}")
            if on_progress:
                on_progress(0.0, f"Read {item.name}")
        else:
            loaded.skipped.append((item.path, item.reason))
    loaded.text = "\n\n".join(texts)
    if not texts:
        from engine.errors import DocumentError

        reasons = "; ".join(f"{p}: {r}" for p, r in loaded.skipped[:5]) or "nothing found"
        raise DocumentError(", ".join(str(p) for p in paths), f"no readable document ({reasons}).")
    return loaded


def read_document_task(session: Session, *, on_text=None, on_progress=None, cancel=None, path: str):
    """One file as a Document (its text, encoding, notice): the code editor's Open."""
    from engine.documents import read_document

    return read_document(path)


def read_documents_task(session: Session, *, on_text=None, on_progress=None, cancel=None,
                        paths: Sequence[str]) -> LoadedText:
    return load_documents(list(paths), cancel=cancel, on_progress=on_progress)


def summarize_task(session: Session, *, on_text=None, on_progress=None, cancel=None, text: str, config=None,
                  model_path: str | None = None) -> Any:
    from engine.texttools.summarize import summarize

    return summarize(session.model_for(model_path), text, config, on_text=on_text, on_progress=on_progress,
                     cancel=cancel)


def complete_task(session: Session, *, on_text=None, on_progress=None, cancel=None, request) -> Any:
    from engine.texttools.code_completion import complete_code

    return complete_code(session.require_model(), request, on_text=on_text, cancel=cancel)


def translate_task(session: Session, *, on_text=None, on_progress=None, cancel=None, request) -> Any:
    from engine.texttools.translate import translate

    return translate(session.require_model(), request, on_text=on_text, on_progress=on_progress, cancel=cancel)


def notebook_task(session: Session, *, on_text=None, on_progress=None, cancel=None, text: str,
                 sampling: SamplingConfig | None = None) -> Any:
    """Raw continuation of ``text`` (no chat template): the notebook's Generate."""
    from engine.generation import generate

    return generate(session.require_model(), text, sampling, on_text=on_text, cancel=cancel)


def count_tokens_task(session: Session, *, on_text=None, on_progress=None, cancel=None, text: str) -> int:
    lm = session.require_model()
    return len(lm.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0
