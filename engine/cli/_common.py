"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import sys

from engine.config import LoadConfig, SamplingConfig


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model folder or .gguf file (default: the embedded model)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")


def add_sampling_options(parser: argparse.ArgumentParser, max_new_tokens: int = 512) -> None:
    d = SamplingConfig()
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    parser.add_argument("--temperature", type=float, default=d.temperature)
    parser.add_argument("--top-p", type=float, default=d.top_p)
    parser.add_argument("--top-k", type=int, default=d.top_k)
    parser.add_argument("--min-p", type=float, default=d.min_p)
    parser.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")


def sampling_from(args: argparse.Namespace) -> SamplingConfig:
    return SamplingConfig(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, min_p=args.min_p,
                          repetition_penalty=args.repetition_penalty, max_new_tokens=args.max_new_tokens,
                          seed=args.seed, stop=tuple(args.stop))


def load_from(args: argparse.Namespace, quiet: bool = False):
    from engine.loader import load_model

    def progress(fraction: float, message: str) -> None:
        if not quiet:
            print(f"\r[{fraction * 100:5.1f}%] {message}\033[K", end="", file=sys.stderr, flush=True)

    lm = load_model(LoadConfig(path=args.model, device=args.device, dtype=args.dtype), on_progress=progress)
    if not quiet:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    return lm


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
