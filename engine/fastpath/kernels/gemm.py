"""Many-row (prompt) matmuls of ``Int4`` / ``Int8`` weights on Hearth's int8 GEMM (gemm.c), where the kernels run.

``int4_gemm(p, sz, b, out)`` / ``int8_gemm(q, s, b)`` check a weight's tensors
once (the same layout checks as gemv's one-row kernels) and return a callable
``x [M, K] -> y [M, out]`` (bf16, bias included), or None where the kernels
cannot run (the caller keeps its other path). Each activation row is rounded to
int8 per block of 32 inputs inside the kernel, as llama.cpp rounds a batch before
its Q4_0 / Q8_0 GEMMs; the weights are read where they are, no second copy is made.
"""

from __future__ import annotations

import ctypes

import torch

from engine.fastpath.kernels import build, gemv

_BF16, _F32 = torch.bfloat16, torch.float32


def _declared(lib: ctypes.CDLL, name: str):
    """The library's function ``name`` with its argument types (declared here, on the function object each
    CDLL keeps, so a reloaded library gets them too)."""
    fn = getattr(lib, name)
    if fn.argtypes is None:
        p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
        fn.argtypes = {  # x, x_bf16, m, ldx, <weight>, y, y_bf16, ldy, n_out, <sizes>, threads, isa
            "hearth_int4_gemm": [p, i32, i64, i64, p, p, i32, p, p, i32, i64, i64, i64, i64, i32, i32],
            "hearth_int8_gemm": [p, i32, i64, i64, p, p, p, p, i32, i64, i64, i64, i32, i32],
        }[name]
        fn.restype = ctypes.c_int
    return fn


class Gemm:
    """One weight's GEMM: ``self(x)`` with x [M, K] fp32 or bf16 (rows may be a strided view) -> [M, out] bf16
    (or ``dtype``). ``head`` / ``tail``: the weight's arguments before y and after ldy, bound once."""

    __slots__ = ("fn", "head", "tail", "out", "k", "isa", "keep")

    def __init__(self, fn, head: tuple, tail: tuple, out: int, k: int, keep: tuple) -> None:
        self.fn, self.head, self.tail, self.out, self.k = fn, head, tail, out, k
        self.keep = keep  # the tensors pointed to
        self.isa = build.isa()

    def __call__(self, x: torch.Tensor, threads: int | None = None, dtype: torch.dtype = _BF16) -> torch.Tensor:
        if x.dtype is not _BF16 and x.dtype is not _F32:
            x = x.float()
        if x.dim() != 2 or x.shape[1] != self.k or x.stride(1) != 1:
            x = x.reshape(-1, self.k).contiguous()
        y = torch.empty(x.shape[0], self.out, dtype=dtype)
        if x.shape[0] == 0:
            return y
        if self.fn(x.data_ptr(), x.dtype is _BF16, x.shape[0], x.stride(0), *self.head, y.data_ptr(), dtype is _BF16,
                   self.out, self.out, *self.tail, threads or torch.get_num_threads(), self.isa):
            raise RuntimeError("GEMM kernel refused its arguments (or found no memory)")
        return y


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


# build.isa() == 1 (AVX2): gemm.c has no AVX2 code and its plain C ran 25x slower than torch's AVX2 int4 kernel
# (bench/README.md), so prompts keep torch's kernels there; HEARTH_KERNELS=generic still runs the plain C (tests).


def int4_gemm(p: torch.Tensor, sz: torch.Tensor, b: torch.Tensor | None, out: int) -> Gemm | None:
    """p [Npad, K / 2] uint8 and sz [K / 32, Npad, 1 or 2] bf16 in torch's CPU int4 layout (linear.Int4)."""
    lib = build.load()
    if lib is None or build.isa() == 1 or not gemv._int4_ok(p, sz) or not gemv._bias_ok(b, out) \
            or not 0 < out <= p.shape[0]:
        return None
    npad, k = p.shape[0], p.shape[1] * 2
    return Gemm(_declared(lib, "hearth_int4_gemm"), (p.data_ptr(), sz.data_ptr(), sz.shape[2], _ptr(b)), (npad, k),
                out, k, (p, sz, b))


def int8_gemm(q: torch.Tensor, s: torch.Tensor, b: torch.Tensor | None) -> Gemm | None:
    """q [N, K] int8 (values -127..127), s [N] bf16 row scales (linear.Int8)."""
    lib = build.load()
    if lib is None or build.isa() == 1 or q is None or q.device.type != "cpu" or q.dtype != torch.int8 \
            or s.dtype != torch.bfloat16 \
            or q.dim() != 2 or not (q.is_contiguous() and s.is_contiguous()) or q.shape[1] % 32 or q.shape[0] == 0 \
            or tuple(s.shape) != (q.shape[0],) or not gemv._bias_ok(b, q.shape[0]):
        return None
    n, k = q.shape
    return Gemm(_declared(lib, "hearth_int8_gemm"), (q.data_ptr(), s.data_ptr(), _ptr(b)), (k,), n, k, (q, s, b))
