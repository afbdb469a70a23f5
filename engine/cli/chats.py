"""``hearth-cli chats``: list, show, export, search and import stored conversations."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chats", help="stored conversations: list, show, export, search, import")
    cmds = p.add_subparsers(dest="chats_command", metavar="ACTION")
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])

    c = cmds.add_parser("list", help="conversations, pinned first, then most recent")
    c.add_argument("--limit", type=int, default=50)
    c.add_argument("--filter", default="", help="only titles containing this text")
    c.set_defaults(handler=run_list)

    c = cmds.add_parser("show", help="print a conversation's current thread")
    c.add_argument("id", type=int)
    c.set_defaults(handler=run_show)

    c = cmds.add_parser("export", help="write a conversation as Markdown or OpenAI-messages JSON")
    c.add_argument("id", type=int)
    c.add_argument("--format", choices=("md", "json"), default="md")
    c.add_argument("-o", "--output", default=None, help="file to write (default: standard output)")
    c.set_defaults(handler=run_export)

    c = cmds.add_parser("search", help="full-text search over every message")
    c.add_argument("text", nargs="+")
    c.add_argument("--limit", type=int, default=20)
    c.set_defaults(handler=run_search)

    c = cmds.add_parser("import", help="import a conversation from OpenAI-messages JSON")
    c.add_argument("file")
    c.set_defaults(handler=run_import)

    c = cmds.add_parser("rename", help="give a conversation a new title")
    c.add_argument("id", type=int)
    c.add_argument("title")
    c.set_defaults(handler=run_rename)

    c = cmds.add_parser("delete", help="delete a conversation (asks first unless --yes)")
    c.add_argument("id", type=int)
    c.add_argument("--yes", action="store_true", help="do not ask")
    c.set_defaults(handler=run_delete)


def _open():
    from engine.store import Store

    store = Store()
    if store.notice:
        print(f"hearth-cli: note: {store.notice}", file=sys.stderr)
    return store


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def run_list(args: argparse.Namespace) -> int:
    with _open() as store:
        conversations = store.list_conversations(filter_text=args.filter, limit=args.limit)
    if not conversations:
        print("No conversations yet." if not args.filter else f"No conversation title contains {args.filter!r}.",
              file=sys.stderr)
        return 0
    print(f"{'ID':>5}  {'UPDATED':16}  {'MSGS':>5}  TITLE")
    for c in conversations:
        pin = "* " if c.pinned else ""
        print(f"{c.id:>5}  {_when(c.updated_at):16}  {c.message_count:>5}  {pin}{c.title or 'New chat'}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    with _open() as store:
        conversation = store.conversation(args.id)
        thread = store.current_path(args.id)
    print(f"# {conversation.title or 'New chat'}  (conversation {conversation.id}, {_when(conversation.updated_at)})")
    if conversation.system_prompt.strip():
        print(f"\n[system]\n{conversation.system_prompt.strip()}")
    for m in thread:
        print(f"\n[{' · '.join(_describe(m))}]\n{m.content}")
    return 0


def _describe(message) -> list[str]:
    parts = [f"{message.role} #{message.id}"]
    position, count = message.alternative
    if count > 1:
        parts.append(f"‹ {position}/{count} ›")
    if message.model and message.role == "assistant":
        parts.append(message.model)
    if message.tok_s:
        parts.append(f"{message.tok_s:.1f} tok/s")
    if message.finish_reason:
        parts.append(message.finish_reason)
    if message.status != "complete":
        parts.append(message.status.upper())
    return parts


def run_export(args: argparse.Namespace) -> int:
    from engine.store import exchange

    with _open() as store:
        text = (exchange.to_markdown if args.format == "md" else exchange.to_json)(store, args.id)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    path = Path(args.output).expanduser()
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"hearth-cli: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"Wrote {path}", file=sys.stderr)
    return 0


def run_search(args: argparse.Namespace) -> int:
    with _open() as store:
        hits = store.search(" ".join(args.text), limit=args.limit)
    if not hits:
        print("No message matches.", file=sys.stderr)
        return 1
    for hit in hits:
        print(f"{hit.conversation_id:>5}  #{hit.message_id:<6} {hit.conversation_title[:40]:40}  "
              f"{hit.role}: {hit.snippet}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from engine.store import exchange

    with _open() as store:
        conversation = exchange.import_file(store, args.file)
    print(f"Imported conversation {conversation.id}: {conversation.title} ({conversation.message_count} messages)")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    with _open() as store:
        conversation = store.rename_conversation(args.id, args.title)
    print(f"Conversation {conversation.id} is now {conversation.title!r}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    with _open() as store:
        conversation = store.conversation(args.id)
        if not args.yes:
            answer = input(f"Delete conversation {conversation.id} {conversation.title!r} "
                           f"({conversation.message_count} messages)? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing deleted.", file=sys.stderr)
                return 1
        store.delete_conversation(args.id)
    print(f"Deleted conversation {args.id}", file=sys.stderr)
    return 0
