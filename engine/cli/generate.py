"""``hearth-cli generate`` (raw continuation) and ``hearth-cli chat`` (terminal chat).

A local model is loaded and run on the process-wide scheduler (engine/cli/_scheduled.py): the
same thread and queue the window and the HTTP server use. ``--server`` talks to a remote one.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.cli._common import (add_model_options, add_sampling_options, cancel_on_interrupt, load_from,
                                sampling_from, stream_to_stdout)


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
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if getattr(args, "server", None):
        from engine.generation import generate

        lm = load_from(args)
        result = generate(lm, prompt, sampling_from(args), on_text=stream_to_stdout, cancel=cancel_on_interrupt())
    else:
        from engine.cli._scheduled import load_on_scheduler, run_task
        from engine.tasks import generate_task

        load_on_scheduler(args)
        result = run_task(generate_task, on_chunk=stream_to_stdout, prompt=prompt, sampling=sampling_from(args))
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


class _Remote:
    """Chat turns with a model on another server, run here."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.lm = load_from(args)
        self.name = self.lm.name

    def open_turn(self, args: argparse.Namespace):
        return _open_turn(args)

    def turn(self, turn, text: str, sampling):
        return turn.run(self.lm, text, sampling, on_text=stream_to_stdout, cancel=cancel_on_interrupt())

    def chat(self, history, sampling, system_prompt: str):
        from engine.chat_generation import chat

        return chat(self.lm, history, sampling, system_prompt=system_prompt, on_text=stream_to_stdout,
                    cancel=cancel_on_interrupt())


class _Local:
    """Chat turns run as tasks on the scheduler's thread, which owns the model and the store's connection."""

    def __init__(self, args: argparse.Namespace) -> None:
        from engine.cli._scheduled import load_on_scheduler

        self.name = load_on_scheduler(args)["name"]

    @staticmethod
    def open_turn(args: argparse.Namespace):
        from engine.cli._scheduled import run_task

        return run_task(_open_turn_task, args=args)

    @staticmethod
    def turn(turn, text: str, sampling):
        from engine.cli._scheduled import run_task

        return run_task(_turn_task, on_chunk=stream_to_stdout, turn=turn, text=text, sampling=sampling)

    @staticmethod
    def chat(history, sampling, system_prompt: str):
        from engine.cli._scheduled import run_task
        from engine.tasks import chat_task

        return run_task(chat_task, on_chunk=stream_to_stdout, messages=list(history), sampling=sampling,
                        system_prompt=system_prompt)


def _open_turn_task(session, *, on_text=None, on_progress=None, cancel=None, args):
    return _open_turn(args)


def _turn_task(session, *, on_text=None, on_progress=None, cancel=None, turn, text, sampling):
    return turn.run(session.require_model(), text, sampling, on_text=on_text, cancel=cancel)


def run_chat(args: argparse.Namespace) -> int:
    from engine.config import ChatMessage

    engine = _Remote if getattr(args, "server", None) else _Local
    turn = None
    if args.once is None or args.once.strip():  # open the store (and check the id) before the slow load
        turn = engine.open_turn(args)
    runner = engine(args)
    sampling = sampling_from(args)
    if args.once is not None:
        if not args.once.strip():
            print("hearth-cli: the message is empty", file=sys.stderr)
            return 2
        result, saved = runner.turn(turn, args.once, sampling)
        print()
        _report(result, False)
        print(f"[saved in conversation {saved.conversation_id}]", file=sys.stderr)
        return 0
    history: list[ChatMessage] = []  # used only when the history store is unavailable
    print(f"Chatting with {runner.name}. Empty line or Ctrl+D to quit; Ctrl+C stops a reply.", file=sys.stderr)
    while True:
        try:
            text = input("you> ")
        except EOFError:
            print()
            return 0
        if not text.strip():
            return 0
        print(f"{runner.name}> ", end="", flush=True)
        if turn is not None:  # each turn is committed to the same stored conversation
            result, saved = runner.turn(turn, text, sampling)
        else:
            history.append(ChatMessage("user", text))
            result = runner.chat(history, sampling, args.system)
            history.append(ChatMessage("assistant", result.text))
        print()
        if result.notice:
            print(f"[{result.notice}]", file=sys.stderr)
