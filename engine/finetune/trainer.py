"""``HearthTrainer``: transformers' Trainer plus an optional L1 penalty on the trainable weights."""

from __future__ import annotations

from transformers import Trainer


class HearthTrainer(Trainer):
    def __init__(self, *args, l1: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.l1 = l1

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                      num_items_in_batch=num_items_in_batch)
        if not self.l1 or not model.training:  # evaluation loss stays comparable across settings
            return result
        loss, outputs = result if return_outputs else (result, None)
        params = [p for p in model.parameters() if p.requires_grad]
        # The mean absolute weight, so the strength does not depend on the model's size.
        penalty = sum(p.abs().sum() for p in params) / max(1, sum(p.numel() for p in params))
        loss = loss + self.l1 * penalty
        return (loss, outputs) if return_outputs else loss
