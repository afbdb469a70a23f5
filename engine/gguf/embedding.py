"""The token embedding, kept in the file's own blocks and dequantized a few rows at a time.

The forward only ever looks up the rows of the tokens it runs (one per decode
step), so a quantized embedding stays as compact as in the file: a 49 152 x 576
Q8_0 table is 30 MB here instead of 57 MB in bf16. A tied embedding (no
output.weight) is not held twice: lookups read the packed output matrix.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.gguf.quants import FLOAT_TYPES, to_bf16


class QuantizedEmbedding:
    """``embed[ids]`` -> [len(ids), D] fp32, like indexing a [V, D] tensor."""

    def __init__(self, raw: np.ndarray, qtype, dim: int) -> None:
        self.raw = raw  # [V, bytes per row] uint8: a copy, or a map of the file of its own (mapped_embedding)
        self.qtype, self.dim = qtype, dim

    @property
    def shape(self) -> tuple[int, int]:
        return (self.raw.shape[0], self.dim)

    @property
    def nbytes(self) -> int:
        return self.raw.nbytes

    def __getitem__(self, ids) -> torch.Tensor:
        from gguf.quants import dequantize

        index = ids.cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
        rows = self.raw[index.reshape(-1)]
        out = torch.from_numpy(np.ascontiguousarray(dequantize(rows, self.qtype), dtype=np.float32))
        return out.reshape(*index.shape, self.dim)


def embedding_from(tensor, dim: int):
    """A GGUF token_embd tensor -> what the forward indexes: bf16 [V, D], or a QuantizedEmbedding."""
    vocab = int(tensor.shape[-1])
    if tensor.tensor_type in FLOAT_TYPES:
        return to_bf16(tensor.data, tensor.tensor_type, (vocab, dim))
    return QuantizedEmbedding(np.array(tensor.data, dtype=np.uint8).reshape(vocab, -1), tensor.tensor_type, dim)


def mapped_embedding(path, tensor, dim: int) -> QuantizedEmbedding:
    """A quantized token_embd read in place: its rows stay in the file (the OS's page cache) and each lookup
    maps the pages of the rows it reads (a decode step: one row of a few hundred bytes)."""
    vocab = int(tensor.shape[-1])
    rows = np.memmap(path, dtype=np.uint8, mode="r", offset=int(tensor.data_offset),
                     shape=(vocab, int(tensor.n_bytes) // vocab))
    return QuantizedEmbedding(rows, tensor.tensor_type, dim)


class LinearRows:
    """``embed[ids]`` read from the rows of a packed output matrix (Int8 / Int4 ``.rows``, Dense ``.w``)."""

    def __init__(self, linear) -> None:
        self.linear = linear

    @property
    def shape(self) -> tuple[int, int]:
        w = getattr(self.linear, "w", None)
        if w is not None:
            return tuple(w.shape)
        shape = getattr(self.linear, "shape", None)  # Int8
        return tuple(shape) if shape is not None else (self.linear.out, self.linear.p.shape[1] * 2)

    def __getitem__(self, ids) -> torch.Tensor:
        ids = torch.as_tensor(ids)
        flat = ids.reshape(-1)
        w = getattr(self.linear, "w", None)
        out = w[flat].float() if w is not None else self.linear.rows(flat)
        return out.reshape(*ids.shape, out.shape[-1])
