"""Records → training and validation sets, with a preview of every example.

* plain text: tokenised with an end-of-text token after each document and packed
  into ``seq_len`` blocks (loss on every token); a random offset per epoch shifts
  the block boundaries (light augmentation).
* chat and input→output pairs: rendered by the model's chat template; loss on the
  assistant turns only (labels are -100 elsewhere); cut to ``seq_len``.

Exact duplicates are removed, and the validation share is taken by whole files
when there are enough of them (so validation measures generalisation, not recall
of neighbouring lines), else from inside the files.

Only what the run needs is tokenized. After reading, the sizes give an estimate of
each split's sequences (tokens per character measured on a sample); ``plan`` turns
that estimate into a ``Budget`` (sequences wanted per split, None = all). When a
split holds more than its budget, its units (records, and 256 KB pieces of big
files) are taken in a seeded random order until the budget is met, so the part
used is spread over the whole corpus, and ``stats`` say how much one pass covers.
Tokens are kept as int32 arrays: 100 MB of text is ~100 MB of tokens, never lists
of Python ints.
"""

from __future__ import annotations

import random
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.utils.data import ConcatDataset, Dataset

from engine.cancel import CancelToken
from engine.finetune.config import DataConfig
from engine.finetune.errors import DatasetError
from engine.finetune.progress import Phase
from engine.finetune.sources import Record, Skipped, collect, skipped_summary
from engine.finetune.stream import read_piece

IGNORE = -100
TOKENIZE_CHUNK = 4_000  # characters per tokenizer call: it holds the GIL, so short calls keep the window smooth


@dataclass
class PreviewRow:
    source: str
    kind: str
    split: str  # "train" or "validation"
    tokens: int
    text: str
    estimated: bool = False  # tokens counted on the part read, the rest estimated from its size


@dataclass(frozen=True)
class Budget:
    """Sequences a run needs from each split (None: all of them)."""

    train: int | None = None
    val: int | None = None


@dataclass
class BuiltDataset:
    train: Dataset
    val: Dataset | None
    rows: list[PreviewRow]
    skipped: list[Skipped]
    notices: list[str]
    stats: dict = field(default_factory=dict)

    val_records: list = field(default_factory=list, repr=False)  # for a full evaluation after a sampled one
    encoder: Any = field(default=None, repr=False)
    config: Any = field(default=None, repr=False)

    def summary(self) -> str:
        s = self.stats
        train, val = about(s, "train"), about(s, "val")
        files = f"{s['files_used']} file{'s' if s['files_used'] != 1 else ''}"
        return (f"{train}{s['train_examples']:,} training and {val}{s['val_examples']:,} validation sequences; "
                f"{train}{s['train_tokens']:,} + {val}{s['val_tokens']:,} tokens from {files} "
                f"({s['duplicates']} duplicates removed, {skipped_summary(self.skipped)})")

    def full_validation(self, *, cancel: CancelToken | None = None,
                        on_progress: Callable[[float, str], None] | None = None) -> Dataset | None:
        """Every held-out sequence (the validation set may hold only the run's sample)."""
        if self.encoder is None or not self.val_records:
            return self.val
        if self.stats.get("val_loaded", 0) >= self.stats.get("val_examples", 0) and self.val is not None:
            return self.val
        phase = Phase(on_progress, "Tokenizing the whole validation set")
        val, _rows = self.encoder.encode(self.val_records, "validation", self.config, cancel or CancelToken(),
                                         phase, want=None)
        return val


def about(stats: dict, split: str) -> str:
    """"~" where the figures of ``split`` ("train" or "val") are estimated from the sizes (the split was read
    only as far as the run needs), "" where they were counted."""
    return "~" if stats.get(f"{split}_estimated", stats.get("estimated")) else ""


def coverage_text(stats: dict, steps: int, per_step: int) -> str:
    """What one pass of ``steps`` reads of the training data ("" when it reads all of it)."""
    used = steps * per_step
    if used >= stats["train_examples"]:
        return ""
    covered = {"train_loaded": used, "train_examples": stats["train_examples"]}
    return (f"One pass of {steps} steps reads {used:,} of {about(stats, 'train')}"
            f"{stats['train_examples']:,} training sequences ({coverage(covered)} of the training data, "
            "spread over all of it).")


def coverage(stats: dict) -> str:
    """The share of the training data one pass reads, for people: "4 %", "0.3 %"."""
    share = 100 * stats.get("train_loaded", 0) / max(1, stats.get("train_examples", 1))
    if share >= 10:
        return f"{share:.0f} %"
    if share >= 0.1:
        return f"{share:.1f} %"
    return f"{share:.2f} %" if share >= 0.01 else "< 0.01 %"  # 0.03 %, not 0.0 %


class PackedText(Dataset):
    """One token stream cut into ``seq_len`` blocks; ``set_epoch`` moves the cut points."""

    def __init__(self, stream: array | list[int], seq_len: int, random_offset: bool, seed: int) -> None:
        if not isinstance(stream, array):
            stream = array("i", stream)
        self._buffer = stream  # the tensor below shares its memory
        self.stream = torch.frombuffer(stream, dtype=torch.int32) if len(stream) else torch.zeros(0, dtype=torch.int32)
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
        ids = self.stream[start:start + self.seq_len].long()
        return {"input_ids": ids, "labels": ids.clone()}


class Examples(Dataset):
    """Variable-length examples (chat, pairs) packed into rows of at most ``seq_len`` tokens.

    Several short examples share a row instead of each being padded to the longest in its batch;
    ``position_ids`` restart at 0 for each example, which makes transformers' attention mask keep
    the examples apart (masking_utils.find_packed_sequence_indices, for sdpa and eager alike), so
    each is trained exactly as if it were alone. The first label of each example is ignored: alone,
    it was never predicted either.
    """

    def __init__(self, items: list[tuple[list[int], list[int]]], seq_len: int | None = None) -> None:
        # int32 arrays, not lists: a big chat set stays a few bytes per token
        self.items = [(array("i", ids), array("i", labels)) for ids, labels in items]
        self.rows = _pack([len(ids) for ids, _ in self.items], seq_len or max(len(i) for i, _ in self.items))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        ids, labels, positions = [], [], []
        for n in self.rows[i]:
            item_ids, item_labels = self.items[n]
            ids.extend(item_ids)
            labels.append(IGNORE)
            labels.extend(item_labels[1:])
            positions.extend(range(len(item_ids)))
        return {"input_ids": torch.tensor(ids, dtype=torch.long), "labels": torch.tensor(labels, dtype=torch.long),
                "position_ids": torch.tensor(positions, dtype=torch.long)}

    def set_epoch(self, epoch: int) -> None:
        pass


def _pack(lengths: list[int], width: int) -> list[list[int]]:
    """Rows of example indices, each summing to at most ``width`` tokens (next fit, in order)."""
    rows: list[list[int]] = []
    used = width
    for n, length in enumerate(lengths):
        if used + length > width:
            rows.append([])
            used = 0
        rows[-1].append(n)
        used += length
    return rows


def sequences(dataset: Dataset | None) -> int:
    return 0 if dataset is None else len(dataset)


class Collator:
    """Pads a batch to its longest row (pad id in inputs, -100 in labels).

    Rows of packed examples carry ``position_ids``: then there is no attention mask (transformers
    reads the example boundaries from the positions) and the padding is one more segment of its own.
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: list[dict]) -> dict:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)  # (batch, width)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        packed = any("position_ids" in b for b in batch)
        positions = torch.zeros((len(batch), width), dtype=torch.long)
        for row, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[row, :n] = b["input_ids"]
            labels[row, :n] = b["labels"]
            mask[row, :n] = 1
            positions[row, :n] = b["position_ids"] if "position_ids" in b else torch.arange(n)
            positions[row, n:] = torch.arange(width - n)
        if packed:
            return {"input_ids": ids, "labels": labels, "position_ids": positions}
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def build_dataset(config: DataConfig, tokenizer: Any, *, max_context: int | None = None,
                  plan: Callable[[dict], Budget] | None = None,
                  on_progress: Callable[[float, str], None] | None = None,
                  cancel: CancelToken | None = None) -> BuiltDataset:
    """Read ``config.paths`` and make the training and validation sets; raise DatasetError if nothing is usable.

    ``plan(stats)``: given the estimated sizes, the sequences the run needs (default: all of them).
    """
    cancel = cancel or CancelToken()
    if not config.paths:
        raise DatasetError("No files chosen. Drop files or folders, or use Add files…")
    if max_context and config.seq_len > max_context:
        raise DatasetError(f"The sequence length {config.seq_len} is longer than the model's context "
                           f"({max_context} tokens). Choose {max_context} or less.")
    collected = collect(config.paths, max_bytes=int(config.max_file_mb * 1e6), cancel=cancel,
                        on_progress=Phase(on_progress, "Reading the files", 0.0, 0.3))
    if not collected.records:
        raise DatasetError(_nothing_usable(collected))
    records, duplicates = dedupe(collected.records) if config.dedupe else (collected.records, 0)
    train_records, val_records = split(records, config.val_fraction, config.seed)
    notices = list(collected.notices)
    encoder = _Encoder(tokenizer, config.seq_len, notices)
    encoder.calibrate(records)
    estimate = {"train_examples": encoder.sequences_in(train_records),
                "val_examples": encoder.sequences_in(val_records),
                "train_tokens": encoder.tokens_in(train_records), "val_tokens": encoder.tokens_in(val_records)}
    budget = plan(dict(estimate)) if plan is not None else Budget()
    train, train_rows = encoder.encode(train_records, "train", config, cancel,
                                       Phase(on_progress, "Tokenizing the training set", 0.3, 0.9),
                                       want=budget.train, estimated=estimate["train_examples"])
    val, val_rows = encoder.encode(val_records, "validation", config, cancel,
                                   Phase(on_progress, "Tokenizing the validation set", 0.9, 1.0),
                                   want=budget.val, estimated=estimate["val_examples"])
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
             "val_files": sorted({r.file for r in val_records} - {r.file for r in train_records}),
             "train_loaded": sequences(train), "val_loaded": sequences(val)}
    for name, built, split_rows in (("train", train, train_rows), ("val", val, val_rows)):
        if any(r.estimated for r in split_rows):  # partly read: totals from the sizes (what was read is exact)
            stats[f"{name}_examples"] = max(estimate[f"{name}_examples"], sequences(built)) if built else 0
            stats[f"{name}_tokens"], stats[f"{name}_estimated"] = estimate[f"{name}_tokens"], True
        else:  # read whole: counted
            stats[f"{name}_examples"], stats[f"{name}_estimated"] = sequences(built), False
            stats[f"{name}_tokens"] = sum(r.tokens for r in split_rows)
    stats["estimated"] = stats["train_estimated"] or stats["val_estimated"]
    if on_progress is not None:
        on_progress(1.0, "Dataset ready")
    return BuiltDataset(train, val, rows, collected.skipped, notices, stats, val_records=val_records,
                        encoder=encoder, config=config)


def _blocks(tokens: int, seq_len: int) -> int:
    """Packed sequences from ``tokens`` (as PackedText counts them)."""
    if tokens >= seq_len:
        return tokens // seq_len
    return int(tokens >= max(2, seq_len // 4))


def _rows(tokens: int, seq_len: int) -> int:
    """Rows that packed examples of ``tokens`` in all take (packing leaves ~10 % of a row unused)."""
    return -(-tokens // int(0.9 * seq_len)) if tokens else 0


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
        if 0.5 * target <= size <= 2.5 * target:  # else one file dominates: split inside the files
            chosen = set(val_files)
            return [r for r in records if r.file not in chosen], [r for r in records if r.file in chosen]
    return _split_within(records, fraction, seed)


def _split_within(records: list[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    streamed = [r for r in records if r.stream is not None]
    if streamed:  # big files hold out their last pieces; the other records are split among themselves
        rest = [r for r in records if r.stream is None]
        train, val = _split_within(rest, fraction, seed) if rest else ([], [])
        for r in streamed:
            first, last = r.pieces
            held = max(1, round((last - first) * fraction))
            if last - first < 2:
                train.append(r)
                continue
            train.append(Record("text", r.file, r.where, stream=r.stream, pieces=(first, last - held)))
            val.append(Record("text", r.file, r.where + " (end)", stream=r.stream, pieces=(last - held, last)))
        return train, val
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
    CALIBRATE_CHARS = 48_000  # text tokenized up front to learn this tokenizer's tokens per character

    def __init__(self, tokenizer: Any, seq_len: int, notices: list[str]) -> None:
        from engine.chat_generation import ensure_chat_template

        ensure_chat_template(tokenizer)
        self.tok = tokenizer
        self.seq_len = seq_len
        self.notices = notices
        self.eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
        self.cut = 0
        self.unmasked = 0
        self.per_char = 0.3  # tokens per character (per byte for big files), measured by calibrate()

    # --- estimates from sizes -------------------------------------------------------------------------

    def calibrate(self, records: list[Record]) -> None:
        """Measure tokens per character on a slice of up to three records (a fraction of a second)."""
        samples = []
        for r in sorted(records, key=lambda r: -r.size())[:3]:
            if r.stream is not None:
                samples.append(read_piece(r.stream, r.pieces[0])[: self.CALIBRATE_CHARS // 3])
            elif r.kind == "text":
                samples.append(r.text[: self.CALIBRATE_CHARS // 3])
            else:
                samples.append(r.preview(self.CALIBRATE_CHARS // 3))
        chars = sum(len(t) for t in samples)
        if chars >= 200:
            tokens = sum(len(self.tok(t, add_special_tokens=False)["input_ids"]) for t in samples)
            self.per_char = max(0.01, tokens / chars)

    def estimate_tokens(self, r: Record) -> int:
        return int(r.size() * self.per_char) + 1

    def tokens_in(self, records: list[Record]) -> int:
        return sum(self.estimate_tokens(r) for r in records)

    def sequences_in(self, records: list[Record]) -> int:
        text = sum(self.estimate_tokens(r) for r in records if r.kind == "text")
        examples = sum(self.estimate_tokens(r) + 24 for r in records if r.kind != "text")  # + template markup
        return _blocks(text, self.seq_len) + _rows(examples, self.seq_len)

    # --- tokenizing -----------------------------------------------------------------------------------

    def encode(self, records: list[Record], split_name: str, config: DataConfig, cancel: CancelToken,
               progress: Callable[[float, str], None], *, want: int | None = None,
               estimated: int | None = None) -> tuple[Dataset | None, list[PreviewRow]]:
        """Tokenize ``records`` (all of them, or units in a seeded random order until ``want`` sequences)."""
        units = [(i, piece) for i, r in enumerate(records)
                 for piece in (range(*r.pieces) if r.stream is not None else (None,))]
        partial = want is not None and (estimated if estimated is not None else self.sequences_in(records)) > want
        if partial:
            random.Random(config.seed + (0 if split_name == "train" else 1)).shuffle(units)
        stream = array("i")
        examples: list[tuple[list[int], list[int]]] = []
        example_tokens = 0
        counted = [0] * len(records)  # tokens per record, of the units read
        units_read = [0] * len(records)
        goal = want if partial else None
        for n, (i, piece) in enumerate(units):
            cancel.raise_if_cancelled()
            done = _blocks(len(stream), self.seq_len) + _rows(example_tokens, self.seq_len)
            if goal is not None and done >= goal:
                break
            r = records[i]
            if goal is not None:
                progress(done / max(1, goal), f"{done:,} of {goal:,} sequences")
            elif r.kind == "text" or n % 200 == 0:
                progress(n / max(1, len(units)), f"{r.where.rsplit('/', 1)[-1]} ({n + 1:,}/{len(units):,})")
            units_read[i] += 1
            if r.kind == "text":
                text = read_piece(r.stream, piece) if r.stream is not None else r.text
                ids = self.text_ids(text, cancel)
                if piece is None or piece == r.stream.pieces - 1:  # the end of a document
                    ids += [self.eos] if self.eos is not None else []
                stream.extend(ids)
                counted[i] += len(ids)
            else:
                item = self.chat_ids(r)
                if item is None:
                    continue
                examples.append(item)
                example_tokens += len(item[0])
                counted[i] += len(item[0])
        rows = [self._row(r, split_name, counted[i], units_read[i]) for i, r in enumerate(records)]
        parts: list[Dataset] = []
        if stream:
            seed = config.seed + (0 if split_name == "train" else 1)
            parts.append(PackedText(stream, self.seq_len, config.random_offset and split_name == "train", seed))
        if examples:
            parts.append(Examples(examples, self.seq_len))
        parts = [p for p in parts if len(p)]
        if not parts:
            return None, rows
        return (parts[0] if len(parts) == 1 else _Concat(parts)), rows

    def _row(self, r: Record, split_name: str, counted: int, units_read: int) -> PreviewRow:
        units = (r.pieces[1] - r.pieces[0]) if r.stream is not None else 1
        if units_read >= units:
            return PreviewRow(r.where, r.kind, split_name, counted, r.preview())
        rest = self.estimate_tokens(r) * (units - units_read) // max(1, units)
        return PreviewRow(r.where, r.kind, split_name, counted + rest, r.preview(), estimated=True)

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
