"""One-row matmuls of ``Int4`` / ``Int8`` weights on Hearth's own kernels (gemv.c), where they run here.

``int4_kernel(...)`` / ``int8_kernel(...)`` check a weight's tensors once (dtype,
contiguity) and return a callable ``x [1, K] -> y [1, N] fp32`` (bias included),
or None where the kernels cannot run (the caller keeps torch's kernel). A call
costs one ctypes call and one ``torch.empty``: the pointers and sizes are bound
once. The activation row is rounded to int8 per block of 32 inputs inside the
kernel, as llama.cpp does for one row (perplexity: bench/README.md).
"""

from __future__ import annotations

import torch

from engine.fastpath.kernels import build


def _ptr(t: torch.Tensor | None) -> int | None:
    """A tensor's address for ctypes, NULL for None (an absent bias)."""
    return None if t is None else t.data_ptr()


_BF16, _F32 = torch.bfloat16, torch.float32
_threads = torch.get_num_threads


class _Kernel:
    """One weight's kernel: ``fn(x, x_is_bf16, *head, y, *tail, threads, isa)`` with head/tail bound once."""

    __slots__ = ("fn", "head", "tail", "n", "isa", "keep")

    def __init__(self, fn, head: tuple, tail: tuple, n: int, keep: tuple) -> None:
        self.fn, self.head, self.tail, self.n, self.keep = fn, head, tail, n, keep  # keep: the tensors pointed to
        self.isa = build.isa()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        if dtype is not _BF16 and dtype is not _F32:
            x, dtype = x.float(), _F32
        if not x.is_contiguous():
            x = x.contiguous()
        y = torch.empty(1, self.n)
        if self.fn(x.data_ptr(), dtype is _BF16, *self.head, y.data_ptr(), *self.tail, _threads(), self.isa):
            raise RuntimeError("gemv kernel refused its arguments")
        return y


def int4_kernel(p: torch.Tensor, sz: torch.Tensor, b: torch.Tensor | None, out: int) -> _Kernel | None:
    """p [Npad, K / 2] uint8 and sz [K / 32, Npad, 2] bf16 in torch's CPU int4 layout (linear.Int4); sz
    [K / 32, Npad, 1]: scales only, every zero 0."""
    lib = build.load()
    if lib is None or not _int4_ok(p, sz) or not _bias_ok(b, out):
        return None
    npad, k = p.shape[0], p.shape[1] * 2
    return _Kernel(lib.hearth_int4_gemv, (p.data_ptr(), sz.data_ptr(), sz.shape[2], _ptr(b)), (out, npad, k), out,
                   (p, sz, b))


def _int4_ok(p: torch.Tensor, sz: torch.Tensor) -> bool:
    """p and sz are what the C kernels read: torch's CPU int4 layout, contiguous, on the CPU."""
    npad, k = p.shape[0], p.shape[1] * 2
    return p.device.type == "cpu" and p.dtype == torch.uint8 and sz.dtype == torch.bfloat16 \
        and p.is_contiguous() and sz.is_contiguous() and not npad % 64 and not k % 32 \
        and sz.dim() == 3 and tuple(sz.shape[:2]) == (k // 32, npad) and sz.shape[2] in (1, 2)


def int8_kernel(q: torch.Tensor, s: torch.Tensor, b: torch.Tensor | None) -> _Kernel | None:
    """q [N, K] int8 (values -127..127), s [N] bf16 row scales (linear.Int8)."""
    lib = build.load()
    if lib is None or not _int8_ok(q, s, b):
        return None
    return _Kernel(lib.hearth_int8_gemv, (q.data_ptr(), s.data_ptr(), _ptr(b)), (q.shape[0], q.shape[1]),
                   q.shape[0], (q, s, b))


def _int8_ok(q: torch.Tensor | None, s: torch.Tensor, b: torch.Tensor | None) -> bool:
    """q, s and b are what the C kernels read: row-major int8 rows of 32k inputs, bf16 row scales and bias."""
    return q is not None and q.device.type == "cpu" and q.dtype == torch.int8 and s.dtype == torch.bfloat16 \
        and q.dim() == 2 and q.is_contiguous() and s.is_contiguous() and not q.shape[1] % 32 \
        and tuple(s.shape) == (q.shape[0],) and _bias_ok(b, q.shape[0])


def _bias_ok(b: torch.Tensor | None, n: int) -> bool:
    return b is None or (b.dtype == torch.bfloat16 and b.is_contiguous() and tuple(b.shape) == (n,)
                         and b.device.type == "cpu")
