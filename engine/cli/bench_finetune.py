"""``hearth-cli bench-finetune``: Hearth's LoRA training against transformers Trainer + peft at fp32, in one run."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-finetune", help="training tokens/s and validation loss: Hearth's fine-tuning against "
                                              "plain transformers Trainer + peft at fp32, same data and steps")
    p.add_argument("paths", nargs="*", help="text to train on (default: Hearth's own source and docs)")
    p.add_argument("--model", default=None, help="model folder (default: the embedded model)")
    p.add_argument("--steps", type=int, default=8, help="training steps per system (default 8; the first is warm-up)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--eval-sequences", type=int, default=16, help="validation sample, the same for both")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's)")
    p.add_argument("--hearth-first", action="store_true", help="run Hearth before the baseline")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=run_bench_finetune)


def run_bench_finetune(args: argparse.Namespace) -> int:
    from engine.cli._common import cancel_on_interrupt
    from engine.finetune.bench import FinetuneBenchConfig, run_finetune_bench

    config = FinetuneBenchConfig(model=args.model, paths=tuple(args.paths), steps=args.steps,
                                 batch_size=args.batch_size, seq_len=args.seq_len,
                                 eval_sequences=args.eval_sequences, lora_rank=args.rank, threads=args.threads,
                                 order="hearth-first" if args.hearth_first else "baseline-first")

    def progress(fraction: float, message: str) -> None:
        print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)

    result = run_finetune_bench(config, on_progress=progress, cancel=cancel_on_interrupt())
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.report())
    return 0
