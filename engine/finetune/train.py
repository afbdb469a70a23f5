"""``run_training(job)``: the one training entry point (GUI worker, ``hearth-cli finetune``, ``torchrun``).

Built on transformers' ``Trainer`` with peft LoRA or full fine-tuning. The run
folder holds ``job.json``, ``status.json``, ``events.jsonl``, ``checkpoints/``
(the best and the last, each with the optimizer state, so Resume continues
exactly) and the result: ``adapter/`` (standard PEFT format) or ``model/``.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine.cancel import CancelToken
from engine.errors import CancelledError, ModelLoadError, OutOfMemoryError
from engine.finetune.config import JobConfig
from engine.finetune.errors import RunNotFoundError, TrainingError
from engine.finetune.runlog import RunLog

CHECKPOINTS = "checkpoints"
_FIXED_THREADS: list[int] = []  # set while run_training runs with threads the caller chose
STOP_FILE = "STOP"  # created in a run folder, it stops the run like the Stop button (any process, any rank)


@dataclass
class TrainResult:
    run_dir: str
    state: str  # "finished", "early_stopped" or "stopped"
    method: str
    step: int
    max_steps: int
    output: str  # the adapter or model folder
    best_eval_loss: float | None = None
    ppl_before: float | None = None  # both on the same fixed validation sample
    ppl_after: float | None = None
    notices: list[str] = field(default_factory=list)
    full_eval_loss: float | None = None  # on every held-out sequence, when asked for
    full_ppl: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def run_training(job: JobConfig, *, resume: bool = False, on_text: Callable[[str], None] | None = None,
                 on_progress: Callable[[float, str], None] | None = None,
                 on_event: Callable[[dict], None] | None = None, cancel: CancelToken | None = None,
                 threads: int | None = None, suggest_steps: bool = False) -> TrainResult:
    """Train ``job`` (or continue it from its last checkpoint); return where the result is.

    ``threads``: CPU threads for torch during the run (None: torch's default, every core).
    ``suggest_steps``: the steps and evaluation interval follow the data's size and the hardware
    (engine/finetune/defaults.py, as the window suggests them) instead of the job's epochs.
    """
    if threads:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        _FIXED_THREADS.append(threads)  # the caller chose: no measuring of thread counts
        try:
            return run_training(job, resume=resume, on_text=on_text, on_progress=on_progress, on_event=on_event,
                                cancel=cancel, suggest_steps=suggest_steps)
        finally:
            _FIXED_THREADS.pop()
            torch.set_num_threads(previous)
    on_progress = on_progress or (lambda f, m: None)
    cancel = cancel or CancelToken()
    run_dir = Path(job.out_dir)
    checkpoint = _prepare_folder(run_dir, resume)
    if resume and checkpoint is None:
        notice = ("The run stopped before its first complete checkpoint: starting it again from step 0 "
                  "with the same job.")
        if on_text:
            on_text(notice + "\n")
        on_progress(0.0, notice)
    stop_file = run_dir / STOP_FILE
    stop_file.unlink(missing_ok=True)
    with _watch_stop_file(stop_file, cancel):
        try:
            return _run(job, checkpoint, on_text, on_progress, on_event, cancel, suggest_steps)
        except BaseException as exc:
            _mark_ended(run_dir, exc)
            raise


def _mark_ended(run_dir: Path, exc: BaseException) -> None:
    """A run that ends with an error says so in its status (stopped before training began: 'stopped')."""
    from engine.finetune.runlog import read_status

    if not is_main_process() or read_status(run_dir).get("state") != "running":
        return
    state = "stopped" if isinstance(exc, (CancelledError, KeyboardInterrupt)) else "failed"
    RunLog(run_dir).update(state=state, message=str(exc) or type(exc).__name__)


class _watch_stop_file:
    """While training, a STOP file in the run folder sets the cancel token (polled twice a second)."""

    def __init__(self, path: Path, cancel: CancelToken) -> None:
        import threading

        self.path, self.cancel, self.done = path, cancel, threading.Event()
        self.thread = threading.Thread(target=self._poll, name="hearth-stop-file", daemon=True)

    def _poll(self) -> None:
        while not self.done.wait(0.5):
            if self.path.exists():
                self.cancel.cancel()
                return

    def __enter__(self) -> "_watch_stop_file":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.path.unlink(missing_ok=True)


def _run(job: JobConfig, checkpoint: Path | None, on_text, on_progress, on_event, cancel: CancelToken,
         suggest_steps: bool = False) -> TrainResult:
    resume = checkpoint is not None
    run_dir = Path(job.out_dir)
    job, memory_notice = _fit_to_memory(job)
    on_progress(0.0, "Loading the base model…")
    model, tokenizer, context = _load_base(job)
    cancel.raise_if_cancelled()
    from engine.finetune.data import build_dataset
    from engine.finetune.data import coverage_text
    from engine.finetune.validation import sample_of

    chosen = {"job": job}

    def plan(estimate: dict):
        if suggest_steps and checkpoint is None:
            chosen["job"] = with_suggested_steps(chosen["job"], estimate)
        return run_budget(chosen["job"], estimate)

    data = build_dataset(job.data, tokenizer, max_context=context, cancel=cancel, plan=plan,
                         on_progress=on_progress)
    job = chosen["job"]
    validation = _validation_plan(job, data.stats)
    data.val = sample_of(data.val, validation.sample, job.data.seed)
    batch = min(job.train.batch_size, len(data.train))
    steps = steps_for(job, data.stats["train_examples"], batch)
    per_step = batch * job.train.grad_accum * world_size()
    data.stats.update(val_sample=validation.sample, eval_share=round(validation.share, 3),
                      validation=validation.describe(),
                      coverage=coverage_text(data.stats, steps, per_step) if job.train.max_steps else "")
    # Only now the run folder is made: a job refused for its data leaves nothing behind.
    _make_folder(run_dir)
    log = RunLog(run_dir, on_event=on_event, main=is_main_process())
    if is_main_process():
        job.save()
    notices = list(data.notices) + ([memory_notice] if memory_notice else [])
    batch = _fit_batch(job, len(data.train), notices)
    model = _prepare_model(model, job)
    trainer, max_steps = _build_trainer(job, model, tokenizer, data, batch, log, on_progress, cancel, resume,
                                        adapt_threads=not _FIXED_THREADS)
    start_step = _step_of(checkpoint) if checkpoint else 0
    log.truncate_after(start_step)  # a run started again from step 0 forgets its earlier events
    log.start(method=job.train.method, max_steps=max_steps, step=start_step, message="",
              train_examples=data.stats["train_examples"], val_examples=data.stats["val_examples"],
              notices=notices)
    log.event({"type": "start", "step": start_step, "max_steps": max_steps, "resume": bool(checkpoint),
               "stats": data.stats, "notices": notices, "precision": _precision_label(model),
               "skipped": [k.to_dict() for k in data.skipped]})
    for notice in notices:
        if on_text:
            on_text(notice + "\n")
    state = _train(trainer, checkpoint, log, job, batch, cancel)
    return _finish(trainer, tokenizer, job, log, state, max_steps, notices, data, on_progress, cancel)


def _fit_to_memory(job: JobConfig) -> tuple[JobConfig, str]:
    """Refuse what cannot fit before loading it (an unreadable model folder is left to _load_base)."""
    from engine.errors import OutOfMemoryError
    from engine.finetune.estimate import fit_to_memory

    try:
        return fit_to_memory(job)
    except OutOfMemoryError:
        raise
    except Exception:  # noqa: BLE001 - no config or weights to count: loading will say what is wrong
        return job, ""


def with_suggested_steps(job: JobConfig, estimate: dict) -> JobConfig:
    """The job with the steps and evaluation interval the window would suggest for this data."""
    from dataclasses import replace

    import torch

    from engine.finetune.defaults import suggest

    s = suggest(job.train, estimate, gpu=torch.cuda.is_available() and job.train.device != "cpu")
    return job.with_(train=replace(job.train, max_steps=s.max_steps, epochs=s.epochs, eval_steps=s.eval_steps,
                                   save_steps=s.save_steps))


def run_budget(job: JobConfig, estimate: dict, plans: dict | None = None):
    """The sequences this job reads: all training data for a run in epochs, what ``max_steps`` use
    otherwise; the validation sample (or all of it with ``eval_all`` or a final full evaluation)."""
    from engine.finetune.data import Budget

    batch = min(job.train.batch_size, max(1, estimate["train_examples"] // world_size()))
    steps = steps_for(job, estimate["train_examples"], batch)
    plan = _validation_plan(job, {**estimate, "estimated": True}, batch=batch, steps=steps)
    if plans is not None:
        plans["validation"] = plan
    train = steps * batch * job.train.grad_accum * world_size() if job.train.max_steps else None
    val = None if job.train.eval_all else plan.sample
    return Budget(train=train, val=val)


def _validation_plan(job: JobConfig, stats: dict, *, batch: int | None = None, steps: int | None = None):
    from engine.finetune.validation import plan_validation

    batch = batch or min(job.train.batch_size, max(1, stats["train_examples"] // world_size()))
    steps = steps or steps_for(job, stats["train_examples"], batch)
    return plan_validation(job.train, seq_len=job.data.seq_len, steps=steps, batch=batch,
                           held_out=stats.get("val_examples", 0), world=world_size(),
                           estimated=bool(stats.get("estimated")))


def _prepare_folder(run_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from; for a new run, check the folder is free (it is made once the data is).

    A run killed before its first complete checkpoint resumes from step 0: its job is known, and
    nothing of it is worth keeping but the job (half-written checkpoints are removed).
    """
    if resume:
        checkpoint = last_checkpoint(run_dir)
        if checkpoint is None:
            if not (run_dir / "job.json").is_file():
                raise RunNotFoundError(f"{run_dir}: there is no run to resume here (no job.json). Start a new run.")
            if is_main_process():
                _remove_partial_checkpoints(run_dir)
        return checkpoint
    if is_main_process() and run_dir.exists() and any(run_dir.iterdir()):
        raise TrainingError(f"{run_dir} already holds a run. Resume it, or choose another name.")
    return None


def _make_folder(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"Cannot create the run folder {run_dir}: {exc.strerror or exc}") from exc


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint that was saved completely (the Trainer writes trainer_state.json last)."""
    folder = Path(run_dir) / CHECKPOINTS
    complete = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()] \
        if folder.is_dir() else []
    return max(complete, key=_step_of, default=None)


def _step_of(checkpoint: Path) -> int:
    try:
        return int(Path(checkpoint).name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _load_base(job: JobConfig) -> tuple[Any, Any, int]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.chat_template import prepare_tokenizer
    from engine.loader import check_model_folder, context_length_of

    folder = Path(job.base_model)
    from engine.gguf.full_model import build_full_model, gguf_tokenizer, is_gguf

    if is_gguf(folder):  # a GGUF base: its full-precision model, built for training (estimate checked first)
        tokenizer, context = gguf_tokenizer(folder)
        try:
            model = build_full_model(folder, dtype=_dtype(job, torch))
        except (torch.OutOfMemoryError, MemoryError) as exc:
            raise OutOfMemoryError(f"Not enough memory to load {folder.name} for training.") from exc
        model.config.use_cache = False
        return model, prepare_tokenizer(tokenizer), context
    if not folder.is_dir():
        raise ModelLoadError(folder, "the base model must be a model folder or a .gguf file.")
    check_model_folder(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=_dtype(job, torch), local_files_only=True,
                                                     attn_implementation="sdpa")
    except (torch.OutOfMemoryError, MemoryError) as exc:
        raise OutOfMemoryError(f"Not enough memory to load {folder.name} for training.") from exc
    except Exception as exc:  # transformers raises many types here
        raise ModelLoadError(folder, f"{type(exc).__name__}: {exc}") from exc
    prepare_tokenizer(tokenizer)
    model.config.use_cache = False
    return model, tokenizer, context_length_of(model.config, tokenizer)


def _dtype(job: JobConfig, torch) -> Any:
    """bfloat16 for a LoRA base where the hardware computes it natively, else float32.

    LoRA's base weights are frozen: held in bf16 they halve the memory and run the matmuls on the
    CPU's bf16 units (AVX-512 BF16 / AMX), while peft keeps the trainable adapter weights, their
    gradients and AdamW state in float32 (its ``autocast_adapter_dtype``), the "fp32 master copy".
    On a CPU only the matmuls then run in bf16; activations, norms, attention and the loss are
    float32 (engine/finetune/mixed.py, applied in _prepare_model). Full fine-tuning keeps float32
    weights (a GPU adds bf16 autocast, see _build_trainer).
    """
    if use_bf16_base(job):
        return torch.bfloat16
    return torch.float32


def use_bf16_base(job: JobConfig) -> bool:
    import torch

    t = job.train
    if t.method != "lora" or t.precision == "fp32":
        return False
    if t.precision == "bf16":
        return True
    if torch.cuda.is_available() and t.device != "cpu":
        return torch.cuda.is_bf16_supported()
    return bf16_cpu()


def bf16_cpu() -> bool:
    """Whether this CPU has native bf16 arithmetic (oneDNN checks for AVX-512 BF16 or AMX)."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def mixed_precision(job: JobConfig) -> bool:
    """Whether LoRA trains with bf16 matmuls and float32 everything else (engine/finetune/mixed.py):
    a bf16 base on a CPU. On a GPU the bf16 base runs under the Trainer's bf16 autocast instead."""
    return use_bf16_base(job) and not _on_gpu(job)


def _precision_label(model: Any) -> str:
    import torch

    base = next(model.parameters()).dtype
    return "bf16 base, fp32 adapter" if base == torch.bfloat16 else "fp32"


def _fit_batch(job: JobConfig, train_examples: int, notices: list[str]) -> int:
    per_step = job.train.batch_size * world_size()
    if train_examples < per_step:
        batch = max(1, train_examples // world_size())
        notices.append(f"The training set has only {train_examples} sequences, fewer than one batch of "
                       f"{per_step}; the batch size was lowered to {batch}.")
        return batch
    return job.train.batch_size


def _prepare_model(model: Any, job: JobConfig) -> Any:
    from transformers import set_seed

    set_seed(job.train.seed)
    t = job.train
    if t.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if t.method == "full":
        return model
    from peft import LoraConfig, get_peft_model

    from engine.finetune import mixed

    targets = t.target_modules[0] if t.target_modules == ("all-linear",) else list(t.target_modules)
    config = LoraConfig(r=t.lora_rank, lora_alpha=t.lora_alpha, lora_dropout=t.lora_dropout,
                        target_modules=targets, task_type="CAUSAL_LM")
    if mixed_precision(job):
        mixed.to_mixed_precision(model)  # bf16 weights, float32 activations: before peft wraps the Linears
    try:
        model = get_peft_model(model, config)
    except ValueError as exc:  # e.g. a target module name that this model does not have
        raise TrainingError(f"LoRA could not be applied: {exc}") from exc
    if not _on_gpu(job):  # the CPU's costs (bench/README.md, issue #14); a GPU keeps peft's own layers
        if mixed.lean_heap_wanted(*_memory_need(model, job), t.gradient_checkpointing):
            mixed.return_freed_memory()
        mixed.share_lora_dropout(model)
        mixed.fuse_lora_forward(model)
    if t.gradient_checkpointing:
        model.enable_input_require_grads()
    return model


def _on_gpu(job: JobConfig) -> bool:
    import torch

    return torch.cuda.is_available() and job.train.device != "cpu"


def _memory_need(model: Any, job: JobConfig) -> tuple[int, int]:
    """The estimated bytes of training ``model`` (loaded) and the memory there would be without its weights."""
    from engine.finetune.estimate import _available_memory, memory_needed

    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    need = memory_needed(job, sum(p.numel() for p in params), trainable, model.config.to_dict())
    free = _available_memory()
    return need, free and free + sum(p.numel() * p.element_size() for p in params)


def steps_for(job: JobConfig, train_examples: int, batch: int) -> int:
    per_step = batch * job.train.grad_accum * world_size()
    if job.train.max_steps:
        return job.train.max_steps
    return max(1, math.ceil(job.train.epochs * math.ceil(train_examples / per_step)))


def _build_trainer(job, model, tokenizer, data, batch, log, on_progress, cancel, resume, adapt_threads=True):
    import torch
    from transformers import EarlyStoppingCallback, TrainingArguments

    from engine.finetune.baseline import BaselineCallback, deferred
    from engine.finetune.callbacks import CancelCallback, EpochCallback, ReportCallback, SampleCallback
    from engine.finetune.data import Collator
    from engine.finetune.trainer import HearthTrainer

    t = job.train
    max_steps = steps_for(job, len(data.train), batch)
    has_val = data.val is not None
    # LoRA: the loss before training is measured after step 1 with the adapter off (the same numbers), so
    # the first step does not wait for it (engine/finetune/baseline.py)
    baseline = deferred(job, has_val=has_val, resume=resume)
    cuda = torch.cuda.is_available() and t.device != "cpu"
    args = TrainingArguments(
        output_dir=str(Path(job.out_dir) / CHECKPOINTS), per_device_train_batch_size=batch,
        per_device_eval_batch_size=batch, gradient_accumulation_steps=t.grad_accum, max_steps=max_steps,
        learning_rate=t.learning_rate, lr_scheduler_type=t.schedule,
        warmup_steps=math.ceil(t.warmup_ratio * max_steps), weight_decay=t.weight_decay,
        eval_strategy="steps" if has_val else "no", eval_steps=t.eval_steps,
        eval_on_start=has_val and not resume and not baseline,
        save_strategy="steps", save_steps=t.save_steps, save_total_limit=2,
        load_best_model_at_end=has_val, metric_for_best_model="eval_loss" if has_val else None,
        greater_is_better=False if has_val else None, logging_steps=max(1, max_steps // 200),
        report_to="none", disable_tqdm=True, seed=t.seed, data_seed=job.data.seed, use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(), remove_unused_columns=False, dataloader_num_workers=0,
        ddp_backend=None if cuda or world_size() == 1 else "gloo", log_level="warning", save_only_model=False)
    tokens_per_seq = (data.stats["train_tokens"] / max(1, data.stats["train_examples"]))
    tokens_per_step = int(min(tokens_per_seq, job.data.seq_len) * batch * t.grad_accum * world_size())
    callbacks = [CancelCallback(cancel), EpochCallback(data.train), ReportCallback(log, on_progress, tokens_per_step),
                 SampleCallback(log, t.sample_prompts, t.sample_max_tokens)]
    if has_val and t.patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=t.patience))
    if not cuda and adapt_threads and torch.get_num_threads() > 1:
        from engine.finetune.callbacks import ThreadCallback

        callbacks.append(ThreadCallback(torch.get_num_threads()))
    trainer = HearthTrainer(model=model, args=args, train_dataset=data.train, eval_dataset=data.val,
                            data_collator=Collator(tokenizer.pad_token_id), processing_class=tokenizer,
                            callbacks=callbacks, l1=t.l1)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # progress goes to on_progress and events, not stdout
    if baseline:
        trainer.add_callback(BaselineCallback(trainer, log, t.sample_prompts, t.sample_max_tokens))
    return trainer, max_steps


def _train(trainer, checkpoint: Path | None, log: RunLog, job: JobConfig, batch: int, cancel: CancelToken) -> str:
    import torch

    from engine.finetune.callbacks import StopTraining

    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except StopTraining:  # stopped during an evaluation: keep a last checkpoint of the finished steps
        if trainer.state.global_step > (_step_of(checkpoint) if checkpoint else 0):
            trainer._save_checkpoint(trainer.model, trial=None)
        return "stopped"
    except (torch.OutOfMemoryError, MemoryError) as exc:
        _fail(log, "out of memory")
        raise OutOfMemoryError(_oom_message(job, batch)) from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            _fail(log, "out of memory")
            raise OutOfMemoryError(_oom_message(job, batch)) from exc
        raise
    except OSError as exc:
        _remove_partial_checkpoints(Path(job.out_dir))
        good = last_checkpoint(Path(job.out_dir))
        kept = f"The last good checkpoint ({good.name}) is kept. " if good else ""
        why = "The disk is full" if exc.errno == errno.ENOSPC else f"Saving failed ({exc.strerror or exc})"
        _fail(log, why)
        raise TrainingError(f"{why} while saving a checkpoint in {job.out_dir}. {kept}"
                            "Free some space, then Resume.") from exc
    except CancelledError:
        return "stopped"
    if cancel.cancelled:
        return "stopped"
    if trainer.state.global_step < trainer.state.max_steps:
        return "early_stopped"
    return "finished"


def _oom_message(job: JobConfig, batch: int) -> str:
    smaller = max(1, batch // 2)
    return (f"Out of memory with batch size {batch} and sequence length {job.data.seq_len}. Try batch size "
            f"{smaller} with gradient accumulation {job.train.grad_accum * 2} (the same effective batch), "
            f"or a shorter sequence length, or LoRA instead of full fine-tuning.")


def _fail(log: RunLog, message: str) -> None:
    log.update(state="failed", message=message)
    log.event({"type": "end", "state": "failed", "message": message})


def _remove_partial_checkpoints(run_dir: Path) -> None:
    folder = run_dir / CHECKPOINTS
    for p in folder.glob("checkpoint-*") if folder.is_dir() else []:
        if not (p / "trainer_state.json").is_file():
            shutil.rmtree(p, ignore_errors=True)


def _finish(trainer, tokenizer, job: JobConfig, log: RunLog, state: str, max_steps: int,
            notices: list[str], data=None, on_progress=None, cancel=None) -> TrainResult:
    if state == "stopped" and trainer.state.best_model_checkpoint and hasattr(trainer, "_load_best_model"):
        trainer._load_best_model()  # the Trainer does this itself only when the loop ends normally
    target = Path(job.out_dir) / ("adapter" if job.train.method == "lora" else "model")
    save_atomic(trainer, tokenizer, target)
    # the step-0 evaluation measured the base: a run stopped before its first evaluation has no "after"
    evals = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h and h.get("step", 0) > 0]
    best = trainer.state.best_metric if trainer.state.best_metric is not None else (min(evals) if evals else None)
    before = log.status.get("ppl_before")
    if before is None and any("eval_loss" in h for h in trainer.state.log_history):
        first = next(h for h in trainer.state.log_history if "eval_loss" in h)
        before = math.exp(first["eval_loss"]) if first.get("step", 0) == 0 else None
    result = TrainResult(str(job.out_dir), state, job.train.method, trainer.state.global_step, max_steps,
                         str(target), best, before, math.exp(best) if best is not None and best < 50 else None,
                         notices)
    if job.train.final_full_eval and data is not None and data.val is not None and state != "stopped":
        result.full_eval_loss = _full_evaluation(trainer, data, on_progress, cancel)
        result.full_ppl = math.exp(result.full_eval_loss) if result.full_eval_loss < 50 else None
        log.event({"type": "full_eval", "step": result.step, "loss": result.full_eval_loss,
                   "perplexity": result.full_ppl})
    log.update(state=state, step=result.step, output=str(target), best_eval_loss=best, ppl_before=before,
               ppl_after=result.ppl_after, message="")
    log.event({"type": "end", **result.to_dict()})
    return result


def _full_evaluation(trainer, data, on_progress, cancel) -> float:
    """The validation loss of the final model on every held-out sequence (not only the run's sample)."""
    from engine.finetune.callbacks import SampleCallback

    full = data.full_validation(cancel=cancel, on_progress=on_progress)
    trainer.remove_callback(SampleCallback)  # the samples of this model were taken at its last evaluation
    if on_progress is not None:
        on_progress(1.0, f"Full validation on all {len(full):,} held-out sequences…")
    metrics = trainer.evaluate(eval_dataset=full, metric_key_prefix="full")
    return float(metrics["full_loss"])


def save_atomic(trainer, tokenizer, target: Path) -> None:
    """Save the model to ``target`` through a temporary folder: a failed save never leaves half a result."""
    if not trainer.is_world_process_zero():
        trainer.save_model(str(target))  # collective in some set-ups; only rank 0 writes
        return
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise TrainingError(f"Could not save the result in {target}: {why}. The checkpoints are kept; "
                            "free some space, then Resume to save again.") from exc
