"""GGUF blocks -> the fast path's linear formats, one tensor at a time.

- Q4_0, Q4_1, Q4_K: the 4-bit values are taken out of their blocks as they
  are, with the scale and offset of every group of 32 (Q4_K's 6-bit sub-block
  scales and mins already multiplied out): ``Int4`` keeps them, rounding only
  scale and offset to bf16. No value is re-quantized.
- every other block type gguf can dequantize (Q5_x, Q6_K, Q8_0, Q2_K, Q3_K,
  IQ4_x): dequantized, then int8 per output row.
- F32 / F16 / BF16 matrices: bf16.

Block layouts are llama.cpp's (ggml-common.h); each decoder is checked against
``gguf.quants.dequantize`` in tests/test_gguf_quants.py.
"""

from __future__ import annotations

import numpy as np
import torch

from gguf import GGMLQuantizationType as T

INT4_TYPES = (T.Q4_0, T.Q4_1, T.Q4_K)
INT8_TYPES = (T.Q5_0, T.Q5_1, T.Q5_K, T.Q6_K, T.Q8_0, T.Q2_K, T.Q3_K, T.IQ4_NL, T.IQ4_XS)
FLOAT_TYPES = (T.F32, T.F16, T.BF16)


def kind_of(qtype: T) -> str:
    """"int4", "int8" or "dense": how a matrix of this type is held."""
    if qtype in INT4_TYPES:
        return "int4"
    if qtype in FLOAT_TYPES:
        return "dense"
    if qtype in INT8_TYPES:
        return "int8"
    raise ValueError(f"quantization type {qtype.name} is not supported")


def q4_groups(data: np.ndarray, qtype: T, cols: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of Q4 blocks ([N, bytes per row] uint8) -> (q [N, K] uint8 0..15, scale, offset [N, K / 32] fp32),
    with value = q * scale + offset."""
    rows = data.shape[0]
    if qtype == T.Q4_K:
        return _q4_k(data.reshape(rows, cols // 256, 144), rows, cols)
    width = 18 if qtype == T.Q4_0 else 20
    blocks = data.reshape(rows, cols // 32, width)
    d = blocks[..., 0:2].copy().view(np.float16).astype(np.float32)[..., 0]  # [N, K / 32]
    if qtype == T.Q4_0:  # value = (q - 8) * d
        offset, qs = -8.0 * d, blocks[..., 2:18]
    else:  # Q4_1: value = q * d + m
        offset, qs = blocks[..., 2:4].copy().view(np.float16).astype(np.float32)[..., 0], blocks[..., 4:20]
    q = np.concatenate([qs & 15, qs >> 4], axis=-1)  # element j in the low nibble of byte j, j + 16 in the high
    return (torch.from_numpy(q.reshape(rows, cols)), torch.from_numpy(d), torch.from_numpy(offset))


def _q4_k(blocks: np.ndarray, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Q4_K super-blocks of 256: d, dmin (f16), 12 bytes of 6-bit (scale, min) for 8 sub-blocks, 128 bytes
    of nibbles (chunk c of 32 bytes: sub-block 2c in the low nibbles, 2c + 1 in the high)."""
    d = blocks[..., 0:2].copy().view(np.float16).astype(np.float32)  # [N, nb, 1]
    dmin = blocks[..., 2:4].copy().view(np.float16).astype(np.float32)
    s = blocks[..., 4:16].astype(np.uint8)  # [N, nb, 12]
    sc = np.empty(s.shape[:-1] + (8,), dtype=np.uint8)
    mn = np.empty_like(sc)
    sc[..., :4], mn[..., :4] = s[..., 0:4] & 63, s[..., 4:8] & 63
    sc[..., 4:] = (s[..., 8:12] & 0xF) | ((s[..., 0:4] >> 6) << 4)
    mn[..., 4:] = (s[..., 8:12] >> 4) | ((s[..., 4:8] >> 6) << 4)
    qs = blocks[..., 16:144].reshape(rows, -1, 4, 1, 32)
    q = np.concatenate([qs & 15, qs >> 4], axis=3)  # [N, nb, 4, 2, 32]
    scale = (d * sc.astype(np.float32)).reshape(rows, cols // 32)
    offset = (-dmin * mn.astype(np.float32)).reshape(rows, cols // 32)
    return torch.from_numpy(q.reshape(rows, cols)), torch.from_numpy(scale), torch.from_numpy(offset)


def dequantized(data: np.ndarray, qtype: T, shape: tuple[int, int]) -> torch.Tensor:
    """Any supported tensor -> fp32 [N, K]."""
    from gguf.quants import dequantize

    if qtype == T.F32:
        return torch.from_numpy(np.asarray(data, dtype=np.float32).reshape(shape).copy())
    if qtype == T.F16:
        return torch.from_numpy(np.asarray(data).view(np.float16).reshape(shape).astype(np.float32))
    return torch.from_numpy(np.ascontiguousarray(dequantize(np.asarray(data), qtype)).reshape(shape))


def to_bf16(data: np.ndarray, qtype: T, shape: tuple[int, int]) -> torch.Tensor:
    """F32 / F16 / BF16 -> bf16 [N, K], without an fp32 copy for BF16."""
    if qtype == T.BF16:
        raw = np.asarray(data).view(np.int16).reshape(shape).copy()
        return torch.from_numpy(raw).view(torch.bfloat16)
    return dequantized(data, qtype, shape).to(torch.bfloat16)
