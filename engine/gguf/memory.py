"""How much memory a GGUF will take once repacked, and whether the machine has it now.

The packed formats are about the file's own size (int4 groups: 0.625 bytes a
weight, as Q4_0/Q4_1/Q4_K; int8: 1 byte plus a scale per row; bf16: 2 bytes), a
tied embedding is held once (lookups read the packed output matrix), an untied
one in its file blocks, and the KV cache (fp32 keys and values) is budgeted
for ``KV_TOKENS`` positions. Loading also needs one tensor's temporary copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from engine.errors import NotEnoughMemoryError

# As engine/gguf/quants.py sorts them (by name here: this module must not import torch, the Model box uses it)
INT4_NAMES = ("Q4_0", "Q4_1", "Q4_K")
FLOAT_NAMES = ("F32", "F16", "BF16")
KV_TOKENS = 4096  # positions of KV cache budgeted (the cache grows as a conversation does)
KV_BYTES = 4  # fp32 cache on the CPU path
INT8_CHUNK_ROWS = 4096


@dataclass(frozen=True)
class MemoryEstimate:
    file_bytes: int
    weights: int  # packed weights and the embedding
    kv_cache: int  # for KV_TOKENS positions (or the context, if shorter)
    transient: int  # temporary copies while one tensor is repacked

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.transient

    @property
    def running(self) -> int:
        """After loading: weights and KV cache."""
        return self.weights + self.kv_cache


def packed_bytes(qtype_name: str, shape: tuple[int, ...]) -> int:
    """Bytes of one tensor once repacked. ``shape`` in GGUF order (input dimension first)."""
    n = 1
    for d in shape:
        n *= int(d)
    rows = n // int(shape[0]) if shape else 1
    if len(shape) == 1:
        return n * 4  # norms and biases: fp32
    if qtype_name in INT4_NAMES:
        return n // 2 + n // 32 * (2 if qtype_name == "Q4_0" else 4)  # Q4_0 keeps scales only (linear.Int4)
    if qtype_name in FLOAT_NAMES:
        return n * 2
    return n + rows * 2


def estimate(tensors: Iterable[tuple[str, str, tuple[int, ...], int]], *, layers: int, kv_heads: int,
             head_dim: int, context: int, file_bytes: int) -> MemoryEstimate:
    """``tensors``: (name, quantization type name, GGUF shape, bytes in the file)."""
    rows = list(tensors)
    tied = all(name != "output.weight" for name, *_ in rows)
    weights, largest = 0, 0
    for name, qtype, shape, nbytes in rows:
        n = 1
        for d in shape:
            n *= int(d)
        if name == "token_embd.weight" and not tied:  # looked up in the file's own blocks (bf16 if floats)
            weights += nbytes if qtype not in ("F32", "F16", "BF16") else n * 2
        else:  # tied: the packed output matrix serves the lookups too
            weights += packed_bytes(qtype, shape)
        largest = max(largest, n)
    kv = layers * 2 * kv_heads * head_dim * min(context, KV_TOKENS) * KV_BYTES
    transient = largest * 3  # 4-bit values as bytes, plus scales; int8: an fp32 slice, bounded below
    return MemoryEstimate(file_bytes=file_bytes, weights=weights, kv_cache=kv, transient=transient)


def of_file(f, meta) -> MemoryEstimate:
    """The estimate for an open GGUFFile and its ModelMeta."""
    rows = [(t.name, t.tensor_type.name, tuple(int(d) for d in t.shape), int(t.n_bytes)) for t in f.reader.tensors]
    return estimate(rows, layers=meta.layers, kv_heads=meta.kv_heads, head_dim=meta.head_dim,
                    context=meta.context, file_bytes=f.size)


@lru_cache(maxsize=64)
def _quick(path: str, size: int, mtime: int) -> MemoryEstimate | None:
    """From the header alone, with the gguf package (no torch, no transformers: the Model box calls this)."""
    from engine.gguf.reader import open_gguf

    f = open_gguf(path)
    try:
        arch = str(f.value("general.architecture"))
        heads = int(f.value(f"{arch}.attention.head_count", 1) or 1)
        hidden = int(f.value(f"{arch}.embedding_length", 0) or 0)
        rows = [(t.name, t.tensor_type.name, tuple(int(d) for d in t.shape), int(t.n_bytes))
                for t in f.reader.tensors]
        return estimate(rows, layers=int(f.value(f"{arch}.block_count", 0) or 0),
                        kv_heads=int(f.value(f"{arch}.attention.head_count_kv", heads) or heads),
                        head_dim=int(f.value(f"{arch}.attention.key_length", hidden // heads) or 0),
                        context=int(f.value(f"{arch}.context_length", 2048) or 2048), file_bytes=size)
    finally:
        f.close()


def quick_estimate(path: str | Path) -> MemoryEstimate | None:
    """The estimate from the file's header alone (for lists of models); None if it cannot be read."""
    try:
        st = Path(path).stat()
        return _quick(str(path), st.st_size, st.st_mtime_ns)
    except Exception:  # noqa: BLE001 - a damaged file only loses its estimate here; loading says why
        return None


def available_bytes() -> int:
    """Memory that can be used without swapping (what the OS would give before evicting or swapping)."""
    import psutil

    return int(psutil.virtual_memory().available)


def check_fits(path: str | Path, needed: int, available: int | None = None) -> None:
    available = available_bytes() if available is None else available
    if needed > available:
        raise NotEnoughMemoryError(path, needed, available)


def rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


@dataclass(frozen=True)
class Footprint:
    """What a model in a list takes: on disk, and (about) in memory once loaded."""

    file_bytes: int
    memory_bytes: int

    def label(self) -> str:
        from engine.errors import format_bytes

        return f"{format_bytes(self.file_bytes)} file · about {format_bytes(self.memory_bytes)} in memory"


def footprint(path: str | Path) -> Footprint | None:
    """A GGUF's packed weights and KV cache (see ``estimate``); a folder's weight files as loaded (the float32
    the CPU path uses: half-precision files double). None when it cannot be told (missing, remote)."""
    path = Path(path)
    try:
        if path.is_file() and path.suffix.lower() == ".gguf":
            est = quick_estimate(path)
            return None if est is None else Footprint(est.file_bytes, est.running)
        if path.is_dir():
            return _folder_footprint(path)
    except OSError:
        return None
    return None


def _folder_footprint(folder: Path) -> Footprint | None:
    import json

    files = [p for p in folder.glob("*.safetensors")] or [p for p in folder.glob("*.bin")]
    if not files:
        return None
    size = sum(p.stat().st_size for p in files)
    try:
        dtype = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("torch_dtype") or \
            json.loads((folder / "config.json").read_text(encoding="utf-8")).get("dtype")
    except (OSError, ValueError):
        dtype = None
    factor = 2 if dtype in ("bfloat16", "float16") else 1
    return Footprint(size, size * factor)
