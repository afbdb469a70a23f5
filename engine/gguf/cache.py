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

import numpy as np
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
    from engine.fastpath.linear import aligned
    from engine.fastpath.weights import PackedWeights
    from engine.gguf.embedding import LinearRows, QuantizedEmbedding

    path = cache_path(source)
    if path is None or not path.is_file():
        return None
    try:
        state = _read(path)  # tensors torch allocates: 64-byte aligned already
        for key, t in state.items():  # int8 weights aligned one at a time: no second copy of them all at once
            if t.dtype == torch.int8:
                state[key] = aligned(t)  # linear.aligned says why (Int8 would copy them anyway)
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


DTYPES = {"BF16": torch.bfloat16, "F32": torch.float32, "F16": torch.float16, "I8": torch.int8, "U8": torch.uint8,
          "I32": torch.int32, "I64": torch.int64}


def _read(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file read tensor by tensor with plain reads into fresh tensors. safetensors' own
    ``load_file`` maps the file and copies out of the map, so while it runs the file can count twice in
    resident memory (measured: peak 1.65x the 1 B file, against 1.22x this way)."""
    import json
    import struct

    out: dict[str, torch.Tensor] = {}
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
        base = 8 + length
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            tensor = torch.empty(info["shape"], dtype=DTYPES[info["dtype"]])
            if tensor.numel():
                fh.seek(base + start)
                if fh.readinto(memoryview(tensor.view(torch.uint8).reshape(-1).numpy())) != end - start:
                    raise ValueError(f"{name} is truncated")
            out[name] = tensor
    return out


def save(source: Path, packed: Any) -> None:
    """Write atomically; a full disk or a read-only data folder only costs the cache."""
    from safetensors.torch import save_file

    from engine.gguf.embedding import QuantizedEmbedding

    path = cache_path(source)
    if path is None:
        return
    state = {k: v.contiguous() for k, v in packed.to_state().items()}
    if isinstance(packed.embed, QuantizedEmbedding):
        state["embed.raw"] = torch.from_numpy(np.array(packed.embed.raw))  # a copy: it may be the file's map
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
