"""Train the lab's Transformer from scratch on the user's files.

``train_lab(config, on_text=, on_progress=, cancel=, on_event=)`` is the whole run: read the files,
train a tokenizer, cut the token stream into windows, then the classic loop (forward, loss,
backward, clip, AdamW step) with a validation loss, a sample and a checkpoint every
``eval_every`` steps. The best model (lowest validation loss) is always in ``out_dir`` as a
transformers folder; ``out_dir/training/`` holds what resuming needs. Stopping (cancel, time limit,
early stopping) keeps everything and is reported in ``finish_reason``, not raised.

``on_event(dict)`` receives {"kind": "train", "step", "loss", "lr"} after every step and
{"kind": "eval", "step", "train_loss", "val_loss", "sample"} after every evaluation; the same
events are appended to ``training/log.jsonl``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from engine.cancel import CancelToken
from engine.lab.config import LabTrainConfig
from engine.lab.data import (encode_corpus, fixed_windows, mask_tokens, random_windows, read_corpus,
                             split_stream)
from engine.lab.errors import LabRunError
from engine.lab.estimate import check_fits, estimate, model_config_for

STATE_DIR, STATE_FILE, LOG_FILE, LAB_FILE = "training", "state.pt", "log.jsonl", "lab.json"
FINISHED, EARLY_STOPPED, TIME_LIMIT, CANCELLED = "done", "early_stopped", "time_limit", "cancelled"


@dataclass
class LabTrainResult:
    out_dir: str
    steps: int
    best_val_loss: float
    last_train_loss: float
    finish_reason: str  # one of FINISHED, EARLY_STOPPED, TIME_LIMIT, CANCELLED
    elapsed_s: float
    parameters: int
    notice: str = ""
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data.pop("history")
        return data


@dataclass
class _Run:
    """Everything one training run holds between steps."""

    config: LabTrainConfig
    out: Path
    tokenizer: Any
    model: Any
    device: torch.device
    train_ids: torch.Tensor  # (N_train,)
    val_ids: torch.Tensor  # (N_val,)
    optimizer: Any
    scheduler: Any
    generator: torch.Generator
    step: int = 0
    best_val: float = math.inf
    bad_evals: int = 0
    last_loss: float = math.nan
    history: list[dict] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def train_lab(config: LabTrainConfig, *, on_text: Callable[[str], None] | None = None,
              on_progress: Callable[[float, str], None] | None = None, cancel: CancelToken | None = None,
              on_event: Callable[[dict], None] | None = None) -> LabTrainResult:
    on_text = on_text or (lambda s: None)
    on_progress = on_progress or (lambda f, m="": None)
    on_event = on_event or (lambda e: None)
    cancel = cancel or CancelToken()
    run = _prepare(config, on_progress)
    config = run.config
    total = config.effective_steps
    for event in run.history:  # resuming: show the curve so far first
        on_event(event)
    on_text(f"Training {sum(p.numel() for p in run.model.parameters()):,} parameters on "
            f"{run.train_ids.numel():,} tokens ({run.val_ids.numel():,} held out), from step {run.step} to {total}.\n")
    start = time.perf_counter()
    first_step = run.step
    reason, evaluated_at = FINISHED, -1
    while run.step < total:
        if cancel.cancelled:
            reason = CANCELLED
            break
        if config.max_minutes and time.perf_counter() - start > config.max_minutes * 60:
            reason = TIME_LIMIT
            break
        run.last_loss = _train_step(run)
        event = {"kind": "train", "step": run.step, "loss": run.last_loss, "lr": run.scheduler.get_last_lr()[0]}
        _log(run, event, on_event)
        on_progress(run.step / total, f"step {run.step}/{total} · loss {run.last_loss:.3f}"
                                      f"{_time_left(start, first_step, run.step, total, config.max_minutes)}")
        if run.step % config.eval_every == 0 or run.step == total:
            evaluated_at = run.step
            if _evaluate(run, on_text, on_event):
                reason = EARLY_STOPPED
                break
    if evaluated_at != run.step and run.step > 0:
        _evaluate(run, on_text, on_event)  # stopped between evaluations: keep this progress too
    _write_lab_json(run, reason)
    return LabTrainResult(out_dir=str(run.out), steps=run.step, best_val_loss=run.best_val,
                          last_train_loss=run.last_loss, finish_reason=reason,
                          elapsed_s=time.perf_counter() - start,
                          parameters=sum(p.numel() for p in run.model.parameters()),
                          notice=" ".join(run.notices), history=run.history)


def _time_left(start: float, first_step: int, step: int, total: int, max_minutes: float) -> str:
    """ " · about 3 min left", from this run's own speed so far (and the time limit, if sooner)."""
    done = step - first_step
    elapsed = time.perf_counter() - start
    if done < 5:
        return ""
    left = elapsed / done * (total - step)
    if max_minutes:
        left = min(left, max(0.0, max_minutes * 60 - elapsed))
    return f" · about {left / 60:.0f} min left" if left >= 90 else f" · about {left:.0f} s left"


def _prepare(config: LabTrainConfig, on_progress) -> _Run:
    from engine.device import pick_device
    from engine.lab.hf_model import model_for

    out = Path(config.out_dir)
    state_path = out / STATE_DIR / STATE_FILE
    if config.resume:
        config = _resumed_config(config, out)
    elif (out / "config.json").exists() or (out / STATE_DIR).exists():
        if not config.overwrite:
            raise LabRunError(f"{out} already holds a lab model. Resume it, choose another folder, or "
                              f"choose to overwrite it.")
        for name in (LOG_FILE, STATE_FILE):  # starting over: the old run's log and checkpoint go
            (out / STATE_DIR / name).unlink(missing_ok=True)
    on_progress(0.0, "Reading the files…")
    corpus = read_corpus(config.files)
    tokenizer = _load_or_train_tokenizer(config, out, corpus.texts, on_progress)
    ids = encode_corpus(tokenizer, corpus.texts)
    train_ids, val_ids = split_stream(ids, config.effective_context, config.val_fraction,
                                      chars_per_token=corpus.characters / max(1, ids.numel()))
    est = estimate(config, vocab_size=len(tokenizer))
    check_fits(est, config.size)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    model = model_for(model_config_for(config, len(tokenizer))).to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.effective_lr,
                                  betas=(0.9, 0.95))
    from transformers import get_cosine_schedule_with_warmup

    scheduler = get_cosine_schedule_with_warmup(optimizer, min(config.warmup_steps, config.effective_steps // 10),
                                                config.effective_steps)
    generator = torch.Generator().manual_seed(config.seed)
    run = _Run(config, out, tokenizer, model, device, train_ids, val_ids, optimizer, scheduler, generator)
    run.notices.extend(corpus.notices)
    if corpus.skipped:
        run.notices.append(f"{len(corpus.skipped)} file(s) skipped (first: {corpus.skipped[0][0]}: "
                           f"{corpus.skipped[0][1]}).")
    if config.resume:
        _load_state(run, state_path)
    (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
    config.save(out / STATE_DIR / "run.json")
    tokenizer.save_pretrained(out)
    return run


def _resumed_config(config: LabTrainConfig, out: Path) -> LabTrainConfig:
    saved_path = out / STATE_DIR / "run.json"
    if not (out / STATE_DIR / STATE_FILE).is_file() or not saved_path.is_file():
        raise LabRunError(f"{out} holds no lab training run to resume (no {STATE_DIR}/{STATE_FILE}).")
    try:
        saved = LabTrainConfig.from_dict(json.loads(saved_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise LabRunError(f"{saved_path} cannot be read ({exc}).") from exc
    # The model's shape and tokenizer stay; how long to go on and on which files may change.
    return replace(saved, resume=True, files=config.files or saved.files,
                   max_steps=config.max_steps or saved.max_steps, max_minutes=config.max_minutes,
                   patience=config.patience, device=config.device)


def _load_or_train_tokenizer(config: LabTrainConfig, out: Path, texts: list[str], on_progress):
    if config.resume:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(out, local_files_only=True)
    from engine.lab.tokenizer import train_tokenizer

    on_progress(0.0, "Training the tokenizer…")
    return train_tokenizer(texts, config.tokenizer, config.vocab_size)


def _param_groups(model, weight_decay: float) -> list[dict]:
    """Weight decay on matrices (embeddings, projections) only; never on biases and LayerNorm gains."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_batch(run: _Run, ids: torch.Tensor, windows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs (B, T), labels (B, T)) on the run's device."""
    config = run.config
    if windows is None:
        windows = random_windows(ids, config.effective_batch, config.effective_context, run.generator)
    if config.objective == "clm":
        inputs, labels = windows, windows  # the model shifts: position t is scored on token t + 1
    else:
        tok = run.tokenizer
        inputs, labels = mask_tokens(windows, mask_id=tok.mask_token_id, vocab_size=len(tok),
                                     fraction=config.mask_fraction, generator=run.generator,
                                     protected=[tok.eos_token_id])
    return inputs.to(run.device), labels.to(run.device)


def _train_step(run: _Run) -> float:
    run.model.train()
    inputs, labels = make_batch(run, run.train_ids)
    loss = run.model(input_ids=inputs, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)  # tames the occasional huge gradient
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    return float(loss.item())


@torch.no_grad()
def validation_loss(run: _Run) -> float:
    run.model.eval()
    windows = fixed_windows(run.val_ids, run.config.effective_context, run.config.eval_batches * 4)
    eval_gen = torch.Generator().manual_seed(1234)  # same blanks every evaluation (masked LM)
    saved, run.generator = run.generator, eval_gen
    try:
        losses = [run.model(input_ids=i, labels=l).loss.item()
                  for i, l in (make_batch(run, run.val_ids, chunk) for chunk in windows.split(8))]
    finally:
        run.generator = saved
    return sum(losses) / len(losses)


def _evaluate(run: _Run, on_text, on_event) -> bool:
    """Validation loss, a sample, checkpoints. Returns True when early stopping says stop."""
    from engine.lab.sample import sample_text

    val = validation_loss(run)
    improved = val < run.best_val - 1e-4
    if improved:
        run.best_val, run.bad_evals = val, 0
        run.model.save_pretrained(run.out)  # the deliverable: always the best model so far
    else:
        run.bad_evals += 1
    sample = sample_text(run.model, run.tokenizer, run.val_ids, run.config, run.device)
    event = {"kind": "eval", "step": run.step, "train_loss": run.last_loss, "val_loss": val,
             "best": improved, "sample": sample}
    _log(run, event, on_event)
    mark = " (best so far, saved)" if improved else ""
    on_text(f"step {run.step}: train loss {run.last_loss:.3f}, validation loss {val:.3f}{mark}\n{sample}\n\n")
    _save_state(run)
    patience = run.config.patience
    if patience and run.bad_evals >= patience:
        run.notices.append(f"Stopped early: the validation loss did not improve in {patience} evaluations.")
        return True
    return False


def _log(run: _Run, event: dict, on_event) -> None:
    run.history.append(event)
    on_event(event)
    with open(run.out / STATE_DIR / LOG_FILE, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event) + "\n")


def _save_state(run: _Run) -> None:
    state = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
             "scheduler": run.scheduler.state_dict(), "generator": run.generator.get_state(),
             "step": run.step, "best_val": run.best_val, "bad_evals": run.bad_evals}
    path = run.out / STATE_DIR / STATE_FILE
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind


def _load_state(run: _Run, path: Path) -> None:
    try:
        state = torch.load(path, map_location=run.device, weights_only=True)
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        run.generator.set_state(state["generator"].cpu())  # map_location moved it; generators live on the CPU
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise LabRunError(f"The checkpoint {path} cannot be resumed ({exc}).") from exc
    run.step, run.best_val, run.bad_evals = state["step"], state["best_val"], 0
    log = path.parent / LOG_FILE
    if log.is_file():
        run.history = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_lab_json(run: _Run, reason: str) -> None:
    config = run.config
    info = {"objective": config.objective, "tokenizer": config.tokenizer, "size": config.size,
            "steps": run.step, "best_val_loss": run.best_val if math.isfinite(run.best_val) else None,
            "finish_reason": reason, "files": list(config.files),
            "parameters": sum(p.numel() for p in run.model.parameters())}
    (run.out / LAB_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
