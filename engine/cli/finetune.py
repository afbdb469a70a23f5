"""``hearth-cli finetune`` (train LoRA or full, resume, estimate), ``finetune-runs``, ``merge-adapter``,
``eval-ppl``.

The same command is the entry point for several processes::

    torchrun --nproc_per_node=2 -m engine.cli finetune --config RUN/job.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from engine.cli.progress import ProgressLine


def register(sub: argparse._SubParsersAction) -> None:
    from engine.cli._common import add_setting_options
    from engine.finetune.config import DataConfig, TrainConfig

    p = sub.add_parser("finetune", help="fine-tune a model on your files (LoRA or full), printing progress")
    p.add_argument("paths", nargs="*", help="files or folders: text, Markdown, code, PDF, DOCX, JSON/JSONL, CSV")
    p.add_argument("--model", default=None, help="base model folder (default: the embedded model)")
    p.add_argument("--out", default=None, help="run folder (default: a new folder under the runs folder)")
    p.add_argument("--config", default=None, help="a job.json (from the window's Export, or a run folder)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out/--config from its last checkpoint")
    p.add_argument("--estimate", action="store_true", help="only print the memory/time/disk estimate")
    p.add_argument("--merge", metavar="NAME", default=None, help="afterwards, save the result as model NAME")
    # Every TrainConfig and DataConfig setting is a flag (engine/finetune/config.py describes them);
    # the learning rate's default depends on the method.
    # With neither --max-steps nor --epochs, the steps follow the data and the hardware (as the window
    # suggests them): a first run on a big folder takes minutes, not days.
    add_setting_options(p, TrainConfig, {"learning_rate": None, "max_steps": None, "epochs": None})
    add_setting_options(p, DataConfig)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: every core)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--events-json", action="store_true",
                   help="print progress, losses, samples and the result (or the error) as JSON lines on stdout "
                        "(what the window reads when it runs training in a child process)")
    p.set_defaults(handler=run_finetune)

    r = sub.add_parser("finetune-runs", help="list fine-tuning runs (and which can be resumed)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=run_list)

    m = sub.add_parser("merge-adapter", help="save a run's result (adapter merged into its base) as a model")
    m.add_argument("run", help="run folder")
    m.add_argument("--name", default=None, help="model name (default: the run's name)")
    m.add_argument("--out", default=None, help="write the model folder here instead of the models folder")
    m.set_defaults(handler=run_merge)

    e = sub.add_parser("eval-ppl", help="perplexity of a model (optionally with an adapter) on text files")
    e.add_argument("files", nargs="+")
    e.add_argument("--model", default=None, help="model folder or .gguf (default: the embedded model)")
    e.add_argument("--adapter", default=None, help="a PEFT adapter folder (a run's adapter/)")
    e.add_argument("--seq-len", type=int, default=512)
    e.add_argument("--stride", type=int, default=None)
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true")
    e.set_defaults(handler=run_eval_ppl)


def _main() -> bool:
    from engine.finetune.train import is_main_process

    return is_main_process()


def _say(text: str) -> None:
    if _main():
        print(text, file=sys.stderr, flush=True)


def _default_model() -> str:
    """The built-in model's GGUF file: training builds its full-precision model on demand (nothing converted
    to disk), the same base the window's Fine-tune view uses."""
    from engine.default_model import find_default_gguf

    return str(find_default_gguf())


def job_from_args(args: argparse.Namespace):
    from engine.finetune.config import DataConfig, JobConfig, TrainConfig
    from engine.finetune.runs import new_run_dir

    if args.config:
        job = JobConfig.load(args.config)
        return job.with_(out_dir=args.out) if args.out else job
    if args.resume:
        if not args.out:
            raise SystemExit("hearth-cli: --resume needs --out RUN_FOLDER (or --config RUN/job.json)")
        return JobConfig.load(args.out)
    from engine.cli._common import settings_from

    model = args.model or _default_model()
    lr = args.learning_rate if args.learning_rate is not None else (2e-4 if args.method == "lora" else 2e-5)
    args.auto_steps = args.max_steps is None and args.epochs is None
    data = settings_from(args, DataConfig, paths=tuple(args.paths), seed=args.seed)
    train = settings_from(args, TrainConfig, learning_rate=lr)
    out = args.out or str(new_run_dir(Path(model).name))
    return JobConfig(base_model=model, out_dir=out, data=data, train=train)


class _PhasePrinter:
    """Loading, reading, tokenizing and the first validation take a while: a line when a phase begins,
    then one every few seconds with its progress and time left (steps print their own lines)."""

    EVERY_S = 3.0

    def __init__(self) -> None:
        self.phase, self.shown = "", 0.0
        self.said: set[str] = set()  # notices printed as text: not printed again as a phase

    def say(self, text: str) -> None:
        self.said.add(text.strip())
        _say(text.rstrip())

    def __call__(self, fraction: float, message: str) -> None:
        import time

        if message.startswith("Step") or message.strip() in self.said:
            return
        phase = message.split(":")[0]
        now = time.monotonic()
        if phase != self.phase or now - self.shown >= self.EVERY_S:
            self.phase, self.shown = phase, now
            _say(message)


def _print_event(event: dict) -> None:
    kind = event["type"]
    if kind == "train":
        _say(f"step {event['step']:>5}  epoch {event['epoch']:.2f}  loss {event['loss']:.4f}  "
             f"lr {event['lr']:.2e}  {event.get('tokens_per_s') or 0:,.0f} tok/s")
    elif kind == "eval":
        _say(f"step {event['step']:>5}  validation loss {event['loss']:.4f}  perplexity {event['perplexity']:.2f}")
    elif kind == "full_eval":
        _say(f"step {event['step']:>5}  validation loss on all held-out data {event['loss']:.4f}  "
             f"perplexity {event['perplexity'] or float('inf'):.2f}")
    elif kind == "samples":
        for prompt, text in event["samples"]:
            _say(f"    sample  {prompt!r} → {text[:200]!r}")
    elif kind == "start":
        s = event["stats"]
        verb = "Resuming" if event["resume"] else "Training"
        from engine.finetune.data import about as estimated

        about = estimated(s, "train")
        _say(f"{verb} for {event['max_steps']} steps on {about}{s['train_examples']:,} sequences "
             f"({about}{s['train_tokens']:,} tokens), {s.get('validation', '')}; {event.get('precision', '')}.")
        _say_coverage(s)
        _say_skipped(event.get("skipped", []))
        _say(f"Step {event['step'] + 1}/{event['max_steps']} under way…")


def _say_coverage(stats: dict) -> None:
    if stats.get("coverage"):
        _say(stats["coverage"])


def _say_skipped(skipped: list) -> None:
    """Each file left out, and each line (item, row) left out of a file, with its reason.

    ``skipped``: Skipped objects, or the start event's dicts."""
    from engine.finetune.sources import Skipped, skipped_summary

    skipped = [s if isinstance(s, Skipped) else Skipped.from_dict(s) for s in skipped]
    if skipped:
        _say(f"{skipped_summary(skipped)}:")
    for s in skipped:
        if not s.lines:
            _say(f"  skipped {s.path}: {s.reason}")
            continue
        _say(f"  skipped {s.path}: {s.headline}:")
        for where, why in s.lines[:SKIPPED_LINES_SHOWN]:
            _say(f"      {where}: {why}")
        if s.count > SKIPPED_LINES_SHOWN:
            _say(f"      … and {s.count - SKIPPED_LINES_SHOWN:,} more (--json lists the first {len(s.lines):,})")


SKIPPED_LINES_SHOWN = 50


def _emit(obj: dict) -> None:
    if _main():
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def run_finetune(args: argparse.Namespace) -> int:
    if not args.events_json:
        return _run_finetune(args)
    from engine.errors import HearthError

    try:
        return _run_finetune(args)
    except HearthError as exc:
        _emit({"type": "error", "message": str(exc), "error_type": type(exc).__name__})
        return 1


def _run_finetune(args: argparse.Namespace) -> int:
    from engine.cli._common import cancel_on_interrupt
    from engine.finetune.train import run_training

    if not (args.paths or args.config or args.resume):
        print("hearth-cli: give files or folders to train on (or --config / --resume)", file=sys.stderr)
        return 2
    job = job_from_args(args)
    if args.estimate:
        return _print_estimate(job, as_json=args.json, suggest_steps=getattr(args, "auto_steps", False),
                               threads=args.threads)
    _say(f"Run folder: {job.out_dir}")
    if args.events_json:
        events = {"on_event": _emit, "on_text": lambda t: _emit({"type": "notice", "text": t.strip()}),
                  "on_progress": lambda f, m: _emit({"type": "progress", "fraction": f, "message": m})}
    else:
        phases = _PhasePrinter()
        events = {"on_event": _print_event, "on_text": phases.say, "on_progress": phases}
    try:
        result = run_training(job, resume=args.resume, cancel=cancel_on_interrupt(), threads=args.threads,
                              suggest_steps=getattr(args, "auto_steps", False), **events)
    finally:
        _end_distributed()
    if not _main():
        return 0
    ppl = ""
    if result.ppl_before and result.ppl_after:
        ppl = f" Validation perplexity {result.ppl_before:.2f} → {result.ppl_after:.2f}."
    if result.full_ppl:
        ppl += f" On all held-out data: {result.full_ppl:.2f}."
    _say(f"{result.state.replace('_', ' ').capitalize()} at step {result.step}/{result.max_steps}.{ppl} "
         f"Result: {result.output}")
    if result.state == "stopped":
        _say(f"Continue with: hearth-cli finetune --resume --out {job.out_dir}")
    if args.merge:
        from engine.finetune.merge import save_as_model

        _say(f"Saved model: {save_as_model(job.out_dir, name=args.merge)}")
    if args.json or args.events_json:
        print(json.dumps({"type": "result", **result.to_dict()} if args.events_json else result.to_dict()))
    return 0


def _end_distributed() -> None:
    """Under torchrun, leave the process group before exiting: a rank whose gloo threads are still up at
    interpreter exit can abort ("terminate called without an active exception") and fail the whole launch."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _print_estimate(job, *, as_json: bool = False, suggest_steps: bool = False, threads: int | None = None) -> int:
    """The data as training would read it (every skipped file or line named), the validation sample,
    what one pass covers, and the memory, time and disk the job needs here."""
    from engine.finetune.data import build_dataset
    from engine.finetune.estimate import estimate
    from engine.finetune.sources import skipped_summary
    from engine.finetune.tasks import load_tokenizer
    from engine.finetune.train import run_budget, with_suggested_steps
    from engine.session import Session

    phases = _PhasePrinter()
    phases(0.0, f"Reading the tokenizer of {Path(job.base_model).name}…")
    tokenizer, context = load_tokenizer(Session(), job.base_model)
    chosen = {"job": job}

    def plan(stats: dict):
        if suggest_steps:
            chosen["job"] = with_suggested_steps(chosen["job"], stats)
        return run_budget(chosen["job"], stats)

    data = build_dataset(job.data, tokenizer, max_context=context, plan=plan, on_progress=phases)
    job = chosen["job"]
    est = estimate(job, data.stats, threads=threads)
    if as_json:
        print(json.dumps({"data": data.stats, "summary": data.summary(), "validation": est.validation,
                          "validation_plan": est.validation_plan, "coverage": est.coverage,
                          "skipped_summary": skipped_summary(data.skipped),
                          "skipped": [k.to_dict() for k in data.skipped],
                          "notices": data.notices, "estimate": est.to_dict()}, indent=1, default=str))
        return 0 if est.fits else 1
    _say(data.summary())
    _say_skipped(data.skipped)
    for notice in data.notices:
        _say(f"  notice: {notice}")
    print(est.summary())
    print(est.validation)
    if est.coverage:
        print(est.coverage)
    for note in est.notes:
        print(f"note: {note}")
    for warning in est.warnings:
        print(f"warning: {warning}")
    return 0 if est.fits else 1


def run_list(args: argparse.Namespace) -> int:
    from engine.finetune.runs import list_runs

    runs = list_runs()
    if args.json:
        print(json.dumps([{**r.__dict__} for r in runs], indent=1))
        return 0
    if not runs:
        print("No fine-tuning runs yet.")
    for r in runs:
        extra = " (resumable)" if r.resumable else ""
        ppl = f", perplexity {r.ppl_before:.2f} → {r.ppl_after:.2f}" if r.ppl_before and r.ppl_after else ""
        print(f"{r.label()}{extra}{ppl}\n    {r.folder}")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from engine.finetune.merge import save_as_model

    target = save_as_model(args.run, name=args.name, out_dir=args.out,
                           on_progress=lambda f, m: _say(f"[{f * 100:5.1f}%] {m}"))
    print(target)
    return 0


def run_eval_ppl(args: argparse.Namespace) -> int:
    from engine.documents import read_document
    from engine.errors import DocumentError
    from engine.finetune.perplexity import perplexity

    texts = []
    for f in args.files:
        try:
            texts.append(read_document(f).text)
        except DocumentError as exc:
            print(f"hearth-cli: skipped {exc}", file=sys.stderr)
    if not texts:
        print("hearth-cli: no readable text in the files given", file=sys.stderr)
        return 1
    model, tokenizer, name = _model_for_ppl(args)
    progress = ProgressLine()
    result = perplexity(model, tokenizer, "\n\n".join(texts), seq_len=args.seq_len, stride=args.stride,
                        on_progress=progress)
    progress.end()
    if args.json:
        print(json.dumps({"model": name, **result.to_dict()}))
    else:
        print(f"{name}: perplexity {result.perplexity:.3f} (loss {result.loss:.4f} over {result.tokens:,} tokens)")
    return 0 if math.isfinite(result.perplexity) else 1


def _model_for_ppl(args: argparse.Namespace):
    if args.adapter:
        from engine.device import pick_device
        from engine.finetune.merge import load_merged

        model, tokenizer = load_merged(args.adapter, device=str(pick_device(args.device)))
        return model, tokenizer, f"{Path(args.adapter).parent.name} (adapter)"
    from engine.config import LoadConfig
    from engine.loader import load_model

    lm = load_model(LoadConfig(path=args.model, device=args.device))
    return lm.model, lm.tokenizer, lm.name
