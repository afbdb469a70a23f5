"""The validation loss before training, measured after the first step so the first step need not wait for it.

A LoRA model with its adapter turned off *is* the base model (and a fresh adapter adds exactly zero), so
the loss and the sample answers "before training" are the same numbers whether they are measured before
step 1 or after it with ``disable_adapter()``. Measured after, the first training step starts as soon as
the data is ready: on 2 busy cores the first evaluation took longer than everything else before step 1.
Full fine-tuning changes the base itself and still evaluates before its first step.

The result is recorded as the evaluation at step 0: an ``eval`` and a ``samples`` event for step 0, and the
first entry of the trainer's log history (which the perplexity before/after reads).
"""

from __future__ import annotations

import math
from typing import Any

from transformers import TrainerCallback

from engine.finetune.config import JobConfig
from engine.finetune.runlog import RunLog


def deferred(job: JobConfig, *, has_val: bool, resume: bool) -> bool:
    """Whether this run measures its step-0 validation after the first step (a new LoRA run with validation)."""
    return has_val and not resume and job.train.method == "lora"


class BaselineCallback(TrainerCallback):
    """After the first optimizer step: the validation loss and samples of the base model, as step 0."""

    def __init__(self, trainer: Any, log: RunLog, prompts: tuple[str, ...], max_new_tokens: int) -> None:
        self.trainer, self.log = trainer, log
        self.prompts, self.max_new_tokens = prompts, max_new_tokens
        self.pending, self.done = False, False

    # Measured once step 1's loss is logged (so "step 1" is reported first), or at once when step 1 is not
    # logged (the flow callback, first in the list, has decided), and before any evaluation at step 1. It
    # was at step 2's beginning then, after the callbacks that time a step had started their clocks: the
    # evaluation counted in step 2's tokens/s and in ThreadCallback's choice.
    def on_step_end(self, args, state, control, **kwargs):
        self.pending = not self.done and state.global_step >= 1
        if self.pending and not control.should_log:
            self._measure(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.pending and logs and "loss" in logs:
            self._measure(state)

    def on_step_begin(self, args, state, control, **kwargs):
        if self.pending:
            self._measure(state)

    def on_train_end(self, args, state, control, **kwargs):
        if self.pending:
            self._measure(state)

    def _measure(self, state) -> None:
        self.pending, self.done = False, True
        loss, samples = measure_base(self.trainer, self.prompts, self.max_new_tokens)
        state.log_history.insert(0, {"eval_loss": loss, "step": 0, "epoch": 0.0})
        if state.is_world_process_zero:
            self.log.event({"type": "eval", "step": 0, "loss": loss,
                            "perplexity": math.exp(loss) if loss < 50 else float("inf")})
            if samples:
                self.log.event({"type": "samples", "step": 0, "samples": samples})


def measure_base(trainer: Any, prompts: tuple[str, ...] = (), max_new_tokens: int = 40) -> tuple[float, list]:
    """(validation loss, [[prompt, answer], ...]) of the model with its LoRA adapter off, on the run's fixed
    validation sample. Progress reads "before training" (the trainer's step is shown as 0 meanwhile)."""
    import torch

    from engine.finetune.callbacks import decode_threads, generate_sample

    state, model = trainer.state, trainer.model
    step, threads = state.global_step, torch.get_num_threads()
    # Threads chosen by measuring (ThreadCallback): step 1 may have been a trial on one thread, so evaluate
    # on what the machine's load suggests, as the evaluation before step 1 did. A fixed count stays.
    most = max([getattr(c, "most", 0) for c in trainer.callback_handler.callbacks])
    if most:
        torch.set_num_threads(decode_threads(most, own=threads))  # less step 1's own threads
    state.global_step = 0
    try:
        with model.disable_adapter():
            output = trainer.evaluation_loop(trainer.get_eval_dataloader(), "Validation before training",
                                             prediction_loss_only=True, metric_key_prefix="eval")
            samples = []
            if state.is_world_process_zero and trainer.processing_class is not None:
                samples = [[p, generate_sample(model, trainer.processing_class, p, max_new_tokens)] for p in prompts]
    finally:
        state.global_step = step
        torch.set_num_threads(threads)
        model.train()
        for callback in trainer.callback_handler.callbacks:  # its batch count restarts at each evaluation
            if hasattr(callback, "eval_batches"):
                callback.eval_batches = 0
    return float(output.metrics["eval_loss"]), samples
