"""The two kinds of linear layer the lean forward uses.

``Dense`` keeps the model's own dtype (the exact path). ``Int8`` keeps weights
as int8 with one bfloat16 scale per output row: one decode step then reads a
quarter of the bytes, and ``torch._weight_int8pack_mm`` with bfloat16
activations is the fastest CPU kernel for one row at a time (bench/README.md).
For prompts (many rows) the weights are dequantized to bfloat16 for one
oneDNN matmul, which beats the int8 kernel by far there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEQUANT_ROWS = 8  # from this many rows on, dequantize and use a bf16 matmul


class Dense:
    __slots__ = ("w", "b")

    def __init__(self, w: torch.Tensor, b: torch.Tensor | None = None) -> None:
        self.w, self.b = w, b  # w: [out, in]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(self.w.dtype), self.w, self.b)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"w": self.w} | ({"b": self.b} if self.b is not None else {})


class Int8:
    __slots__ = ("q", "s", "b")

    def __init__(self, q: torch.Tensor, s: torch.Tensor, b: torch.Tensor | None = None) -> None:
        self.q, self.s, self.b = q, s, b  # q: [out, in] int8; s: [out] bf16; b: [out] bf16

    @classmethod
    def quantize(cls, w: torch.Tensor, b: torch.Tensor | None = None) -> "Int8":
        """Symmetric per-row int8. The scale is rounded to bf16 first, so the kernel's scale is exact."""
        w = w.float()
        s = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).to(torch.bfloat16)
        q = torch.round(w / s.float()[:, None]).clamp_(-127, 127).to(torch.int8)
        return cls(q.contiguous(), s, None if b is None else b.to(torch.bfloat16))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.bfloat16)
        if x.shape[0] >= DEQUANT_ROWS:
            return F.linear(x, self.dequantized(), self.b)
        y = torch._weight_int8pack_mm(x, self.q, self.s)
        return y if self.b is None else y.add_(self.b)

    def dequantized(self) -> torch.Tensor:
        return self.q.to(torch.bfloat16) * self.s[:, None]

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"q": self.q, "s": self.s} | ({"b": self.b} if self.b is not None else {})


def from_tensors(parts: dict[str, torch.Tensor]) -> Dense | Int8:
    if "q" in parts:
        return Int8(parts["q"], parts["s"], parts.get("b"))
    return Dense(parts["w"], parts.get("b"))
