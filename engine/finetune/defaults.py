"""Settings that follow the data size and the hardware, before the user changes anything."""

from __future__ import annotations

from dataclasses import replace

from engine.finetune.config import TrainConfig


def suggest(train: TrainConfig, stats: dict, *, gpu: bool) -> TrainConfig:
    """Steps, batch and evaluation interval for this dataset on this machine.

    Small datasets get more epochs (and early stopping guards them); a CPU gets a
    small batch and a run capped at a few hundred steps, so a first try takes
    minutes, not hours. Evaluation about ten times per run draws a useful curve.
    """
    examples = max(1, stats.get("train_examples", 1))
    batch = 8 if gpu else 4
    batch = min(batch, examples)
    per_epoch = max(1, -(-examples // batch))
    epochs = 3.0 if examples < 2000 else 1.0
    steps = int(per_epoch * epochs)
    cap = 5000 if gpu else 300
    max_steps = steps if steps <= cap else cap
    eval_steps = max(5, max_steps // 10) if stats.get("val_examples") else max(10, max_steps // 5)
    lr = 2e-4 if train.method == "lora" else 2e-5
    return replace(train, batch_size=batch, epochs=epochs, max_steps=max_steps, eval_steps=eval_steps,
                   save_steps=eval_steps, learning_rate=lr)
