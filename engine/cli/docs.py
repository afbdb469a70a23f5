"""``hearth-cli docs …`` (collections of documents: add, list, remove, search, ask) and ``eval-retrieval``.

    hearth-cli docs add Manuals ~/manuals/ notes.md      # creates the collection, indexes new/changed files
    hearth-cli docs list [Manuals]                       # collections, or one collection's files and states
    hearth-cli docs search Manuals "warranty period"     # ranked passages (hybrid; --mode bm25|vector)
    hearth-cli docs ask Manuals "How long is the warranty?"   # a cited answer, then the passages it used
    hearth-cli docs remove Manuals notes.md              # forget files/folders (or the collection: --all)
    hearth-cli eval-retrieval qa.jsonl --collection Manuals   # recall@k and MRR, per mode
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from engine.cli._common import add_model_options, add_sampling_options, cancel_on_interrupt, load_from, sampling_from
from engine.cli.progress import ProgressLine


def register(sub: argparse._SubParsersAction) -> None:
    docs = sub.add_parser("docs", help="document collections: add, list, remove, search, ask (cited answers)")
    verbs = docs.add_subparsers(dest="docs_command", metavar="ACTION")
    docs.set_defaults(handler=lambda _args: docs.print_help() or 2)

    a = verbs.add_parser("add", help="add files/folders to a collection (made if new) and index what changed")
    a.add_argument("collection")
    a.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (none: just re-scan)")
    a.add_argument("--embedder", default="", help="a local sentence-embedding model folder, for a new collection "
                                                 "(default: all-MiniLM-L6-v2)")
    a.add_argument("--rescan", action="store_true", help="read every file again, even unchanged ones")
    a.add_argument("--no-index", action="store_true", help="only record the paths; index later")
    a.set_defaults(handler=run_add)

    ls = verbs.add_parser("list", help="list collections, or one collection's files with their states")
    ls.add_argument("collection", nargs="?")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=run_list)

    rm = verbs.add_parser("remove", help="remove files/folders from a collection, or the whole collection")
    rm.add_argument("collection")
    rm.add_argument("paths", nargs="*", metavar="PATH")
    rm.add_argument("--all", action="store_true", help="delete the collection itself (your files stay)")
    rm.set_defaults(handler=run_remove)

    s = verbs.add_parser("search", help="the passages that best match a query")
    s.add_argument("collection", help="a collection name (several: comma-separated)")
    s.add_argument("query")
    s.add_argument("-k", type=int, default=5)
    s.add_argument("--mode", choices=("hybrid", "bm25", "vector"), default="hybrid")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run_search)

    q = verbs.add_parser("ask", help="answer a question from a collection, citing passages as [1], [2]")
    q.add_argument("collection", help="a collection name (several: comma-separated)")
    q.add_argument("question")
    q.add_argument("-k", type=int, default=4, help="passages to retrieve (default 4)")
    q.add_argument("--system", default="", help="system prompt")
    add_sampling_options(q, max_new_tokens=384)
    add_model_options(q)
    q.set_defaults(handler=run_ask)

    e = sub.add_parser("eval-retrieval", help="recall@k and MRR of BM25, vectors and hybrid on a QA JSONL file")
    e.add_argument("qa", help='JSONL: {"question": ..., "contains": ..., "file": optional path suffix}')
    e.add_argument("--collection", required=True)
    e.add_argument("-k", type=int, action="append", default=None, help="k for recall@k (repeatable; 1 3 5 10)")
    e.add_argument("--json", action="store_true")
    e.add_argument("--misses", action="store_true", help="list the questions each mode missed")
    e.set_defaults(handler=run_eval)
    register_bench(sub)


_progress = ProgressLine(width=3)
_end_progress = _progress.end


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def run_add(args: argparse.Namespace) -> int:
    from engine.rag import collections as c
    from engine.rag.db import DocsDatabase
    from engine.rag.errors import CollectionError
    from engine.rag.index import IndexRequest, index_collection

    with DocsDatabase() as db:
        try:
            collection = c.get_collection(db, args.collection)
        except CollectionError:
            collection = c.create_collection(db, args.collection, embedder=os.path.abspath(args.embedder)
                                             if args.embedder else "")
            print(f"Created collection {collection.name!r}.", file=sys.stderr)
        if args.paths:
            c.add_sources(db, collection.id, args.paths)
        if args.rescan:
            c.mark_for_rescan(db, collection.id)
        if args.no_index:
            return 0
        result = index_collection(db, IndexRequest(collection.id), on_progress=_progress,
                                  cancel=cancel_on_interrupt())
        _end_progress()
        for path, reason in result.skipped:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        if result.notice:
            print(result.notice, file=sys.stderr)
        print(f"{collection.name}: {result.summary()}")
        if result.finish_reason == "cancelled":
            print("Stopped; run the same command again to carry on where it stopped.", file=sys.stderr)
            return 130
    return 0


def run_list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from engine.rag import collections as c
    from engine.rag.db import DocsDatabase

    with DocsDatabase() as db:
        if not args.collection:
            found = c.list_collections(db)
            if args.json:
                print(json.dumps([asdict(x) for x in found], indent=2))
            elif not found:
                print("No collections yet: `hearth-cli docs add NAME FOLDER` makes one.")
            for x in found if not args.json else []:
                extra = f", {x.pending} to index" if x.pending else ""
                extra += f", {x.problems} not readable or missing" if x.problems else ""
                print(f"{x.name}: {x.indexed}/{x.files} files, {x.chunks} passages{extra}")
            return 0
        collection = c.get_collection(db, args.collection)
        files = c.list_files(db, collection.id)
        if args.json:
            print(json.dumps([asdict(f) for f in files], indent=2))
            return 0
        for source in c.list_sources(db, collection.id):
            print(f"# {'folder' if source.is_folder else 'file'} {source.path}")
        for f in files:
            detail = f"{f.chunk_count} passages" if f.status == "indexed" else f.reason
            print(f"{f.status:<9} {f.path}  ({detail})" if detail else f"{f.status:<9} {f.path}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from engine.rag import collections as c
    from engine.rag.db import DocsDatabase

    with DocsDatabase() as db:
        collection = c.get_collection(db, args.collection)
        if args.all:
            c.delete_collection(db, collection.id)
            print(f"Deleted collection {collection.name!r} (your files are untouched).")
        elif args.paths:
            print(f"{c.remove_paths(db, collection.id, args.paths)} file(s) removed from {collection.name!r}.")
        else:
            print("hearth-cli: give the files or folders to remove, or --all for the whole collection",
                  file=sys.stderr)
            return 2
    return 0


def run_search(args: argparse.Namespace) -> int:
    from engine.rag.db import DocsDatabase
    from engine.rag.search import SearchRequest, search

    with DocsDatabase() as db:
        found = search(db, SearchRequest(args.query, _names(args.collection), k=args.k, mode=args.mode))
    if args.json:
        print(json.dumps([p.to_dict() for p in found], indent=2, ensure_ascii=False))
        return 0
    if not found:
        print("No passage matches.")
    for i, p in enumerate(found, start=1):
        ranks = f"bm25 #{p.bm25_rank or '-'}, vector #{p.vector_rank or '-'}"
        print(f"[{i}] {p.path}  chars {p.start}-{p.end}  (score {p.score:.4f}; {ranks})")
        print("    " + " ".join(p.text.split())[:400])
    return 0


def run_ask(args: argparse.Namespace) -> int:
    from engine.cli._common import stream_to_stdout
    from engine.config import ChatMessage
    from engine.rag.answer import RetrievalConfig, answer_with_documents

    retrieval = RetrievalConfig(collections=_names(args.collection), k=args.k)
    lm = load_from(args)
    result = answer_with_documents(lm, [ChatMessage("user", args.question)], retrieval, sampling_from(args),
                                   system_prompt=args.system, on_text=stream_to_stdout, cancel=cancel_on_interrupt())
    print()
    if result.notice:
        print(result.notice, file=sys.stderr)
    if result.passages:
        print("\nSources:")
    for p in result.passages:
        print(f"[{p.number}] {p.path}  chars {p.start}-{p.end}: {' '.join(p.text.split())[:160]}")
    return 130 if result.finish_reason == "cancelled" else 0


def run_eval(args: argparse.Namespace) -> int:
    from engine.rag.db import DocsDatabase
    from engine.rag.evaluate import EvalRequest, evaluate_retrieval

    ks = tuple(sorted(set(args.k))) if args.k else (1, 3, 5, 10)
    with DocsDatabase() as db:
        report = evaluate_retrieval(db, EvalRequest(args.qa, args.collection, ks), on_progress=_progress)
    _end_progress()
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    if args.misses:
        for mode, questions in report.misses.items():
            for question in questions:
                print(f"missed by {mode}: {question}")
    return 0


def register_bench(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench-documents", help="document collections: indexing throughput, query latency at 10k "
                                               "and 100k passages, database growth")
    b.add_argument("--chunks", type=int, default=10_000, help="passages indexed through the real path (default 10000)")
    b.add_argument("--scale", type=int, default=100_000, help="passages for the large query figures (default 100000)")
    b.add_argument("--sample", type=int, default=256, help="passages embedded by the model to measure its rate")
    b.add_argument("--queries", type=int, default=20)
    b.add_argument("--real", action="store_true", help="embed every passage with the model (slow on a CPU)")
    b.add_argument("--workdir", default="", help="keep the corpus and database here (default: a temporary folder)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    import shutil

    from engine.rag.bench import DocsBenchConfig, format_documents_report, run_documents_bench

    config = DocsBenchConfig(chunks=args.chunks, scale=args.scale, sample=args.sample, queries=args.queries,
                             real=args.real, workdir=args.workdir)
    report = run_documents_bench(config, on_progress=_progress, cancel=cancel_on_interrupt())
    _end_progress()
    print(json.dumps(report, indent=2) if args.json else format_documents_report(report))
    if not args.workdir:
        shutil.rmtree(report["workdir"], ignore_errors=True)
    return 0
