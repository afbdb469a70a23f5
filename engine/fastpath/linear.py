"""The kinds of linear layer the lean forward uses.

``Dense`` keeps the model's own dtype (the exact path). ``Int8`` keeps weights
as int8 with one bfloat16 scale per output row: one decode step then reads a
quarter of the bytes, and ``torch._weight_int8pack_mm`` with bfloat16
activations is the fastest CPU kernel for one row at a time (bench/README.md).
For prompts (many rows) the weights are dequantized to bfloat16 for one
oneDNN matmul, which beats the int8 kernel by far there. ``Int4`` holds a
GGUF file's own 4-bit groups in the layout of torch's CPU int4 kernel (prompts of 4+ rows run on
kernels/gemm.c instead where the kernels build: int8 activations, VNNI, 3-4x torch's kernel); ``Concat`` runs
parts in different formats side by side. One-row (decode) calls of ``Int4``
and ``Int8`` run on Hearth's own kernels (kernels/gemv.c: int8 activations per
block of 32, VNNI dot products, on the same tensors) where they build here.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from engine.fastpath import dynamic_int8
from engine.fastpath.kernels import gemm, gemv

_PENDING = object()  # a weight's one-row kernel, not looked for yet (the first one-row call does)

DEQUANT_ROWS = 8  # from this many rows on, dequantize and use a bf16 matmul
INT4_GEMM_ROWS = 4  # Int4 from this many rows on: Hearth's int8 GEMM (at 2 rows it is 0.84-2.4x torch's kernel)
INT4_GEMM_INPUTS = 2048  # ... and rows this long. The default model's (K = 576, 1536) keep torch's kernel: already
# 1.7x llama.cpp there, and the int8 activations moved its prompt-route perplexity on the bench's text from +0.14 %
# to +1.23 % of llama.cpp's (+0.23 % on average over five texts: bench/README.md)
DEQUANT_BLOCK = 1 << 22  # weights dequantized at a time (8 MB of bf16): a prompt never holds a whole bf16 copy
WEIGHT_ALIGN, INPUT_ALIGN = 16, 32  # bytes: the vector loads of torch's int8 kernel (AVX-512) on each row


def aligned(t: torch.Tensor, alignment: int = WEIGHT_ALIGN) -> torch.Tensor:
    """``t`` itself if it is contiguous and starts on an ``alignment``-byte boundary, else an aligned copy.

    torch's int8 kernel (``_weight_int8pack_mm``) reads weight rows (16 bytes) and activation rows (32 bytes)
    with aligned vector loads and checks neither: a weight 8 bytes off kills the process with SIGSEGV.
    Tensors torch allocates start on 64-byte boundaries; small ones read by ``safetensors.torch.load_file``
    (the packed-weights caches) start 8 bytes off."""
    if t.is_contiguous() and t.data_ptr() % alignment == 0:
        return t
    return torch.empty_like(t, memory_format=torch.contiguous_format).copy_(t)


def blocked_linear(x: torch.Tensor, out_features: int, in_features: int, dequantize, bias: torch.Tensor | None,
                   block: int | None = None):
    """``x @ W.T + b`` with W dequantized a block of output rows at a time (``dequantize(start, stop)`` ->
    [stop - start, in] bf16; ``block`` weights at a time, default DEQUANT_BLOCK). The same matmul as one
    dequantized W, with a bounded temporary copy."""
    rows = max(64, (block or DEQUANT_BLOCK) // max(1, in_features) // 64 * 64)
    if rows >= out_features:
        return F.linear(x, dequantize(0, out_features), bias)
    y = torch.empty(x.shape[0], out_features, dtype=x.dtype, device=x.device)
    for start in range(0, out_features, rows):
        stop = min(out_features, start + rows)
        y[:, start:stop] = F.linear(x, dequantize(start, stop), None if bias is None else bias[start:stop])
    return y


class Dense:
    __slots__ = ("w", "b")

    def __init__(self, w: torch.Tensor, b: torch.Tensor | None = None) -> None:
        self.w, self.b = w, b  # w: [out, in]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(self.w.dtype), self.w, self.b)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"w": self.w} | ({"b": self.b} if self.b is not None else {})


class Int8:
    """Symmetric int8 per output row: ``q`` [out, in] int8 and ``s`` [out] bf16 (w = q * s), ``b`` [out] bf16.

    ``fb`` is fbgemm's packed copy for one-row calls (``use_fbgemm``). A weight built only as that copy
    (``packed_only``: the GGUF loader's tied output matrix) has no ``q``: its few many-row calls (every
    position's logits) then run row by row on fbgemm, and ``q`` is unpacked only for a cache or a device move.
    """

    __slots__ = ("q", "s", "b", "fb", "shape", "gemv")

    def __init__(self, q: torch.Tensor, s: torch.Tensor, b: torch.Tensor | None = None) -> None:
        self.q, self.s, self.b = aligned(q), s, b  # q: [out, in] int8; s: [out] bf16; b: [out] bf16
        self.fb = None  # fbgemm's packed copy for one-row calls (use_fbgemm), or None
        self.shape = tuple(q.shape)
        self.gemv = _PENDING  # Hearth's one-row kernel (gemv.int8_kernel), None where it does not run

    @classmethod
    def packed_only(cls, fb: dynamic_int8.Packed, s: torch.Tensor, b: torch.Tensor | None = None) -> "Int8":
        self = cls.__new__(cls)
        self.q, self.s, self.b, self.fb, self.shape, self.gemv = None, s, b, fb, (fb.rows, fb.cols), None
        return self

    def use_fbgemm(self) -> bool:
        """Run one-row calls on fbgemm's dynamic int8 linear (dynamic_int8.py) where it works here and is
        asked for: about 4x faster on a big matrix, for a second copy of the weight. Returns whether it is on."""
        if self.fb is None:
            self.fb = dynamic_int8.prepack(self.q, self.s, self.b)
        return self.fb is not None

    @classmethod
    def quantize(cls, w: torch.Tensor, b: torch.Tensor | None = None) -> "Int8":
        """Symmetric per-row int8. The scale is rounded to bf16 first, so the kernel's scale is exact."""
        w = w.float()
        s = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).to(torch.bfloat16)
        q = torch.round(w / s.float()[:, None]).clamp_(-127, 127).to(torch.int8)
        return cls(q.contiguous(), s, None if b is None else b.to(torch.bfloat16))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.fb is not None and (x.shape[0] == 1 or self.q is None):
            # One activation scale per call: one row at a time. Without q only the logits of every
            # position come here with more rows (perplexity), where a row at a time costs little.
            return torch.cat([dynamic_int8.linear(row, self.fb) for row in x.split(1)])  # fp32, bias included
        if x.shape[0] == 1:
            kernel = self.gemv
            if kernel is _PENDING:
                kernel = self.gemv = gemv.int8_kernel(self.q, self.s, self.b)
            if kernel is not None:
                return kernel(x)  # fp32, bias included
        x = x.to(torch.bfloat16)
        if x.shape[0] >= DEQUANT_ROWS:
            return blocked_linear(x, self.shape[0], self.shape[1], self._rows_bf16, self.b)
        # A bf16 view into a bigger tensor may start anywhere; what torch allocates passes unchanged.
        y = torch._weight_int8pack_mm(aligned(x, INPUT_ALIGN), self.q, self.s)
        return y if self.b is None else y.add_(self.b)

    def _int8(self) -> torch.Tensor:
        """q, unpacked from fbgemm's copy where this weight keeps none (slow: the whole matrix)."""
        return self.q if self.q is not None else self.fb.unpacked()[0]

    def dequantized(self) -> torch.Tensor:
        return self._int8().to(torch.bfloat16) * self.s[:, None]

    def _rows_bf16(self, start: int, stop: int) -> torch.Tensor:
        return self.q[start:stop].to(torch.bfloat16) * self.s[start:stop, None]

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows ``ids`` of the weight, fp32 [len(ids), in]: a tied embedding looked up in the output matrix."""
        return self._int8()[ids].float().mul_(self.s[ids].float()[:, None])

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"q": self._int8(), "s": self.s} | ({"b": self.b} if self.b is not None else {})


class Int4:
    """Group-wise int4: 4-bit values, a bf16 scale and offset per group of 32 inputs (GGUF Q4_0/Q4_1/Q4_K).

    Held in the layout of torch's AVX-512 CPU int4 kernel: ``p`` [N, K / 2] uint8, viewed as [N / 64, K, 32], packs
    row 64 b + j in the low nibbles and row 64 b + 32 + j in the high ones (j < 32); ``sz`` [K / 32, N, 2]
    bf16 is (scale, zero) with w = (q - 8) * scale + zero. N is padded to a multiple of 64 with zero rows;
    ``out`` is the real N. Calls of 4+ rows (prompts) of 2048+ inputs run on kernels/gemm.c: the activation
    rounded to int8 per block of 32 as llama.cpp rounds a batch, VNNI dot products on the same tensors (3-4x
    torch's kernel, 1.7x a bf16 matmul on weights unpacked in C: bench/README.md); other calls, or where the
    kernels do not build, use torch's int4 kernel. Where torch's kernel reads another layout (its AVX2 and plain
    kernels: ``torch_reads_int4_layout``) it is never called: every call runs Hearth's kernels, or rows
    dequantized with torch ops where those do not build.
    Where every zero is 0 (Q4_0 files) ``sz`` is [K / 32, N, 1], the scales alone: a decode step then reads
    18 bytes per 32 weights instead of 20 (the decode kernel is memory-bound), and prompts add the zeros
    for torch's kernel per call.
    """

    __slots__ = ("p", "sz", "b", "out", "gemv", "gemm")
    GROUP = 32
    ROWS = 64  # the kernel's row block

    def __init__(self, p: torch.Tensor, sz: torch.Tensor, b: torch.Tensor | None = None, out: int | None = None):
        self.p, self.sz, self.b = p, sz, b
        self.out = p.shape[0] if out is None else int(out)
        self.gemv = _PENDING  # Hearth's one-row kernel on p and sz (gemv.int4_kernel), None where it does not run
        self.gemm = _PENDING  # Hearth's many-row kernel (gemm.int4_gemm) for prompts, None where it does not run

    @classmethod
    def from_groups(cls, q: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor,
                    b: torch.Tensor | None = None) -> "Int4":
        """q: [N, K] uint8 in 0..15; scale, offset: [N, K / 32] with w = q * scale + offset (GGUF's form).

        The 4-bit values are kept as they are; only scale and offset are rounded, to bf16."""
        n, k = q.shape
        if k % cls.GROUP:
            raise ValueError(f"int4 needs inputs in groups of {cls.GROUP}, not {k}")
        scale, offset = scale.float(), offset.float()
        zero = offset + 8 * scale  # the kernel subtracts 8 from every value
        pad = -n % cls.ROWS
        if pad:
            q = torch.cat([q, torch.full((pad, k), 8, dtype=torch.uint8)])
            scale = torch.cat([scale, torch.zeros(pad, scale.shape[1])])
            zero = torch.cat([zero, torch.zeros(pad, zero.shape[1])])
        parts = [scale.t()] if bool((zero == 0).all()) else [scale.t(), zero.t()]  # Q4_0: offset = -8 scale
        sz = torch.stack(parts, dim=-1).to(torch.bfloat16).contiguous()  # [K / 32, N, 2 or 1]
        return cls(pack_int4(q), sz, None if b is None else b.to(torch.bfloat16), out=n)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            kernel = self.gemv
            if kernel is _PENDING:
                kernel = self.gemv = gemv.int4_kernel(self.p, self.sz, self.b, self.out)
            if kernel is not None:
                return kernel(x)  # fp32 [1, out], bias included
        k, native = self.p.shape[1] * 2, torch_reads_int4_layout()
        if (x.shape[0] >= INT4_GEMM_ROWS and k >= INT4_GEMM_INPUTS) or not native:
            kernel = self.gemm
            if kernel is _PENDING:
                kernel = self.gemm = gemm.int4_gemm(self.p, self.sz, self.b, self.out)
            if kernel is not None:
                return kernel(x)  # bf16 [rows, out], bias included
        if not native:  # torch's kernel would read these bytes in another layout: dequantize with torch ops
            return blocked_linear(x.to(torch.bfloat16), self.out, k, self._rows_bf16, self.b)
        # Fewer rows, or no kernels here: torch's int4 kernel (unpacking with torch ops first was 2.4x (512 rows)
        # to 30x (8 rows) slower on an 8192 x 2048 matrix: bench/README.md, "GGUF direct").
        y = torch._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16), self.p, self.GROUP, self._pairs())
        if y.shape[1] != self.out:
            y = y[:, :self.out]
        return y if self.b is None else y.add_(self.b)

    def _pairs(self) -> torch.Tensor:
        """sz as torch's kernel takes it, [K / 32, N, 2] (scale, zero): zeros added where only scales are kept."""
        return self.sz if self.sz.shape[-1] == 2 else torch.cat([self.sz, torch.zeros_like(self.sz)], dim=-1)

    def _scale_zero(self, cols) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Columns ``cols`` (a slice or ids) of the scales and zeros, each [K / 32, len]; zero None when all 0."""
        parts = self.sz[:, cols].unbind(-1)
        return parts[0], parts[1] if len(parts) == 2 else None

    def dequantized(self) -> torch.Tensor:
        """[out, K] bf16."""
        return self._rows_bf16(0, self.out)

    def _rows_bf16(self, start: int, stop: int) -> torch.Tensor:
        """Rows start..stop-1 as bf16 [stop - start, K]; ``start`` is a multiple of 64 (a kernel row block)."""
        end = min(self.p.shape[0], -(-stop // self.ROWS) * self.ROWS)  # whole row blocks
        q = unpack_int4(self.p[start:end])[:stop - start].to(torch.bfloat16).sub_(8)
        scale, zero = self._scale_zero(slice(start, stop))
        q.mul_(scale.t().repeat_interleave(self.GROUP, dim=1))
        return q if zero is None else q.add_(zero.t().repeat_interleave(self.GROUP, dim=1))

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows ``ids`` of the weight, fp32 [len(ids), K], read out of the packed layout."""
        K = self.p.shape[1] * 2
        packed = self.p.view(-1, K, 32)[ids // 64, :, ids % 32]  # [S, K]: the byte holding each row's value
        q = torch.where(((ids % 64) < 32)[:, None], packed & 15, packed >> 4).float().sub_(8)
        scale, zero = self._scale_zero(ids)
        q.mul_(scale.t().float().repeat_interleave(self.GROUP, dim=1))
        return q if zero is None else q.add_(zero.t().float().repeat_interleave(self.GROUP, dim=1))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"p4": self.p, "sz": self.sz, "n": torch.tensor([self.out])} | \
            ({"b": self.b} if self.b is not None else {})


@functools.cache
def torch_reads_int4_layout() -> bool:
    """Whether torch's CPU int4 kernel reads ``Int4``'s bytes as ``pack_int4`` lays them out. torch packs int4
    for the kernel its CPU runs: its AVX-512 kernel reads [N / 64, K, 32], its AVX2 and plain ones (CPUs without
    AVX-512, Apple's) another layout, where they would multiply by scrambled weights."""
    q = torch.randint(0, 16, (64, 64), dtype=torch.int32, generator=torch.Generator().manual_seed(0))
    try:
        return torch.equal(torch._convert_weight_to_int4pack_for_cpu(q, 1), pack_int4(q.to(torch.uint8)))
    except (RuntimeError, AttributeError):  # no CPU int4 packing in this torch
        return False


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """[N, K] uint8 values 0..15 (N a multiple of 64) -> [N, K / 2] uint8, torch's CPU int4 layout
    (what ``torch._convert_weight_to_int4pack_for_cpu`` makes from int32, without the 4-byte copy)."""
    n, k = q.shape
    blocks = q.view(n // 64, 64, k).transpose(1, 2)  # [N / 64, K, 64]
    return (blocks[..., :32] | (blocks[..., 32:] << 4)).reshape(n, k // 2).contiguous()


def unpack_int4(p: torch.Tensor) -> torch.Tensor:
    """The inverse of ``pack_int4``: [N, K / 2] -> [N, K] uint8."""
    n, half = p.shape
    k = half * 2
    blocks = p.view(n // 64, k, 32)
    return torch.cat([blocks & 15, blocks >> 4], dim=-1).transpose(1, 2).reshape(n, k)


class Concat:
    """Several linears on the same input, outputs side by side: q/k/v or gate/up stored in different
    formats (a GGUF Q4_K_M file keeps v in Q6_K beside q and k in Q4_K), so they cannot be one matrix."""

    __slots__ = ("parts",)

    def __init__(self, parts: list) -> None:
        self.parts = parts

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        outs = [part(x) for part in self.parts]
        dtype = outs[0].dtype
        return torch.cat([o if o.dtype == dtype else o.to(dtype) for o in outs], dim=-1)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"{i}.{key}": t for i, part in enumerate(self.parts) for key, t in part.tensors().items()}


def from_tensors(parts: dict[str, torch.Tensor]) -> Dense | Int8 | Int4 | Concat:
    if parts and all(key.split(".", 1)[0].isdigit() for key in parts):
        count = 1 + max(int(key.split(".", 1)[0]) for key in parts)
        return Concat([from_tensors({k.split(".", 1)[1]: v for k, v in parts.items() if k.split(".", 1)[0] == str(i)})
                       for i in range(count)])
    if "p4" in parts:
        sz = parts["sz"]
        if sz.shape[-1] == 2 and not bool(sz[..., 1].any()):  # a cache written while Q4_0 kept its zeros
            sz = sz[..., :1].contiguous()
        return Int4(parts["p4"], sz, parts.get("b"), out=int(parts["n"][0]))
    if "q" in parts:
        return Int8(parts["q"], parts["s"], parts.get("b"))
    return Dense(parts["w"], parts.get("b"))
