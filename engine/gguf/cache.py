"""A cache of a GGUF's packed weights under the data folder, for files slow to repack.

Repacking the default model takes about a second, so it is never cached (and
nothing is written for it). A big file whose blocks must be dequantized
(Q6_K, Q5_x, Q8_0 parts) can take a minute; its packed weights, about the
file's size, are saved once (safetensors, written atomically) and read back on
the next load instead. The name carries the file's path, size and time, so an
edited or replaced file is repacked; the cache of an older version of the same
path is deleted when the new one is written.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

FORMAT = 1
CACHE_AFTER_S = 10.0  # repacking slower than this is worth a cache file


def cache_path(source: Path) -> Path | None:
    try:
        from engine.paths import subdir

        st = source.stat()
    except Exception:  # noqa: BLE001 - an unusable data folder only costs the cache
        return None
    owner = hashlib.sha256(f"{FORMAT}|{source.resolve()}".encode()).hexdigest()[:12]
    version = hashlib.sha256(f"{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    try:
        return subdir("gguf-cache") / f"{source.stem}-{owner}-{version}.safetensors"
    except Exception:  # noqa: BLE001
        return None


def load(source: Path, spec: Any) -> Any | None:
    """The cached PackedWeights of ``source``, or None (no cache, or one that cannot be read)."""
    from safetensors.torch import load_file

    from engine.fastpath.weights import PackedWeights
    from engine.gguf.embedding import LinearRows, QuantizedEmbedding

    path = cache_path(source)
    if path is None or not path.is_file():
        return None
    try:
        state = load_file(str(path))
        embed_raw, embed_w = state.pop("embed.raw", None), state.pop("embed.w", None)
        embed_type = state.pop("embed.type", None)
        packed = PackedWeights.from_state("gguf", state, spec, embed=None)
        if embed_raw is not None:
            from gguf import GGMLQuantizationType

            packed.embed = QuantizedEmbedding(embed_raw.numpy(), GGMLQuantizationType(int(embed_type[0])),
                                              spec.hidden)
        else:
            packed.embed = embed_w if embed_w is not None else LinearRows(packed.lm_head)
        return packed
    except Exception:  # noqa: BLE001 - truncated, from another version: repack from the file
        return None


def save(source: Path, packed: Any) -> None:
    """Write atomically; a full disk or a read-only data folder only costs the cache."""
    from safetensors.torch import save_file

    from engine.gguf.embedding import QuantizedEmbedding

    path = cache_path(source)
    if path is None:
        return
    state = {k: v.contiguous() for k, v in packed.to_state().items()}
    if isinstance(packed.embed, QuantizedEmbedding):
        state["embed.raw"] = torch.from_numpy(packed.embed.raw)
        state["embed.type"] = torch.tensor([int(packed.embed.qtype)])
    elif isinstance(packed.embed, torch.Tensor):
        state["embed.w"] = packed.embed
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(state, str(tmp), metadata={"format": str(FORMAT), "source": str(source)})
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return
    owner = path.name.rsplit("-", 1)[0]
    for old in path.parent.glob(f"{owner}-*.safetensors"):  # the same path's earlier versions
        if old != path:
            old.unlink(missing_ok=True)
