"""``hearth-cli summarize``, ``hearth-cli complete`` and ``hearth-cli translate``.

Each streams its answer to stdout and its progress to stderr, so
``hearth-cli summarize report.pdf > summary.md`` keeps only the summary.
"""

from __future__ import annotations

import argparse
import sys

from engine.cli._common import add_model_options, stream_to_stdout
from engine.cli._scheduled import ModelRunner
from engine.cli.progress import ProgressLine


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("summarize", help="summarize documents of any length (.txt .md .html .pdf .docx, code)")
    s.add_argument("files", nargs="+", metavar="FILE", help="files or folders ('-' reads standard input)")
    s.add_argument("--length", choices=("short", "medium", "long"), default="medium")
    s.add_argument("--bullets", action="store_true", help="bullet points instead of prose")
    s.add_argument("--focus", default="", help="what the summary should pay most attention to")
    s.add_argument("--together", action="store_true", help="one summary of all files instead of one each")
    s.add_argument("--chunk-tokens", type=int, default=0,
                   help="the largest piece summarized in one call (default: by model size)")
    s.add_argument("--max-new-tokens", type=int, default=0, help="the summary's longest length (default: by --length)")
    add_model_options(s)
    s.set_defaults(handler=run_summarize)

    c = sub.add_parser("complete", help="complete code at a position in a file (prints the inserted text)")
    c.add_argument("file", help="the source file")
    c.add_argument("--line", type=int, required=True, help="line number (1 = first)")
    c.add_argument("--column", type=int, default=None, help="column (1 = first; default: end of the line)")
    c.add_argument("--max-lines", type=int, default=12)
    c.add_argument("--no-fim", action="store_true", help="use only the code before the cursor")
    add_model_options(c)
    c.set_defaults(handler=run_complete)

    t = sub.add_parser("translate", help="translate text (or a file) into another language")
    t.add_argument("text", nargs="?", default=None, help="the text ('-' reads standard input)")
    t.add_argument("--to", required=True, dest="target", metavar="LANG", help="target language: French, fr, ...")
    t.add_argument("--from", default="", dest="source", metavar="LANG", help="source language (default: detect)")
    t.add_argument("--file", default=None, help="translate this document instead of TEXT")
    add_model_options(t)
    t.set_defaults(handler=run_translate)


_progress = ProgressLine(width=3)
_end_progress = _progress.end


def _stream(chunk: str) -> None:
    """Answer text to stdout; the progress line on a shared terminal is cleared first."""
    _end_progress()
    stream_to_stdout(chunk)


def _inputs(files: list[str], together: bool) -> list[tuple[str, str]]:
    """(title, text) pairs to summarize."""
    from engine.texttools.tasks import load_documents

    if files == ["-"]:
        return [("standard input", sys.stdin.read())]
    if together:
        loaded = load_documents(files)
        if loaded.report():
            print(loaded.report(), file=sys.stderr)
        return [("all files", loaded.text)]
    out = []
    for path in files:
        loaded = load_documents([path])
        if loaded.report():
            print(loaded.report(), file=sys.stderr)
        out.append((path, loaded.text))
    return out


def run_summarize(args: argparse.Namespace) -> int:
    from engine.texttools.summarize import SummaryConfig, summarize

    config = SummaryConfig(length=args.length, form="bullets" if args.bullets else "prose", focus=args.focus,
                           max_chunk_tokens=args.chunk_tokens, max_new_tokens=args.max_new_tokens)
    inputs = _inputs(args.files, args.together)  # read everything first: a bad file fails before the model loads
    model = ModelRunner(args)  # a local model runs on the scheduler's thread; Ctrl+C stops the current summary
    for i, (title, text) in enumerate(inputs):
        if len(inputs) > 1:
            print(f"{'' if i == 0 else chr(10)}## {title}\n", flush=True)
        # On a terminal the summary streams; into a file or pipe goes the finished Markdown (its form enforced).
        live = sys.stdout.isatty()
        result = model.run(lambda lm, on_text, on_progress, cancel, text=text: summarize(
            lm, text, config, on_text=on_text, on_progress=on_progress, cancel=cancel),
            on_chunk=_stream if live else None, on_progress=_progress)
        _end_progress()
        print("" if live else result.text, flush=True)
        detail = f"{result.input_tokens} tokens in {result.parts} part(s), {result.calls} model call(s)"
        print(f"[{title}: {detail}{'; ' + result.notice if result.notice else ''}]", file=sys.stderr)
        if result.finish_reason == "cancelled":
            return 130
    return 0


def split_at(text: str, line: int, column: int | None) -> tuple[str, str]:
    """(prefix, suffix) of ``text`` at 1-based ``line`` and ``column`` (None: end of that line)."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        raise ValueError(f"--line must be between 1 and {len(lines)}")
    current = lines[line - 1]
    col = len(current) if column is None else column - 1
    if not 0 <= col <= len(current):
        raise ValueError(f"--column must be between 1 and {len(current) + 1} on line {line}")
    offset = sum(len(x) + 1 for x in lines[:line - 1]) + col
    return text[:offset], text[offset:]


def run_complete(args: argparse.Namespace) -> int:
    from engine.texttools.code_completion import CompletionRequest, complete_code
    from engine.documents import kind_of, read_document

    doc = read_document(args.file)
    try:
        prefix, suffix = split_at(doc.text, args.line, args.column)
    except ValueError as exc:
        print(f"hearth-cli: {exc}", file=sys.stderr)
        return 2
    request = CompletionRequest(prefix=prefix, suffix=suffix, language=kind_of(args.file)[1] or doc.language,
                                max_lines=args.max_lines, use_fim=not args.no_fim)
    result = ModelRunner(args).run(lambda lm, on_text, on_progress, cancel: complete_code(lm, request, cancel=cancel))
    sys.stdout.write(result.text + "\n")
    print(f"[{result.mode}, stopped: {result.finish_reason}]", file=sys.stderr)
    return 0


def run_translate(args: argparse.Namespace) -> int:
    from engine.texttools.translate import TranslateRequest, translate

    if args.file:
        from engine.documents import read_document

        text = read_document(args.file).text
    elif args.text == "-" or args.text is None:
        if args.text is None and sys.stdin.isatty():
            print("hearth-cli: give the text to translate, '-' for standard input, or --file", file=sys.stderr)
            return 2
        text = sys.stdin.read()
    else:
        text = args.text
    request = TranslateRequest(text=text, target=args.target, source=args.source)
    result = ModelRunner(args).run(lambda lm, on_text, on_progress, cancel: translate(
        lm, request, on_text=on_text, on_progress=on_progress, cancel=cancel), on_chunk=_stream, on_progress=_progress)
    _end_progress()
    print()
    origin = f"{result.source}{' (detected)' if result.detected else ''}" if result.source else "unknown language"
    print(f"[{origin} -> {result.target}{'; ' + result.notice if result.notice else ''}]", file=sys.stderr)
    return 130 if result.finish_reason == "cancelled" else 0
