"""Choose the next token from logits, as transformers' processors would.

Same order and the same rules as ``generate``: repetition penalty over the
prompt and the reply, then temperature, top-k, top-p and min-p, then a draw
from the torch generator that ``generate_ids`` seeds. With top-k on, top-p,
min-p and the draw run over the k candidates only (every other token is
already excluded), which avoids sorting the whole vocabulary every step.
"""

from __future__ import annotations

import torch

from engine.config import SamplingConfig


class Sampler:
    def __init__(self, sampling: SamplingConfig, vocab: int, prompt_ids: list[int], device: torch.device) -> None:
        self.cfg = sampling
        self.penalty = sampling.repetition_penalty
        self.seen: torch.Tensor | None = None  # [V] bool: tokens the repetition penalty applies to
        if self.penalty != 1.0:
            self.seen = torch.zeros(vocab, dtype=torch.bool, device=device)
            if prompt_ids:
                self.seen[torch.tensor(prompt_ids, device=device)] = True

    def __call__(self, logits: torch.Tensor) -> int:
        """``logits``: [V] fp32. Returns the token id, and remembers it for the repetition penalty."""
        logits = self.penalised(logits)
        if self.cfg.greedy:
            token = int(logits.argmax())
        else:
            logits, candidates = self.warped(logits)
            index = int(torch.multinomial(logits.softmax(-1), 1))
            token = int(candidates[index]) if candidates is not None else index
        if self.seen is not None:
            self.seen[token] = True
        return token

    def penalised(self, logits: torch.Tensor) -> torch.Tensor:
        """The repetition penalty: divide positive logits of seen tokens by it, multiply negative ones."""
        if self.seen is None:
            return logits
        penalised = torch.where(logits < 0, logits * self.penalty, logits / self.penalty)
        return torch.where(self.seen, penalised, logits)

    def warped(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Temperature, top-k, top-p, min-p. Returns (logits, the token id of each entry or None for all)."""
        cfg = self.cfg
        if cfg.temperature != 1.0:
            logits = logits / cfg.temperature
        candidates = None
        if cfg.top_k and cfg.top_k < logits.shape[0]:
            logits, candidates = torch.topk(logits, cfg.top_k)  # sorted, largest first
        if cfg.top_p < 1.0:
            logits = _top_p(logits, cfg.top_p)
        if cfg.min_p > 0.0:
            probs = logits.softmax(-1)
            logits = logits.masked_fill(probs < cfg.min_p * probs.max(), float("-inf"))
        return logits, candidates


def _top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Drop the least likely tokens whose total probability is at most 1 - top_p; keep at least one."""
    sorted_logits, order = torch.sort(logits, descending=False)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    remove = cumulative <= (1 - top_p)
    remove[-1] = False
    return logits.masked_fill(remove.scatter(0, order, remove), float("-inf"))
