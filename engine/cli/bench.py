"""``hearth-cli bench``: transformers ``generate``, Hearth's fast path and llama.cpp on one model, in one run."""

from __future__ import annotations

import argparse
import json
from engine.cli.progress import ProgressLine


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure decoding speed, prompt speed, perplexity and memory: "
                                     "transformers, Hearth and llama.cpp (when installed) on the same model")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--model", default=None, help="model folder or .gguf file (default: the embedded model)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--new-tokens", type=int, default=64, help="tokens per reply (default 64)")
    p.add_argument("--repeats", type=int, default=2, help="rounds over the five prompts (default 2)")
    p.add_argument("--modes", default=None,
                   help="extra fast-path packs of the transformers model, comma separated: exact, int8 "
                        "(default: both for a folder, none for a GGUF, which runs on its own quantization)")
    p.add_argument("--long-prompt-tokens", type=int, default=500, help="prompt length for time to first token")
    p.add_argument("--perplexity-tokens", type=int, default=256, help="held-out tokens for perplexity")
    p.add_argument("--threads", type=int, default=0, help="threads for every system (default: torch's)")
    p.add_argument("--no-llama-cpp", action="store_true", help="skip llama.cpp even if it is installed")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes (one process per system)")
    p.add_argument("--no-baseline", action="store_true", help="skip transformers generate (slow on big models)")
    p.add_argument("--synthetic", default=None, metavar="QUANT",
                   help="bench a random 1 B-parameter llama GGUF with this quantization mix (Q4_K_M, Q4_0, ...), "
                        "written once into the data folder; pair with --no-baseline")
    p.set_defaults(handler=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    import torch

    from engine.cli._common import cancel_on_interrupt
    from engine.fastpath.bench_report import format_report
    from engine.fastpath.benchmark import BenchConfig, run_bench

    modes = None if args.modes is None else tuple(m.strip() for m in args.modes.split(",") if m.strip())
    config = BenchConfig(model=args.model, device=args.device, new_tokens=args.new_tokens, repeats=args.repeats,
                         modes=modes, long_prompt_tokens=args.long_prompt_tokens,
                         perplexity_tokens=args.perplexity_tokens, threads=args.threads,
                         llama_cpp=not args.no_llama_cpp, memory=not args.no_memory, baseline=not args.no_baseline,
                         synthetic=args.synthetic)

    progress = ProgressLine()

    threads = torch.get_num_threads()
    try:
        report = run_bench(config, on_progress=progress, cancel=cancel_on_interrupt())
    finally:
        torch.set_num_threads(threads)
    progress.end()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
