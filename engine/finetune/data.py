"""Records → training and validation sets, with a preview of every example.

* plain text: tokenised with an end-of-text token after each document and packed
  into ``seq_len`` blocks (loss on every token); a random offset per epoch shifts
  the block boundaries (light augmentation).
* chat and input→output pairs: rendered by the model's chat template; loss on the
  assistant turns only (labels are -100 elsewhere); cut to ``seq_len``.

Exact duplicates are removed, and the validation share is taken by whole files
when there are enough of them (so validation measures generalisation, not recall
of neighbouring lines), else from inside the files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.utils.data import ConcatDataset, Dataset

from engine.cancel import CancelToken
from engine.finetune.config import DataConfig
from engine.finetune.errors import DatasetError
from engine.finetune.sources import Record, Skipped, collect

IGNORE = -100
TOKENIZE_CHUNK = 4_000  # characters per tokenizer call: it holds the GIL, so short calls keep the window smooth


@dataclass
class PreviewRow:
    source: str
    kind: str
    split: str  # "train" or "validation"
    tokens: int
    text: str


@dataclass
class BuiltDataset:
    train: Dataset
    val: Dataset | None
    rows: list[PreviewRow]
    skipped: list[Skipped]
    notices: list[str]
    stats: dict = field(default_factory=dict)

    def summary(self) -> str:
        s = self.stats
        return (f"{s['train_examples']} training and {s['val_examples']} validation sequences; "
                f"{s['train_tokens']:,} + {s['val_tokens']:,} tokens from {s['files_used']} files "
                f"({s['duplicates']} duplicates removed, {len(self.skipped)} skipped)")


class PackedText(Dataset):
    """One token stream cut into ``seq_len`` blocks; ``set_epoch`` moves the cut points."""

    def __init__(self, stream: list[int], seq_len: int, random_offset: bool, seed: int) -> None:
        self.stream = torch.tensor(stream, dtype=torch.long)  # (total_tokens,)
        self.seq_len = seq_len
        self.random_offset = random_offset
        self.seed = seed
        # A text shorter than one block still makes one sequence, if it is a quarter of a block or more.
        self.blocks = len(stream) // seq_len if len(stream) >= seq_len else int(len(stream) >= max(2, seq_len // 4))
        self.offset = 0

    def set_epoch(self, epoch: int) -> None:
        spare = len(self.stream) - self.blocks * self.seq_len
        self.offset = random.Random(self.seed * 1000 + int(epoch)).randint(0, spare) if (
            self.random_offset and spare > 0 and epoch > 0) else 0

    def __len__(self) -> int:
        return self.blocks

    def __getitem__(self, i: int) -> dict:
        start = self.offset + i * self.seq_len
        ids = self.stream[start:start + self.seq_len]
        return {"input_ids": ids, "labels": ids.clone()}


class Examples(Dataset):
    """Variable-length examples with their own labels (chat, pairs)."""

    def __init__(self, items: list[tuple[list[int], list[int]]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        ids, labels = self.items[i]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}

    def set_epoch(self, epoch: int) -> None:
        pass


def sequences(dataset: Dataset | None) -> int:
    return 0 if dataset is None else len(dataset)


class Collator:
    """Pads a batch to its longest sequence (pad id in inputs, -100 in labels)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: list[dict]) -> dict:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)  # (batch, width)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[row, :n] = b["input_ids"]
            labels[row, :n] = b["labels"]
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def build_dataset(config: DataConfig, tokenizer: Any, *, max_context: int | None = None,
                  on_progress: Callable[[float, str], None] | None = None,
                  cancel: CancelToken | None = None) -> BuiltDataset:
    """Read ``config.paths`` and make the training and validation sets; raise DatasetError if nothing is usable."""
    progress = on_progress or (lambda f, m: None)
    cancel = cancel or CancelToken()
    if not config.paths:
        raise DatasetError("No files chosen. Drop files or folders, or use Add files…")
    if max_context and config.seq_len > max_context:
        raise DatasetError(f"The sequence length {config.seq_len} is longer than the model's context "
                           f"({max_context} tokens). Choose {max_context} or less.")
    collected = collect(config.paths, max_bytes=int(config.max_file_mb * 1e6), cancel=cancel,
                        on_progress=lambda f, m: progress(0.5 * f, m))
    if not collected.records:
        raise DatasetError(_nothing_usable(collected))
    records, duplicates = dedupe(collected.records) if config.dedupe else (collected.records, 0)
    train_records, val_records = split(records, config.val_fraction, config.seed)
    notices = list(collected.notices)
    encoder = _Encoder(tokenizer, config.seq_len, notices)
    train, train_rows = encoder.encode(train_records, "train", config, cancel,
                                       lambda f, m: progress(0.5 + 0.4 * f, m))
    val, val_rows = encoder.encode(val_records, "validation", config, cancel,
                                   lambda f, m: progress(0.9 + 0.1 * f, m))
    if sequences(train) == 0:
        raise DatasetError("The files hold too little text to make one training sequence "
                           f"of {config.seq_len} tokens. Add more text or lower the sequence length.")
    if val is not None and sequences(val) == 0:
        val = None
    if val is None and config.val_fraction > 0:
        notices.append("Too little data to hold some back for validation: no validation loss, "
                       "no early stopping. Add more files to watch for over-fitting.")
    encoder.finish_notices()
    rows = train_rows + val_rows
    stats = {"files": collected.files, "files_used": len({r.file for r in records}),
             "records": len(records), "duplicates": duplicates,
             "train_examples": sequences(train), "val_examples": sequences(val),
             "train_tokens": sum(r.tokens for r in train_rows), "val_tokens": sum(r.tokens for r in val_rows),
             "val_files": sorted({r.file for r in val_records} - {r.file for r in train_records})}
    progress(1.0, "Dataset ready")
    return BuiltDataset(train, val, rows, collected.skipped, notices, stats)


def _nothing_usable(collected) -> str:
    if collected.files == 0:
        where = ", ".join(s.path for s in collected.skipped[:3])
        return f"No files found in {where}." if where else "No files found."
    reasons = "; ".join(str(s) for s in collected.skipped[:5])
    more = f" (and {len(collected.skipped) - 5} more)" if len(collected.skipped) > 5 else ""
    return f"None of the {collected.files} files could be used for training: {reasons}{more}."


def dedupe(records: list[Record]) -> tuple[list[Record], int]:
    seen: set = set()
    kept = []
    for r in records:
        key = r.key()
        if key not in seen:
            seen.add(key)
            kept.append(r)
    return kept, len(records) - len(kept)


def split(records: list[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """(train, validation): whole files when there are at least 3 with a sensible share, else within files."""
    if fraction <= 0 or not records:
        return records, []
    by_file: dict[str, list[Record]] = {}
    for r in records:
        by_file.setdefault(r.file, []).append(r)
    total = sum(r.size() for r in records)
    target = fraction * total
    if len(by_file) >= 3:
        files = sorted(by_file)
        random.Random(seed).shuffle(files)
        val_files, size = [], 0
        for f in files[:-1]:
            if size >= target:
                break
            val_files.append(f)
            size += sum(r.size() for r in by_file[f])
        if 0 < size <= 2.5 * target:
            chosen = set(val_files)
            return [r for r in records if r.file not in chosen], [r for r in records if r.file in chosen]
    return _split_within(records, fraction, seed)


def _split_within(records: list[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    rng = random.Random(seed)
    if len(records) >= 10:
        val_ids = set(rng.sample(range(len(records)), max(1, round(fraction * len(records)))))
        return ([r for i, r in enumerate(records) if i not in val_ids],
                [r for i, r in enumerate(records) if i in val_ids])
    train, val = [], []
    for r in records:
        if r.kind != "text":  # too few examples to spare one; train on all of them
            train.append(r)
            continue
        cut = _cut_point(r.text, 1 - fraction)
        if cut <= 0:
            train.append(r)
            continue
        train.append(Record("text", r.file, r.where, text=r.text[:cut]))
        val.append(Record("text", r.file, r.where + " (end)", text=r.text[cut:]))
    return train, val


def _cut_point(text: str, share: float) -> int:
    """A line end near ``share`` of the text (or 0 if the text is too short to split)."""
    if len(text) < 200:
        return 0
    at = int(len(text) * share)
    newline = text.rfind("\n", int(at * 0.9), at)
    return newline + 1 if newline > 0 else at


class _Encoder:
    def __init__(self, tokenizer: Any, seq_len: int, notices: list[str]) -> None:
        from engine.chat_template import ensure_chat_template

        ensure_chat_template(tokenizer)
        self.tok = tokenizer
        self.seq_len = seq_len
        self.notices = notices
        self.eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
        self.cut = 0
        self.unmasked = 0

    def encode(self, records: list[Record], split_name: str, config: DataConfig, cancel: CancelToken,
               progress: Callable[[float, str], None]) -> tuple[Dataset | None, list[PreviewRow]]:
        stream: list[int] = []
        examples: list[tuple[list[int], list[int]]] = []
        rows: list[PreviewRow] = []
        for n, r in enumerate(records):
            cancel.raise_if_cancelled()
            if r.kind == "text" or n % 200 == 0:
                progress(n / max(1, len(records)), f"Tokenizing the {split_name} set: {r.where.rsplit('/', 1)[-1]}")
            if r.kind == "text":
                ids = self.text_ids(r.text, cancel) + ([self.eos] if self.eos is not None else [])
                stream.extend(ids)
                n = len(ids)
            else:
                item = self.chat_ids(r)
                if item is None:
                    continue
                examples.append(item)
                n = len(item[0])
            rows.append(PreviewRow(r.where, r.kind, split_name, n, r.preview()))
        parts: list[Dataset] = []
        if stream:
            seed = config.seed + (0 if split_name == "train" else 1)
            parts.append(PackedText(stream, self.seq_len, config.random_offset and split_name == "train", seed))
        if examples:
            parts.append(Examples(examples))
        parts = [p for p in parts if len(p)]
        if not parts:
            return None, rows
        return (parts[0] if len(parts) == 1 else _Concat(parts)), rows

    def text_ids(self, text: str, cancel: CancelToken) -> list[int]:
        ids: list[int] = []
        start = 0
        while start < len(text):
            end = min(len(text), start + TOKENIZE_CHUNK)
            if end < len(text):  # split at whitespace so no word is cut in two
                space = max(text.rfind("\n", start, end), text.rfind(" ", start, end))
                end = space + 1 if space > start else end
            ids.extend(self.tok(text[start:end], add_special_tokens=False)["input_ids"])
            cancel.raise_if_cancelled()
            start = end
        return ids

    def chat_ids(self, r: Record) -> tuple[list[int], list[int]] | None:
        messages = [{"role": role, "content": c} for role, c in r.messages] if r.kind == "chat" else [
            {"role": "user", "content": r.prompt}, {"role": "assistant", "content": r.completion}]
        ids, labels = render_masked(self.tok, messages)
        if not any(l != IGNORE for l in labels):
            self.unmasked += 1
            labels = list(ids)
        if len(ids) > self.seq_len:
            self.cut += 1
            ids, labels = ids[: self.seq_len], labels[: self.seq_len]
            if all(l == IGNORE for l in labels):
                return None
        return ids, labels

    def finish_notices(self) -> None:
        if self.cut:
            self.notices.append(f"{self.cut} examples were longer than {self.seq_len} tokens and were cut; "
                                "raise the sequence length to keep them whole.")
        if self.unmasked:
            self.notices.append(f"{self.unmasked} chat examples could not be split into turns by the chat "
                                "template; they are trained on every token.")


class _Concat(ConcatDataset):
    def set_epoch(self, epoch: int) -> None:
        for d in self.datasets:
            d.set_epoch(epoch)


def render_masked(tokenizer: Any, messages: list[dict]) -> tuple[list[int], list[int]]:
    """Token ids of a conversation and labels that keep only the assistant turns.

    Each turn is rendered as the difference between the template applied to the
    messages up to it and up to the one before, so the masks line up with the
    template's own markup whatever the template is.
    """
    ids: list[int] = []
    labels: list[int] = []
    done = ""
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            prompt = _render(tokenizer, messages[:i], generation_prompt=True)
            full = _render(tokenizer, messages[: i + 1], generation_prompt=False)
            if not (prompt.startswith(done) and full.startswith(prompt)):
                return _whole(tokenizer, messages)
            head = _encode(tokenizer, prompt[len(done):])
            body = _encode(tokenizer, full[len(prompt):])
            ids += head + body
            labels += [IGNORE] * len(head) + body
            done = full
    full = _render(tokenizer, messages, generation_prompt=False)
    if full.startswith(done) and len(full) > len(done):  # trailing user/system turns: context only
        tail = _encode(tokenizer, full[len(done):])
        ids += tail
        labels += [IGNORE] * len(tail)
    return ids, labels


def _whole(tokenizer: Any, messages: list[dict]) -> tuple[list[int], list[int]]:
    ids = _encode(tokenizer, _render(tokenizer, messages, generation_prompt=False))
    return ids, [IGNORE] * len(ids)


def _render(tokenizer: Any, messages: list[dict], generation_prompt: bool) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _encode(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
