"""``hearth-cli``: the engine's command line.

Each module in this package adds its subcommands with ``register(subparsers)``;
new features add a module here instead of editing a central list. A command
handler returns the exit code. Engine errors are printed as one line on stderr
(exit 1), never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hearth-cli", description="Hearth: local language models, offline.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import engine  # noqa: F401  (offline switches first)
    from engine.errors import HearthError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except HearthError as exc:
        print(f"hearth-cli: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nhearth-cli: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
