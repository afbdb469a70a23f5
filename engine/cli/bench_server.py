"""``hearth-cli bench-server``: N concurrent streaming clients × M requests against ``hearth-cli serve``,
beside the same requests generated one after another in this process (the baseline).

Prints requests/s, tokens/s, time-to-first-token percentiles and errors for both, and their ratio.
Without ``--url`` it starts ``hearth-cli serve`` itself (a subprocess on a free loopback port, with
a throw-away key) and stops it at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from engine.cli._common import add_model_options

PROMPTS = ("Write one sentence about the sea.", "Name three colours.", "What is a kitchen for?",
           "Say hello in French.", "Why do ships float?", "Give a tip for sleeping well.")


@dataclass
class Figures:
    label: str
    wall_s: float = 0.0
    ok: int = 0
    errors: int = 0
    tokens: int = 0
    ttft: list[float] = field(default_factory=list)
    error_text: list[str] = field(default_factory=list)

    def row(self) -> list[str]:
        p = percentiles(self.ttft)
        return [self.label, f"{self.ok / self.wall_s:.2f}" if self.wall_s else "-",
                f"{self.tokens / self.wall_s:.1f}" if self.wall_s else "-",
                *(f"{v * 1000:.0f}" for v in p), str(self.errors)]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-server", help="concurrent clients against hearth-cli serve, beside in-process "
                                            "generation")
    add_model_options(p, remote=False)
    p.add_argument("--clients", type=int, default=4, help="concurrent streaming clients (default 4)")
    p.add_argument("--requests", type=int, default=3, help="requests per client (default 3)")
    p.add_argument("--max-tokens", type=int, default=48, help="tokens per answer (default 48)")
    p.add_argument("--url", default=None, help="bench this running server instead of starting one")
    p.add_argument("--api-key", default=None, help="its key (with --url)")
    p.add_argument("--no-baseline", action="store_true", help="skip the in-process baseline")
    p.set_defaults(handler=run_bench_server)


def run_bench_server(args: argparse.Namespace) -> int:
    if args.clients < 1 or args.requests < 1 or args.max_tokens < 1:
        print("hearth-cli: --clients, --requests and --max-tokens must be at least 1", file=sys.stderr)
        return 2
    jobs = [PROMPTS[(c * args.requests + r) % len(PROMPTS)] for c in range(args.clients) for r in range(args.requests)]
    key = args.api_key or secrets.token_urlsafe(16)
    proc = None
    url = args.url
    if url is None:
        proc, url = start_server(args, key)
    try:
        print(f"Server at {url}: {args.clients} clients × {args.requests} requests, {args.max_tokens} tokens each",
              file=sys.stderr)
        served = bench_clients(url, key, args.clients, args.requests, args.max_tokens)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    rows = [served]
    if not args.no_baseline:
        print("Baseline: the same requests one after another in this process…", file=sys.stderr)
        rows.insert(0, bench_in_process(args, jobs))
    print_table(rows, args)
    for text in served.error_text[:5]:
        print(f"error: {text}", file=sys.stderr)
    return 0 if served.errors == 0 else 1


def start_server(args: argparse.Namespace, key: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "engine.cli", "serve", "--port", "0", "--api-key", key, "--quiet",
           "--device", args.device, "--dtype", args.dtype, "--max-queue", str(max(64, args.clients * 2))]
    if args.model:
        cmd += ["--model", args.model]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    lines = []
    for line in proc.stderr:  # until the server says where it listens
        lines.append(line)
        match = re.search(r"Serving .* at (http://\S+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # keep draining
            return proc, match.group(1)
    proc.wait()
    raise SystemExit(f"hearth-cli: the server did not start:\n{''.join(lines)}")


def bench_clients(url: str, key: str, clients: int, requests: int, max_tokens: int) -> Figures:
    import openai

    figures = Figures(f"server, {clients} clients")
    lock = threading.Lock()

    def one_client(index: int) -> None:
        api = openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=600)
        name = api.models.list().data[0].id
        for r in range(requests):
            prompt = PROMPTS[(index * requests + r) % len(PROMPTS)]
            start = time.perf_counter()
            first = None
            tokens = chunks = 0
            try:
                for chunk in api.chat.completions.create(
                        model=name, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                        temperature=0, stream=True, stream_options={"include_usage": True}):
                    if chunk.choices and chunk.choices[0].delta.content:
                        chunks += 1
                        if first is None:
                            first = time.perf_counter() - start
                    if chunk.usage:
                        tokens = chunk.usage.completion_tokens
                tokens = tokens or chunks  # servers that send no usage (llama.cpp's): a chunk is about a token
            except openai.OpenAIError as exc:
                with lock:
                    figures.errors += 1
                    figures.error_text.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                figures.ok += 1
                figures.tokens += tokens
                if first is not None:
                    figures.ttft.append(first)

    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    figures.wall_s = time.perf_counter() - started
    return figures


def bench_in_process(args: argparse.Namespace, jobs: list[str]) -> Figures:
    from engine.cli._common import load_from
    from engine.server.schemas import parse_chat
    from engine.server.tasks import server_chat_task
    from engine.session import Session

    session = Session()
    session.set_model(load_from(args, quiet=True))
    prepare = session.model.extras.get("prepare_fast_path")
    if callable(prepare):  # as the server does after loading, and like it, start timing once it is ready
        prepare(session.model)
        decoder = session.model.extras.get("decoder")
        if decoder is not None and hasattr(decoder, "wait_ready"):
            decoder.wait_ready(timeout=600)
    figures = Figures("one process, one at a time")
    name = session.model.name
    started = time.perf_counter()
    for prompt in jobs:  # the same task the server runs, minus HTTP and the queue
        request = parse_chat({"model": name, "messages": [{"role": "user", "content": prompt}],
                              "max_tokens": args.max_tokens, "temperature": 0})
        result = server_chat_task(session, request=request)
        figures.ok += 1
        figures.tokens += result.completion_tokens
        figures.ttft.append(result.ttft_s)
    figures.wall_s = time.perf_counter() - started
    return figures


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (0.0, 0.0, 0.0)
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return at(0.5), at(0.9), at(0.99)


def print_table(rows: list[Figures], args: argparse.Namespace) -> None:
    header = ["", "req/s", "tok/s", "TTFT p50 ms", "p90 ms", "p99 ms", "errors"]
    table = [header] + [r.row() for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table[1:]:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |")
    if len(rows) == 2 and rows[0].wall_s and rows[1].wall_s and rows[0].tokens:
        ratio = (rows[1].tokens / rows[1].wall_s) / (rows[0].tokens / rows[0].wall_s)
        print(f"\nserver tok/s ÷ one-process tok/s = {ratio:.2f}")
