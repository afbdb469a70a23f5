"""``hearth-cli eval-texttools``: summarize, translate and complete code over the shipped set; one JSON report.

The report goes to stdout (``> eval.json`` keeps it), progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.cli._common import add_model_options, cancel_on_interrupt, load_from
from engine.cli.progress import ProgressLine


def register(sub: argparse._SubParsersAction) -> None:
    from engine.texttools.evaluate import TOOLS

    p = sub.add_parser("eval-texttools", help="measure the text tools on a fixed set of inputs (loops, empty or "
                                              "cut outputs, length, time, faithfulness) and print one JSON")
    p.add_argument("--set", dest="folder", default=None,
                   help="a folder with cases.json (default: tests/data/texttools_eval)")
    p.add_argument("--tool", action="append", choices=TOOLS, default=None, help="only this tool (repeatable)")
    p.add_argument("--limit", type=int, default=0, help="at most this many cases per tool (0: all)")
    p.add_argument("--cases", action="store_true", help="also list every case's figures and output")
    add_model_options(p)
    p.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from engine.errors import CancelledError, HearthError
    from engine.texttools.evaluate import TOOLS, default_set, evaluate, load_cases

    try:
        cases = load_cases(args.folder or default_set(), tuple(args.tool or TOOLS), args.limit)
    except HearthError as exc:
        print(f"hearth-cli: {exc}", file=sys.stderr)
        return 2
    if not cases:
        print("hearth-cli: the evaluation set has no cases for these tools", file=sys.stderr)
        return 2
    lm = load_from(args)

    progress = ProgressLine(width=3)

    try:
        report = evaluate(lm, cases, on_progress=progress, cancel=cancel_on_interrupt())
    except CancelledError:
        progress.end()
        print("cancelled", file=sys.stderr)
        return 130
    progress.end()
    if not args.cases:
        report.pop("cases")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0
