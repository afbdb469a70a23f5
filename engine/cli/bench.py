"""``hearth-cli bench``: plain transformers ``generate`` against Hearth's fast path, in one run."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure decoding speed and quality against plain transformers generate")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--model", default=None, help="model folder or .gguf file (default: the embedded model)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--new-tokens", type=int, default=64, help="tokens per reply (default 64)")
    p.add_argument("--repeats", type=int, default=2, help="rounds over the five prompts (default 2)")
    p.add_argument("--modes", default="exact,int8", help="fast path modes, comma separated (default exact,int8)")
    p.add_argument("--long-prompt-tokens", type=int, default=500, help="prompt length for time to first token")
    p.add_argument("--perplexity-tokens", type=int, default=256, help="held-out tokens for perplexity")
    p.add_argument("--threads", type=int, default=0, help="torch threads for the whole run (default: torch's)")
    p.set_defaults(handler=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    import torch

    from engine.cli._common import cancel_on_interrupt
    from engine.fastpath.benchmark import BenchConfig, run_bench

    config = BenchConfig(model=args.model, device=args.device, new_tokens=args.new_tokens, repeats=args.repeats,
                         modes=tuple(m.strip() for m in args.modes.split(",") if m.strip()),
                         long_prompt_tokens=args.long_prompt_tokens, perplexity_tokens=args.perplexity_tokens)

    def progress(fraction: float, message: str) -> None:
        print(f"\r[{fraction * 100:5.1f}%] {message}\033[K", end="", file=sys.stderr, flush=True)

    threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        report = run_bench(config, on_progress=progress, cancel=cancel_on_interrupt())
    finally:
        torch.set_num_threads(threads)
    print("\r\033[K", end="", file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def format_report(r: dict) -> str:
    base = r["baseline"]
    lines = [f"model {r['model']} on {r['device']} ({r['threads']} threads, torch {r['torch']}); "
             f"{r['prompts']} prompts of ~{r['prompt_tokens']:.0f} tokens, {r['new_tokens']} new tokens, "
             f"{r['repeats']} rounds; load average {r['load_average'][0]} -> {r['load_average'][1]}",
             f"{'path':<40} {'tok/s':>7} {'ratio':>6} {'TTFT@' + str(r['long_prompt_tokens']):>9} "
             f"{'greedy=':>8} {'ppl':>8} {'Δppl':>7}",
             f"{base['path']:<40} {base['tok_s']:>7.1f} {1.0:>6.2f} {base['ttft_s']:>8.3f}s {'':>8} "
             f"{base['perplexity']:>8.3f} {'':>7}"]
    for p in r["paths"]:
        lines.append(f"{p['path']:<40} {p['tok_s']:>7.1f} {p['ratio']:>6.2f} {p['ttft_s']:>8.3f}s "
                     f"{p['greedy_match'] * 100:>7.1f}% {p['perplexity']:>8.3f} {p['perplexity_change_pct']:>+6.2f}%")
    cpp = r.get("llama_cpp")
    if cpp and "tok_s" in cpp:
        lines.append(f"{cpp['path']:<40} {cpp['tok_s']:>7.1f} {cpp['ratio']:>6.2f}")
    elif cpp is None:
        lines.append("llama.cpp: llama-cpp-python is not installed (optional)")
    return "\n".join(lines)
