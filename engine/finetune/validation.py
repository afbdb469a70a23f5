"""Validation sized to the run: a fixed, seeded sample of the held-out sequences.

Every evaluation (one before training, then one every ``eval_steps``) runs forward
passes only: ~2·params FLOPs per token, against ~6·params (full) or ~4·params
(LoRA: no weight gradients for the frozen base) per trained token. The sample is
sized so all evaluations together cost at most ``EVAL_SHARE`` of the training
compute, never fewer than a minimum that keeps the loss estimate steady, and never
more than ``MAX_SEQUENCES``. The same sample serves every evaluation, so the curve
and the perplexity before/after compare like with like. ``eval_all`` evaluates on
every held-out sequence instead.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from engine.finetune.config import TrainConfig

EVAL_SHARE = 0.15
MIN_SEQUENCES = 16
MIN_TOKENS = 8_192  # short sequences: more of them, so the loss is still measured on ~8 k tokens
MAX_SEQUENCES = 2048


@dataclass(frozen=True)
class ValidationPlan:
    sample: int  # sequences each evaluation runs
    held_out: int  # sequences held out in all
    evaluations: int
    share: float  # all evaluations' compute / the training compute
    estimated: bool = False  # held_out estimated from the sizes (the held-out files were not all read)

    def describe(self) -> str:
        if not self.held_out:
            return "no validation (nothing held out)"
        about = "~" if self.estimated else ""
        what = "all" if self.sample >= self.held_out else f"{self.sample:,} of"
        return (f"validating on {what} {about}{self.held_out:,} held-out sequences "
                f"({self.evaluations} evaluation{'s' if self.evaluations != 1 else ''} ≈ {100 * self.share:.0f} % "
                "of the training compute)")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def plan_validation(train: TrainConfig, *, seq_len: int, steps: int, batch: int, held_out: int,
                    world: int = 1, estimated: bool = False) -> ValidationPlan:
    if held_out <= 0:
        return ValidationPlan(0, 0, 0, 0.0)
    evaluations = 1 + steps // train.eval_steps
    per_token = 6 if train.method == "full" else 4
    trained = steps * batch * train.grad_accum * world  # sequences trained on
    if train.eval_all:
        sample = held_out
    else:
        affordable = int(EVAL_SHARE * per_token * trained / (2 * evaluations))
        floor = max(MIN_SEQUENCES, math.ceil(MIN_TOKENS / seq_len))
        sample = min(held_out, MAX_SEQUENCES, max(floor, affordable))
    share = 2 * evaluations * sample / max(1, per_token * trained)
    return ValidationPlan(sample, held_out, evaluations, share, estimated)


def sample_of(dataset, size: int, seed: int):
    """A fixed, seeded choice of ``size`` sequences (the dataset itself when it is no bigger)."""
    from torch.utils.data import Subset

    if dataset is None or len(dataset) <= size:
        return dataset
    return Subset(dataset, sorted(random.Random(seed).sample(range(len(dataset)), size)))
