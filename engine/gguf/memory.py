"""How much memory a GGUF will take once repacked, and whether the machine has it now.

The packed formats are about the file's own size (int4 groups: 0.625 bytes a
weight, as Q4_0/Q4_1/Q4_K; int8: 1 byte plus a scale per row; bf16: 2 bytes), a
quantized tied embedding is held twice (its blocks for lookups, the packed
matrix for the logits), and the KV cache (fp32 keys and values) is budgeted
for ``KV_TOKENS`` positions. Loading also needs one tensor's temporary copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from engine.errors import NotEnoughMemoryError

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
    from engine.gguf.quants import FLOAT_TYPES, INT4_TYPES

    n = 1
    for d in shape:
        n *= int(d)
    rows = n // int(shape[0]) if shape else 1
    names_int4 = {t.name for t in INT4_TYPES}
    names_float = {t.name for t in FLOAT_TYPES}
    if len(shape) == 1:
        return n * 4  # norms and biases: fp32
    if qtype_name in names_int4:
        return n // 2 + n // 32 * 4
    if qtype_name in names_float:
        return n * 2
    return n + rows * 2


def estimate(tensors: Iterable[tuple[str, str, tuple[int, ...], int]], *, layers: int, kv_heads: int,
             head_dim: int, context: int, file_bytes: int) -> MemoryEstimate:
    """``tensors``: (name, quantization type name, GGUF shape, bytes in the file)."""
    weights, largest, tied, embed_file = 0, 0, True, 0
    for name, qtype, shape, nbytes in tensors:
        n = 1
        for d in shape:
            n *= int(d)
        if name == "token_embd.weight":
            embed_file = nbytes if qtype not in ("F32", "F16", "BF16") else n * 2  # what lookups keep
        elif name == "output.weight":
            tied = False
        if name != "token_embd.weight":
            weights += packed_bytes(qtype, shape)
        else:
            weights += embed_file
        largest = max(largest, n)
        if name == "token_embd.weight":
            embed_shape, embed_type = shape, qtype
    if tied and embed_file:
        weights += packed_bytes(embed_type, embed_shape)  # the embedding as the output matrix too
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
    from transformers.integrations.gguf import GgufHeader, read_gguf_metadata
    from gguf import GGMLQuantizationType

    header = GgufHeader.from_file(path)
    metadata, _ = read_gguf_metadata(path)
    arch = header.architecture
    heads = int(metadata.get(f"{arch}.attention.head_count", 1) or 1)
    hidden = int(metadata.get(f"{arch}.embedding_length", 0) or 0)
    rows = [(t.name, GGMLQuantizationType(t.ggml_type).name, tuple(reversed(t.shape)), int(t.nbytes))
            for t in header.tensors]
    return estimate(rows, layers=int(metadata.get(f"{arch}.block_count", 0) or 0),
                    kv_heads=int(metadata.get(f"{arch}.attention.head_count_kv", heads) or heads),
                    head_dim=int(metadata.get(f"{arch}.attention.key_length", hidden // heads) or 0),
                    context=int(metadata.get(f"{arch}.context_length", 2048) or 2048), file_bytes=size)


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
