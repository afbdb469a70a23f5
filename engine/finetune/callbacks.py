"""Trainer callbacks: stop on the cancel token, report progress and losses, sample at evaluation.

Events are plain dicts handed to ``on_event`` and appended to the run's
``events.jsonl`` (only on the main process), so a window opened later can redraw
the loss curves of a run it did not start.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from transformers import TrainerCallback

from engine.cancel import CancelToken
from engine.finetune.progress import format_duration  # noqa: F401 - also imported from here
from engine.finetune.runlog import RunLog


class StopTraining(Exception):
    """Raised inside evaluation when Stop is pressed (evaluation cannot be asked to stop)."""


class CancelCallback(TrainerCallback):
    """Stop after the current step when the token is set; the Trainer then saves a last checkpoint."""

    def __init__(self, cancel: CancelToken) -> None:
        self.cancel = cancel
        self.stopped = False

    def on_step_end(self, args, state, control, **kwargs):
        if self.cancel.cancelled:
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True
        return control

    def on_prediction_step(self, args, state, control, **kwargs):
        if self.cancel.cancelled:
            self.stopped = True
            raise StopTraining()


class EpochCallback(TrainerCallback):
    """Tell the packed text which epoch it is, so the random offset moves."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(int(state.epoch or 0))


class ReportCallback(TrainerCallback):
    """Progress (step, epoch, tokens/s, time left), train and validation loss as events."""

    def __init__(self, log: RunLog, on_progress: Callable[[float, str], None], tokens_per_step: int) -> None:
        self.log = log
        self.on_progress = on_progress
        self.tokens_per_step = tokens_per_step
        self.started = 0.0
        self.first_step = 0
        self.step_began = 0.0
        self.step_seconds: list[float] = []  # each training step's time (evaluation and sampling left out)

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        self.first_step = state.global_step

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_began = time.monotonic()

    def tokens_per_s(self) -> float:
        """Training speed over the steps so far, the first one left out once there are others: it warms up
        the thread pool, the allocator and the kernels (~1.8x a later step here), and a short run's figure
        was mostly that step (bench-finetune leaves it out too)."""
        steady = self.step_seconds[1:] or self.step_seconds
        return self.tokens_per_step * len(steady) / max(1e-6, sum(steady))

    def on_step_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.step_seconds.append(time.monotonic() - self.step_began)
        done = state.global_step - self.first_step
        elapsed = max(1e-6, time.monotonic() - self.started)
        left = elapsed / max(1, done) * (state.max_steps - state.global_step)  # includes evaluations
        tok_s = self.tokens_per_s()
        self.log.progress = {"step": state.global_step, "max_steps": state.max_steps,
                             "epoch": round(state.epoch or 0.0, 3), "tokens_per_s": round(tok_s, 1),
                             "eta_s": round(left, 1)}
        self.on_progress(state.global_step / max(1, state.max_steps),
                         f"Step {state.global_step}/{state.max_steps} · epoch {state.epoch or 0:.2f} · "
                         f"{tok_s:,.0f} tok/s · {format_duration(left)} left")

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if not state.is_world_process_zero:
            return
        self.eval_batches = getattr(self, "eval_batches", 0) + 1
        if self.eval_batches == 1:
            self.eval_began = time.monotonic()
        total = len(eval_dataloader) if eval_dataloader is not None else 0
        what = "before training" if state.global_step == 0 else f"at step {state.global_step}"
        elapsed = time.monotonic() - self.eval_began
        # the first batch includes start-up costs; from the second on, time per batch is steady
        left = (f" · about {format_duration(elapsed / (self.eval_batches - 1) * (total - self.eval_batches))} left"
                if self.eval_batches > 1 and total > self.eval_batches else "")
        self.on_progress(state.global_step / max(1, state.max_steps),
                         f"Measuring the validation loss {what}: batch {self.eval_batches}/{total}{left}")

    def on_evaluate(self, args, state, control, **kwargs):
        self.eval_batches = 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        step = state.global_step
        if "loss" in logs:
            self.log.event({"type": "train", "step": step, "epoch": round(state.epoch or 0.0, 3),
                            "loss": float(logs["loss"]), "lr": float(logs.get("learning_rate", 0.0)),
                            **{k: self.log.progress.get(k) for k in ("tokens_per_s", "eta_s")}})
        if "eval_loss" in logs:
            loss = float(logs["eval_loss"])
            self.log.event({"type": "eval", "step": step, "loss": loss, "perplexity": _ppl(loss)})


FIRST_TRIAL = 5  # timed steps on every thread before one thread is tried


class ThreadCallback(TrainerCallback):
    """Threads per training step chosen by measuring (engine/fastpath/threads.py): on a shared CPU one
    descheduled thread stalls every parallel op, and one thread can beat all of them; on an idle one
    more threads win. Both are timed, the faster kept, the other re-tried now and then.

    The first step warms up the thread pool, the allocator and the kernels (~1.8x a later step): it runs on
    every thread and is not timed, else whichever count it tried looked worse than it is. Then every
    thread is timed first, one thread second. A machine whose *other* programs keep every core busy
    (the load average less this run's own threads) gets one thread without trials."""

    def __init__(self, most: int) -> None:
        from engine.fastpath.threads import ThreadChooser

        self.chooser = ThreadChooser(most, explore_every=20)
        self.threads, self.began, self.most = most, 0.0, most
        self.warm, self.timed = False, 0

    def on_train_begin(self, args, state, control, **kwargs):
        import torch

        # The first evaluation runs before any step is timed: judge by the machine's load meanwhile (this
        # process was reading and tokenizing on one thread).
        self.threads = 1
        torch.set_num_threads(decode_threads(self.most, own=1))

    def on_step_begin(self, args, state, control, **kwargs):
        import torch

        if decode_threads(self.most, own=self.threads) == 1:
            self.threads = 1  # a trial step with every thread took minutes at a load of ~10
        elif not self.warm:
            self.threads = self.most
        elif self.timed < FIRST_TRIAL:
            self.threads = self.most  # the likely winner first: a short run ends before the one-thread trial
        else:
            self.threads = self.chooser.pick()
        torch.set_num_threads(self.threads)
        self.began = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.warm:
            self.chooser.record(self.threads, time.monotonic() - self.began)
            self.timed += 1
        self.warm = True

    def on_train_end(self, args, state, control, **kwargs):
        import torch

        torch.set_num_threads(self.chooser.best())  # evaluation after training runs at the best count


class SampleCallback(TrainerCallback):
    """Greedy answers to a few fixed prompts after each evaluation, to see what the model learns."""

    def __init__(self, log: RunLog, prompts: tuple[str, ...], max_new_tokens: int) -> None:
        self.log = log
        self.prompts = prompts
        self.max_new_tokens = max_new_tokens

    def on_evaluate(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not state.is_world_process_zero or not self.prompts or model is None or processing_class is None:
            return
        samples = [[p, generate_sample(model, processing_class, p, self.max_new_tokens)] for p in self.prompts]
        self.log.event({"type": "samples", "step": state.global_step, "samples": samples})


def generate_sample(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int) -> str:
    import torch

    was_training = model.training
    model.eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(decode_threads(threads, own=threads))  # this process was training on them
    try:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
        device = next(model.parameters()).device
        with torch.no_grad():
            # use_cache: training turns the model's cache off, and without it each new token recomputes the
            # whole answer (measured: 7 minutes for two 40-token samples of the default model on 2 busy cores)
            out = model.generate(input_ids=ids.to(device), attention_mask=torch.ones_like(ids).to(device),
                                 max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    finally:
        torch.set_num_threads(threads)
        if was_training:
            model.train()


def decode_threads(most: int, own: float = 0.0) -> int:
    """Threads for generating samples: token-by-token decoding is ~15 small ops per layer, each waiting for
    all its threads; on a CPU busier than it has cores one thread is several times faster
    (bench/README.md, the decode loop's measurements).

    ``own``: the threads this process itself kept busy lately (training's), taken off the load average.
    Counting them made a run on both of 2 cores push the load to ~2 within a minute and drop itself to one
    thread (half the speed), then climb back: the load of the *other* programs is what matters."""
    import os

    try:
        busy = os.getloadavg()[0] - own >= (os.cpu_count() or 1)
    except OSError:  # not on every system
        busy = False
    return 1 if busy else most


def _ppl(loss: float) -> float:
    return math.exp(loss) if loss < 50 else float("inf")


