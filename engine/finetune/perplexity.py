"""Perplexity of a model on text: exp(mean next-token loss), with overlapping windows.

Windows of ``seq_len`` tokens advance by ``stride``; only the tokens new in each
window are scored, so each token is predicted once with up to ``seq_len - stride``
tokens of context (the method of the transformers perplexity guide).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from engine.cancel import CancelToken
from engine.errors import InvalidConfigError


@dataclass
class PerplexityResult:
    perplexity: float
    loss: float  # mean negative log-likelihood per token (nats)
    tokens: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def perplexity(model: Any, tokenizer: Any, text: str, *, seq_len: int = 512, stride: int | None = None,
               on_progress: Callable[[float, str], None] | None = None,
               cancel: CancelToken | None = None) -> PerplexityResult:
    import torch

    stride = stride or max(1, seq_len // 2)
    if not 0 < stride <= seq_len:
        raise InvalidConfigError(f"stride must be between 1 and the window ({seq_len}), not {stride}")
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)  # (tokens,)
    if len(ids) < 2:
        raise InvalidConfigError("the text is too short to measure perplexity (fewer than 2 tokens)")
    device = next(model.parameters()).device
    total_nll, scored, prev_end = 0.0, 0, 0
    starts = list(range(0, len(ids) - 1, stride))
    model.eval()
    for n, begin in enumerate(starts):
        if cancel is not None:
            cancel.raise_if_cancelled()
        end = min(begin + seq_len, len(ids))
        window = ids[begin:end].unsqueeze(0).to(device)  # (1, window)
        labels = window.clone()
        labels[:, : max(0, prev_end - begin)] = -100  # already scored with more context
        with torch.no_grad():
            loss = model(input_ids=window, labels=labels).loss
        new = int((labels[:, 1:] != -100).sum())
        if new:
            total_nll += float(loss) * new
            scored += new
        prev_end = end
        if on_progress is not None:
            on_progress((n + 1) / len(starts), f"Window {n + 1}/{len(starts)}")
        if end == len(ids):
            break
    mean = total_nll / max(1, scored)
    return PerplexityResult(math.exp(mean) if mean < 50 else float("inf"), mean, scored)
