"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.config import LoadConfig, SamplingConfig
from engine.setting import described, split
from engine.cli.progress import ProgressLine


def add_model_options(parser: argparse.ArgumentParser, remote: bool = True) -> None:
    parser.add_argument("--model", default=None, help="model folder or .gguf file (default: the embedded model); "
                        "with --server, the server's model name (default: its first)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    if remote:
        parser.add_argument("--server", default=None, metavar="URL",
                            help="use a model on an OpenAI-compatible server (http://host:port/v1) instead")
        parser.add_argument("--api-key", dest="server_api_key", default=None, metavar="KEY",
                            help="the server's API key (default: $HEARTH_API_KEY, or the key saved in the app)")


def add_setting_options(parser: argparse.ArgumentParser, cls: type, defaults: dict | None = None) -> None:
    """A flag for every field of the config class ``cls`` that has a setting with a flag (engine/setting.py);
    the value lands in ``args.<field name>``. ``defaults`` overrides the dataclass's defaults."""
    defaults = defaults or {}
    for d in described(cls):
        if d.flag is None:
            continue
        default = defaults.get(d.name, d.default)
        text = d.setting.help or d.label
        if d.kind is tuple and d.setting.repeat:
            text += " (repeatable)"
            default = ", ".join(repr(item) for item in default or ())
        if d.kind is bool and d.flag.startswith("--no-"):
            text = f"turn off: {text[0].lower()}{text[1:]}"
        elif d.kind is not bool and default not in (None, (), ""):
            text += f" (default: {_shown(default, d.setting.separator)})"
        options: dict[str, Any] = {"dest": d.name, "help": text}
        if d.kind is bool:
            options.update(action="store_false" if d.flag.startswith("--no-") else "store_true")
        elif d.kind is tuple and d.setting.repeat:
            options.update(action="append", default=None, metavar=d.flag.lstrip("-").replace("-", "_").upper())
        elif d.kind is tuple:
            options.update(default=_shown(default, d.setting.separator))
        else:
            options.update(type=d.kind, default=default)
            if d.setting.choices:
                options["choices"] = [value for value, _label in d.setting.choices]
        if d.kind is not bool and "choices" not in options:
            options["metavar"] = d.flag.lstrip("-").replace("-", "_").upper()
        parser.add_argument(d.flag, **options)


def settings_from(args: argparse.Namespace, cls: type, **values: Any) -> Any:
    """``cls`` built from the flags of :func:`add_setting_options` (``values`` win; None means the default)."""
    kwargs = {}
    for d in described(cls):
        if d.flag is None or d.name in values or not hasattr(args, d.name):
            continue
        value = getattr(args, d.name)
        if d.kind is tuple and value is not None:
            value = tuple(value) if d.setting.repeat else split(value, d.setting.separator)
        if value is not None or d.optional:
            kwargs[d.name] = value
    kwargs.update({k: v for k, v in values.items() if v is not None})
    return cls(**kwargs)


def _shown(value: Any, separator: str) -> str:
    return separator.join(value) if isinstance(value, tuple) else str(value)


def add_sampling_options(parser: argparse.ArgumentParser, max_new_tokens: int = 512) -> None:
    add_setting_options(parser, SamplingConfig, {"max_new_tokens": max_new_tokens})


def sampling_from(args: argparse.Namespace) -> SamplingConfig:
    return settings_from(args, SamplingConfig)


def load_from(args: argparse.Namespace, quiet: bool = False):
    from engine.loader import load_model

    if getattr(args, "server", None):
        return connect_from(args, quiet)

    progress = ProgressLine()
    lm = load_model(LoadConfig(path=args.model, device=args.device, dtype=args.dtype),
                    on_progress=None if quiet else progress)
    progress.end()
    return lm


def connect_from(args: argparse.Namespace, quiet: bool = False):
    """``--server URL [--api-key K] [--model NAME]``: the server's model, used like a local one."""
    import os

    from engine.remote import RemoteServer, connect_model
    from engine.remote.servers import load_key

    url = args.server.rstrip("/")
    key = args.server_api_key or os.environ.get("HEARTH_API_KEY") or load_key(url)
    remote = connect_model(RemoteServer(url, key), args.model)
    if not quiet:
        print(f"[{remote.name} on {remote.host}]", file=sys.stderr)
    return remote


def stream_to_stdout(chunk: str) -> None:
    sys.stdout.write(chunk)
    sys.stdout.flush()


def cancel_on_interrupt():
    """A cancel token that Ctrl+C sets, so the current reply ends cleanly."""
    import signal

    from engine.cancel import CancelToken

    token = CancelToken()
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if token.cancelled:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        token.cancel()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        pass
    return token
