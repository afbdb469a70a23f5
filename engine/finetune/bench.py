"""``hearth-cli bench-finetune``: Hearth's LoRA training against plain transformers ``Trainer`` + peft at fp32.

Both train the same LoRA (same rank, targets, learning rate, seed) on the same packed sequences in
the same order for the same number of steps, then measure the validation loss on the same fixed
sample. Reported: training tokens/s (the first step, which warms up the thread pool and
allocator, is left out) and the validation loss after the steps, as ratios against the baseline
run in the same process. What differs is only what Hearth does on its own (``_prepare_model``): on a
CPU with native bf16, the frozen base's matmuls in bf16 with activations, attention, loss, adapters
and optimizer in fp32, shared and cheaper LoRA dropout masks, the LoRA sum in one addmm, one matmul for
the A matrices of layers reading the same input, torch's fused RMSNorm, the loss without the batch's
logits (engine/finetune/mixed.py); sdpa attention.
"""

from __future__ import annotations

import gc
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine.cancel import CancelToken
from engine.errors import InvalidConfigError


@dataclass(frozen=True)
class FinetuneBenchConfig:
    model: str | None = None  # model folder (None: the embedded default model)
    paths: tuple[str, ...] = ()  # training text (default: this package's own source and docs)
    steps: int = 8
    batch_size: int = 4
    seq_len: int = 256
    eval_sequences: int = 16
    lora_rank: int = 16
    learning_rate: float = 2e-4
    seed: int = 42
    threads: int = 0  # 0: torch's default
    order: str = "baseline-first"  # or "hearth-first"

    def __post_init__(self) -> None:
        if self.steps < 2:
            raise InvalidConfigError(f"steps must be at least 2 (the first is warm-up), not {self.steps}")
        if not 1 <= self.batch_size <= 512 or not 16 <= self.seq_len <= 8192:
            raise InvalidConfigError("batch size must be 1..512 and sequence length 16..8192")
        if self.eval_sequences < 1:
            raise InvalidConfigError("eval_sequences must be at least 1")
        if self.order not in ("baseline-first", "hearth-first"):
            raise InvalidConfigError("order must be baseline-first or hearth-first")


@dataclass
class SystemResult:
    name: str
    precision: str
    tokens_per_s: float
    eval_loss: float
    step_seconds: list[float] = field(default_factory=list)


@dataclass
class FinetuneBenchResult:
    config: dict
    baseline: SystemResult
    hearth: SystemResult

    @property
    def speedup(self) -> float:
        return self.hearth.tokens_per_s / max(1e-9, self.baseline.tokens_per_s)

    @property
    def loss_change(self) -> float:
        """Relative difference of the validation loss (0.004 = 0.4 %)."""
        return (self.hearth.eval_loss - self.baseline.eval_loss) / max(1e-9, abs(self.baseline.eval_loss))

    def to_dict(self) -> dict:
        return {"config": self.config, "baseline": self.baseline.__dict__, "hearth": self.hearth.__dict__,
                "speedup": round(self.speedup, 3), "loss_change": round(self.loss_change, 5)}

    def report(self) -> str:
        c = self.config
        rows = [f"Fine-tuning benchmark: LoRA r{c['lora_rank']}, {c['steps']} steps of {c['batch_size']} × "
                f"{c['seq_len']} tokens, validation on {c['eval_sequences']} sequences",
                f"{'system':<34} {'precision':<24} {'train tok/s':>12} {'val loss':>10}"]
        for r in (self.baseline, self.hearth):
            rows.append(f"{r.name:<34} {r.precision:<24} {r.tokens_per_s:>12,.1f} {r.eval_loss:>10.4f}")
        rows.append(f"Hearth / baseline: {self.speedup:.2f}× training tokens/s (target ≥ 2×); validation loss "
                    f"{100 * self.loss_change:+.2f} % (target within ±1 %)")
        return "\n".join(rows)


def run_finetune_bench(config: FinetuneBenchConfig, *, on_progress: Callable[[float, str], None] | None = None,
                       cancel: CancelToken | None = None) -> FinetuneBenchResult:
    import torch

    progress = on_progress or (lambda f, m: None)
    cancel = cancel or CancelToken()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        model_dir = config.model or _default_model()
        progress(0.0, "Preparing the data…")
        train, val = _data(config, model_dir, cancel)
        runs = {"baseline": lambda: _baseline(config, model_dir, train, val, cancel, progress),
                "hearth": lambda: _hearth(config, model_dir, train, val, cancel, progress)}
        order = ("baseline", "hearth") if config.order == "baseline-first" else ("hearth", "baseline")
        results = {}
        for name in order:
            results[name] = runs[name]()
            gc.collect()
        progress(1.0, "Done")
        return FinetuneBenchResult(dict(config.__dict__, model=model_dir, threads=torch.get_num_threads()),
                                   results["baseline"], results["hearth"])
    finally:
        torch.set_num_threads(threads)


def _default_model() -> str:
    from engine.convert import ensure_default_model

    return str(ensure_default_model(on_progress=lambda f, m: None, cancel=CancelToken()))


def _default_paths() -> tuple[str, ...]:
    import engine

    root = Path(engine.__file__).parent
    docs = root.parent / "docs"
    return (str(root),) + ((str(docs),) if docs.is_dir() else ())


def _data(config: FinetuneBenchConfig, model_dir: str, cancel: CancelToken) -> tuple[list[dict], Any]:
    """The same packed training sequences (in order) and the same validation sample for both systems."""
    from transformers import AutoTokenizer

    from engine.finetune.config import DataConfig
    from engine.finetune.data import Budget, build_dataset
    from engine.finetune.errors import DatasetError
    from engine.finetune.validation import sample_of

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    wanted = config.steps * config.batch_size
    data_config = DataConfig(paths=config.paths or _default_paths(), seq_len=config.seq_len, val_fraction=0.1,
                             random_offset=False, seed=config.seed)
    built = build_dataset(data_config, tokenizer, plan=lambda s: Budget(train=wanted, val=config.eval_sequences),
                          cancel=cancel)
    if len(built.train) < wanted or built.val is None:
        raise DatasetError(f"The benchmark needs {wanted} training sequences and some held out; the files give "
                           f"{len(built.train)}. Give more text.")
    train = [built.train[i] for i in range(wanted)]
    return train, sample_of(built.val, config.eval_sequences, config.seed)


def _arguments(config: FinetuneBenchConfig, out: str):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=out, per_device_train_batch_size=config.batch_size,
                             per_device_eval_batch_size=config.batch_size, max_steps=config.steps,
                             learning_rate=config.learning_rate, lr_scheduler_type="linear", warmup_steps=0,
                             weight_decay=0.0, save_strategy="no", eval_strategy="no", logging_steps=config.steps,
                             report_to="none", disable_tqdm=True, seed=config.seed, data_seed=config.seed,
                             use_cpu=True, dataloader_num_workers=0, remove_unused_columns=False,
                             log_level="error")


def _lora(config: FinetuneBenchConfig):
    from peft import LoraConfig

    return LoraConfig(r=config.lora_rank, lora_alpha=2 * config.lora_rank, lora_dropout=0.05,
                      target_modules="all-linear", task_type="CAUSAL_LM")


class _StepTimer:
    def __init__(self, cancel: CancelToken, progress, name: str, steps: int) -> None:
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer.began = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                timer.seconds.append(time.perf_counter() - timer.began)
                progress(state.global_step / steps, f"{name}: step {state.global_step}/{steps} "
                                                    f"({timer.seconds[-1]:.1f} s)")
                if cancel.cancelled:
                    control.should_training_stop = True

        self.began, self.seconds, self.callback = 0.0, [], Callback()


def _measure(name: str, precision: str, trainer, config: FinetuneBenchConfig, timer: _StepTimer, val,
             cancel: CancelToken) -> SystemResult:
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the report is the only output on stdout
    trainer.train()
    cancel.raise_if_cancelled()
    timed = timer.seconds[1:]  # the first step warms up the thread pool and the allocator
    tokens = len(timed) * config.batch_size * config.seq_len
    loss = float(trainer.evaluate(eval_dataset=val)["eval_loss"])
    return SystemResult(name, precision, tokens / max(1e-9, sum(timed)), loss, [round(s, 3) for s in timer.seconds])


def _baseline(config, model_dir, train, val, cancel, progress) -> SystemResult:
    """transformers Trainer + peft, everything in float32, the library's defaults."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, set_seed

    from engine.finetune.data import Collator

    set_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, local_files_only=True)
    model.config.use_cache = False
    model = get_peft_model(model, _lora(config))
    timer = _StepTimer(cancel, progress, "Trainer + peft (fp32)", config.steps)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model=model, args=_arguments(config, out), train_dataset=train,
                          data_collator=Collator(0), callbacks=[timer.callback])
        return _measure("transformers Trainer + peft", "fp32", trainer, config, timer, val, cancel)


def _hearth(config, model_dir, train, val, cancel, progress) -> SystemResult:
    """The model as ``run_training`` prepares it (engine/finetune/train.py), on the same Trainer loop."""
    from engine.finetune.config import DataConfig, JobConfig, TrainConfig
    from engine.finetune.data import Collator
    from engine.finetune.train import _load_base, _prepare_model
    from engine.finetune.trainer import HearthTrainer

    with tempfile.TemporaryDirectory() as out:
        job = JobConfig(base_model=model_dir, out_dir=out, data=DataConfig(seq_len=config.seq_len),
                        train=TrainConfig(lora_rank=config.lora_rank, lora_alpha=2 * config.lora_rank,
                                          lora_dropout=0.05, learning_rate=config.learning_rate, seed=config.seed,
                                          max_steps=config.steps, batch_size=config.batch_size))
        model, _tokenizer, _context = _load_base(job)
        model = _prepare_model(model, job)
        timer = _StepTimer(cancel, progress, "Hearth", config.steps)
        trainer = HearthTrainer(model=model, args=_arguments(config, out), train_dataset=train,
                                data_collator=Collator(0), callbacks=[timer.callback])
        return _measure("Hearth (engine/finetune)", _hearth_precision(model), trainer, config, timer, val, cancel)


def _hearth_precision(model) -> str:
    from engine.finetune.mixed import is_mixed
    from engine.finetune.train import _precision_label

    return "bf16 matmuls, fp32 rest" if is_mixed(model) else _precision_label(model)
