"""fbgemm's dynamic int8 linear for one-row matmuls of an ``Int8`` weight, where this torch has it.

``torch.ops.quantized.linear_dynamic`` quantizes the activation row to uint8
(one scale for the row), multiplies with int8 VNNI dot products and returns
fp32. On the default model's 49 152 x 576 output matrix it takes 1.3 ms a
token at one thread against 5.0 ms for ``torch._weight_int8pack_mm`` (which
converts every weight to float first; bench/README.md, issue 11 part B).

It runs on torch's quantized tensors, which torch 2.13 calls deprecated: the
op is checked once per process (it exists, and gives the reference product on
a small matrix) and the caller keeps ``_weight_int8pack_mm`` when it does not.
It is OFF unless ``HEARTH_FBGEMM=1``: one 8-bit scale over the whole row is
coarse where a hidden state has an outlier dimension, and on the default model
it moved the perplexity to +1.3 % of llama.cpp's (+0.14 % with the int8pack
kernel), past the 1 % the engine holds to; rounding's residual through a second
call brings it back to +0.29 % but costs the speed it gave (bench/README.md).

The packed weight is fbgemm's own copy of the matrix (it keeps no reference
to the int8 tensor), so a weight that keeps its int8 tensor too costs its size
twice; the GGUF loader packs a tied output matrix chunk by chunk straight from
the file and keeps no int8 tensor (engine/gguf/pack.py). Packing goes by
chunks of rows, so no more than one chunk is ever held twice while packing.
"""

from __future__ import annotations

import os
import warnings

import torch

# torch.quantize_per_channel & co. warn that quantized tensors "will be removed in a future PyTorch release";
# torch is pinned (pyproject.toml) and the check below falls back if they go.
_DEPRECATION = ".*quantized tensor creation functions.*deprecated.*"

_available: bool | None = None  # checked once per process


def available() -> bool:
    global _available
    if _available is None:
        _available = os.environ.get("HEARTH_FBGEMM", "0") == "1" and _works()
    return _available


CHUNK_ROWS = 8192  # rows packed at a time (4.5 MB of a 576-wide matrix): bounds the copies made while packing


class Packed:
    """fbgemm's packed copy of an [N, K] int8 matrix, as row chunks of at most CHUNK_ROWS."""

    __slots__ = ("chunks", "rows", "cols")

    def __init__(self, cols: int) -> None:
        self.chunks: list = []
        self.rows, self.cols = 0, cols

    def add(self, q: torch.Tensor, s: torch.Tensor, b: torch.Tensor | None) -> None:
        """Append rows: q [n, K] int8, s [n] scales, b [n] or None."""
        self.chunks.append(_prepack(q, s, b))
        self.rows += q.shape[0]

    def unpacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(q [N, K] int8, s [N] bf16) back from fbgemm's copy: for the rare callers that need the matrix."""
        qs, ss = [], []
        for chunk in self.chunks:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=UserWarning)
                qw = _ops().linear_unpack(chunk)[0]
            qs.append(qw.int_repr())
            ss.append(qw.q_per_channel_scales().to(torch.bfloat16))
        return torch.cat(qs), torch.cat(ss)


def prepack(q: torch.Tensor, s: torch.Tensor, b: torch.Tensor | None) -> Packed | None:
    """q [N, K] int8 (values -127..127), s [N] row scales, b [N] or None -> fbgemm's packed weight, or None
    where the op is missing or refuses the weight (the caller keeps its own kernel)."""
    if not available():
        return None
    try:
        packed = Packed(q.shape[1])
        for start in range(0, q.shape[0], CHUNK_ROWS):
            stop = start + CHUNK_ROWS
            packed.add(q[start:stop], s[start:stop], None if b is None else b[start:stop])
        return packed
    except (RuntimeError, AttributeError):
        return None


def linear(x: torch.Tensor, packed: Packed) -> torch.Tensor:
    """x [M, K] (any float dtype) -> [M, N] fp32. The activation scale is one per call: use it on one row.
    Every chunk quantizes the same x the same way, so chunks give what one matrix would."""
    x, op = x.float(), _ops().linear_dynamic
    if len(packed.chunks) == 1:
        return op(x, packed.chunks[0])
    return torch.cat([op(x, chunk) for chunk in packed.chunks], dim=1)


def _ops():
    """torch's quantized op namespace (a function: the tests replace it with one that lacks the ops)."""
    return torch.ops.quantized


def _prepack(q: torch.Tensor, s: torch.Tensor, b: torch.Tensor | None):
    rows = q.shape[0]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATION, category=UserWarning)
        qw = torch._make_per_channel_quantized_tensor(q, s.double(), torch.zeros(rows, dtype=torch.long), 0)
        return _ops().linear_prepack(qw, None if b is None else b.float())


def _works() -> bool:
    """The op exists here and multiplies a small int8 matrix (with a bias) like the plain formula."""
    try:
        g = torch.Generator().manual_seed(0)
        q = torch.randint(-127, 128, (64, 96), generator=g, dtype=torch.int8)
        s = torch.rand(64, generator=g) * 0.02 + 0.001
        b = torch.randn(64, generator=g)
        x = torch.randn(1, 96, generator=g)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_DEPRECATION, category=UserWarning)
            packed = Packed(96)
            packed.add(q, s, b)
            y = linear(x, packed)
        ref = x @ (q.float() * s[:, None]).t() + b
        # The activation is rounded to 8 bits: allow its rounding error, not a wrong layout.
        return y.shape == ref.shape and bool((y - ref).abs().max() <= 0.02 * ref.abs().max() + 1e-3)
    except Exception:  # any failure (missing op, no fbgemm in this build, a removed API) means no
        return False
