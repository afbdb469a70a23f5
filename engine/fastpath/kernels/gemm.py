"""Many-row (prompt) matmuls of ``Int4`` weights on Hearth's int8 GEMM (gemm.c), where the kernels run here.

``int4_gemm(p, sz, b, out)`` checks a weight's tensors once (the same layout
checks as gemv's one-row kernel) and returns a callable ``x [M, K] -> y [M, out]``
(bf16, bias included), or None where the kernels cannot run (the caller keeps its
other path). Each activation row is rounded to int8 per block of 32 inputs inside
the kernel, as llama.cpp rounds a batch before its Q4_0 GEMM; the weights stay in
torch's int4 layout, no second copy of them is made.
"""

from __future__ import annotations

import ctypes

import torch

from engine.fastpath.kernels import build, gemv

_BF16, _F32 = torch.bfloat16, torch.float32


def _function(lib: ctypes.CDLL, name: str = "hearth_int4_gemm"):
    """The library's GEMM with its argument types (declared here, on the function object each CDLL keeps);
    ``hearth_int4_gemv_rows`` (gemv.c) takes the same arguments."""
    fn = getattr(lib, name)
    if fn.argtypes is None:
        p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
        # x, x_bf16, m, ldx, p, sz, pairs, bias, y, y_bf16, ldy, n_out, npad, k, threads, isa
        fn.argtypes = [p, i32, i64, i64, p, p, i32, p, p, i32, i64, i64, i64, i64, i32, i32]
        fn.restype = ctypes.c_int
    return fn


class Gemm:
    """One weight's GEMM: ``self(x)`` with x [M, K] fp32 or bf16 (rows may be a strided view) -> [M, out] bf16."""

    __slots__ = ("fn", "p", "sz", "b", "out", "npad", "k", "isa")

    def __init__(self, fn, p: torch.Tensor, sz: torch.Tensor, b: torch.Tensor | None, out: int) -> None:
        self.fn, self.p, self.sz, self.b, self.out = fn, p, sz, b, out  # the tensors pointed to stay referenced
        self.npad, self.k = p.shape[0], p.shape[1] * 2
        self.isa = build.isa()

    def __call__(self, x: torch.Tensor, threads: int | None = None, dtype: torch.dtype = _BF16) -> torch.Tensor:
        if x.dtype is not _BF16 and x.dtype is not _F32:
            x = x.float()
        if x.dim() != 2 or x.shape[1] != self.k or x.stride(1) != 1:
            x = x.reshape(-1, self.k).contiguous()
        y = torch.empty(x.shape[0], self.out, dtype=dtype)
        if x.shape[0] == 0:
            return y
        if self.fn(x.data_ptr(), x.dtype is _BF16, x.shape[0], x.stride(0), self.p.data_ptr(), self.sz.data_ptr(),
                   self.sz.shape[2], gemv._ptr(self.b), y.data_ptr(), dtype is _BF16,
                   self.out, self.out, self.npad, self.k, threads or torch.get_num_threads(), self.isa):
            raise RuntimeError("int4 GEMM kernel refused its arguments (or found no memory)")
        return y


# build.isa() == 1 (AVX2): gemm.c has no AVX2 code and its plain C ran 25x slower than torch's AVX2 int4 kernel, so
# prompts run the one-row AVX2 kernel row by row (gemv.c hearth_int4_gemv_rows): faster than torch's AVX2 kernel, and
# right where it is not (torch's AVX2 and plain kernels read another int4 layout than Int4's; bench/README.md).
# HEARTH_KERNELS=generic still runs gemm.c's plain C (tests).


def int4_gemm(p: torch.Tensor, sz: torch.Tensor, b: torch.Tensor | None, out: int) -> Gemm | None:
    """p [Npad, K / 2] uint8 and sz [K / 32, Npad, 1 or 2] bf16 in torch's CPU int4 layout (linear.Int4)."""
    lib = build.load()
    if lib is None or not gemv._int4_ok(p, sz) or not gemv._bias_ok(b, out) or not 0 < out <= p.shape[0]:
        return None
    return Gemm(_function(lib, "hearth_int4_gemv_rows" if build.isa() == 1 else "hearth_int4_gemm"), p, sz, b, out)
