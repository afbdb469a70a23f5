"""From the user's files to batches of token ids.

All text is tokenized once into one long stream (documents separated by the end-of-text token);
the last ``val_fraction`` of it is held out for validation. A training batch is B windows cut at
random places; the validation set is fixed, non-overlapping windows, so its loss is comparable
between evaluations.

* Causal LM: a window of T tokens; the model predicts each token from the ones before it.
* Masked LM: in a window, 15 % of positions are chosen; of those, 80 % become ``<mask>``,
  10 % a random token and 10 % stay as they are (BERT's recipe); only they are scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from engine.lab.errors import NotEnoughTextError


@dataclass
class Corpus:
    texts: list[str]
    sources: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    notices: list[str] = field(default_factory=list)

    @property
    def characters(self) -> int:
        return sum(len(t) for t in self.texts)


def read_corpus(paths: Sequence[str]) -> Corpus:
    """Read every file (folders are searched); raise NotEnoughTextError if nothing is readable."""
    from engine.documents import Skipped, iter_documents

    corpus = Corpus([], [])
    for item in iter_documents(paths):
        if isinstance(item, Skipped):
            corpus.skipped.append((item.path, item.reason))
        elif item.text.strip():
            corpus.texts.append(item.text)
            corpus.sources.append(item.path)
            if item.notice:
                corpus.notices.append(f"{item.name}: {item.notice}")
        else:
            corpus.skipped.append((item.path, "no text in it"))
    if not corpus.texts:
        why = "; ".join(f"{p}: {r}" for p, r in corpus.skipped[:5]) or "no files were given"
        raise NotEnoughTextError(f"None of the files could be used as training text ({why}).")
    return corpus


def encode_corpus(tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """All texts as one stream of ids (N,), each followed by the end-of-text token."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for encoded in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        ids.extend(encoded)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def tokens_needed(context: int, val_fraction: float) -> int:
    """The fewest tokens that give one validation window and a few distinct training windows."""
    val_tokens = context + 1
    return max(int(val_tokens / val_fraction), val_tokens + 4 * context)


def split_stream(ids: torch.Tensor, context: int, val_fraction: float,
                 chars_per_token: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train ids, validation ids); NotEnoughTextError says how much text the context needs."""
    need = tokens_needed(context, val_fraction)
    if ids.numel() < need:
        chars = int(need * chars_per_token)
        raise NotEnoughTextError(
            f"Too little text for a context of {context} tokens: the files give {ids.numel():,} tokens, "
            f"and at least {need:,} are needed (about {chars:,} characters). Add more files, or choose a "
            f"smaller context.")
    n_val = max(context + 1, int(ids.numel() * val_fraction))
    return ids[:-n_val], ids[-n_val:]


def random_windows(ids: torch.Tensor, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """B windows of ``length`` ids at random offsets: (B, length)."""
    starts = torch.randint(0, ids.numel() - length + 1, (batch,), generator=generator)
    return torch.stack([ids[s:s + length] for s in starts.tolist()])


def fixed_windows(ids: torch.Tensor, length: int, limit: int) -> torch.Tensor:
    """Up to ``limit`` non-overlapping windows from the start: (N, length)."""
    count = max(1, min(limit, ids.numel() // length))
    return ids[: count * length].view(count, length)


def mask_tokens(windows: torch.Tensor, *, mask_id: int, vocab_size: int, fraction: float,
                generator: torch.Generator, protected: Sequence[int] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """windows (B, T) -> (inputs (B, T), labels (B, T)) for masked language modelling.

    labels hold the original id at chosen positions and -100 (ignored by the loss) elsewhere.
    """
    chosen = torch.rand(windows.shape, generator=generator) < fraction  # (B, T) bool
    for token in protected:  # never ask the model to predict a separator
        chosen &= windows != token
    empty = ~chosen.any(dim=1)  # every row gets at least one blank
    if empty.any():
        cols = torch.randint(0, windows.size(1), (int(empty.sum()),), generator=generator)
        chosen[empty.nonzero(as_tuple=True)[0], cols] = True
    labels = torch.where(chosen, windows, torch.full_like(windows, -100))
    inputs = windows.clone()
    roll = torch.rand(windows.shape, generator=generator)
    inputs[chosen & (roll < 0.8)] = mask_id
    random_slots = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[random_slots] = torch.randint(0, vocab_size, (int(random_slots.sum()),), generator=generator)
    return inputs, labels
