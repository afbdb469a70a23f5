"""``hearth-cli generate`` (raw continuation) and ``hearth-cli chat`` (terminal chat).

A local model is loaded and run on the process-wide scheduler (engine/cli/_scheduled.py): the
same thread and queue the window and the HTTP server use. ``--server`` talks to a remote one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import argparse
import json
import sys

from engine.cli._common import add_model_options, add_sampling_options, sampling_from, stream_to_stdout

if TYPE_CHECKING:
    from engine.session import Session


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="continue a prompt (no chat template), streaming to stdout")
    p.add_argument("prompt", help="the text to continue ('-' reads standard input)")
    p.add_argument("--json", action="store_true", help="print the result's figures as JSON on stderr")
    add_model_options(p)
    add_sampling_options(p, max_new_tokens=256)
    p.set_defaults(handler=run_generate)

    c = sub.add_parser("chat", help="chat in the terminal; --once answers one message and exits")
    c.add_argument("--once", metavar="MESSAGE", default=None, help="answer this message and exit")
    c.add_argument("--system", default="", help="system prompt")
    c.add_argument("--conversation", metavar="ID", type=int, default=None,
                   help="with --once: continue this stored conversation (default: start a new one)")
    add_model_options(c)
    add_sampling_options(c)
    c.set_defaults(handler=run_chat)


def _report(result, as_json: bool) -> None:
    if result.notice:
        print(f"\n[{result.notice}]", file=sys.stderr)
    if as_json:
        print(json.dumps(result.to_dict()), file=sys.stderr)
    else:
        print(f"\n[{result.new_tokens} tokens, {result.tok_s:.1f} tok/s, {result.finish_reason}]", file=sys.stderr)


def run_generate(args: argparse.Namespace) -> int:
    from engine.cli._scheduled import ModelRunner
    from engine.generation import generate

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    sampling = sampling_from(args)
    result = ModelRunner(args).run(lambda lm, on_text, on_progress, cancel: generate(
        lm, prompt, sampling, on_text=on_text, cancel=cancel), on_chunk=stream_to_stdout)
    print()
    _report(result, args.json)
    return 0


def _open_turn(args: argparse.Namespace):
    """The stored conversation this chat writes to; None (with a warning) if history is unavailable."""
    from engine.errors import HearthError
    from engine.store.turn import StoredTurn

    try:
        return StoredTurn.begin(args.conversation, args.system)
    except HearthError as exc:
        if args.conversation is not None or args.once is not None:
            raise  # the user asked for a stored conversation: say why there is none
        print(f"hearth-cli: chat history is off: {exc}", file=sys.stderr)
        return None


def _open_turn_task(session: Session, *, on_text=None, on_progress=None, cancel=None, args):
    return _open_turn(args)


def run_chat(args: argparse.Namespace) -> int:
    from engine.chat_generation import chat
    from engine.cli._scheduled import ModelRunner, run_task
    from engine.config import ChatMessage

    local = not getattr(args, "server", None)
    turn = None
    if args.once is None or args.once.strip():  # open the store (and check the id) before the slow load
        # A local model's turns run on the scheduler's thread: the store's SQLite connection lives there too.
        turn = run_task(_open_turn_task, args=args) if local else _open_turn(args)
    model = ModelRunner(args)
    sampling = sampling_from(args)
    history: list[ChatMessage] = []  # used only when the history store is unavailable

    def answer(text: str):
        """One turn: (result, stored message or None)."""
        if turn is not None:  # each turn is committed to the same stored conversation
            return model.run(lambda lm, on_text, on_progress, cancel: turn.run(
                lm, text, sampling, on_text=on_text, cancel=cancel), on_chunk=stream_to_stdout)
        history.append(ChatMessage("user", text))
        result = model.run(lambda lm, on_text, on_progress, cancel: chat(
            lm, history, sampling, system_prompt=args.system, on_text=on_text, cancel=cancel),
            on_chunk=stream_to_stdout)
        history.append(ChatMessage("assistant", result.text))
        return result, None

    if args.once is not None:
        if not args.once.strip():
            print("hearth-cli: the message is empty", file=sys.stderr)
            return 2
        result, saved = answer(args.once)
        print()
        _report(result, False)
        print(f"[saved in conversation {saved.conversation_id}]", file=sys.stderr)
        return 0
    print(f"Chatting with {model.name}. Empty line or Ctrl+D to quit; Ctrl+C stops a reply.", file=sys.stderr)
    while True:
        try:
            text = input("you> ")
        except EOFError:
            print()
            return 0
        if not text.strip():
            return 0
        print(f"{model.name}> ", end="", flush=True)
        result, _saved = answer(text)
        print()
        if result.notice:
            print(f"[{result.notice}]", file=sys.stderr)
