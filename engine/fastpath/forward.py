"""A lean forward pass over packed weights with a preallocated KV cache.

Per layer and token this runs about a dozen torch ops (transformers' eager
forward runs several times as many, plus its cache and mask bookkeeping), and
the KV cache is one tensor written in place, so a decode step allocates
almost nothing. Batch size is always one: a desktop app answers one person.
The family switches (spec.py) add ops only to the families that need them.
Where Hearth's kernels run (quantized weights on the CPU), one token goes
through every layer in one C call instead (kernels/step.c: the same ops in the
same order); this file stays the reference the tests hold it to.

Shapes: S new tokens, D hidden, H query heads, KV key/value heads, G = H / KV,
Dh head dim, T cached positions.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from engine.fastpath.kernels import build
from engine.fastpath.spec import ArchSpec
from engine.fastpath.weights import PackedWeights

CACHE_STEP = 256  # the KV cache grows in these steps (positions)
_PENDING = object()  # the C step not looked for yet (the first one-token forward on a new cache does)


class LeanForward:
    def __init__(self, packed: PackedWeights, spec: ArchSpec, ropes: dict[str, tuple[torch.Tensor, float]],
                 device: torch.device, dtype: torch.dtype) -> None:
        """``ropes``: RoPE key -> (inv_freq [rotary / 2], attention scaling), as ``spec.rope_tables`` reads them."""
        self.w, self.spec, self.device = packed, spec, device
        self.dtype = dtype  # the residual stream, attention and KV cache
        self.ropes = {key: (inv.float().to(device), float(scale)) for key, (inv, scale) in ropes.items()}
        self.layer_rope = [spec.rope_key(i) for i in range(spec.layers)]
        self.layer_window = [spec.window(i) for i in range(spec.layers)]
        self.group, self.scale = spec.group, spec.scale
        # Quantized weights (GGUF int4 groups / int8, the int8 pack) multiply bf16 activations: their norms
        # write bf16 directly. Dense weights (the exact path) take the residual stream's dtype.
        quantized = packed.mode in ("gguf", "int8")
        self.matmul_dtype = torch.bfloat16 if quantized else dtype
        # One-row RMSNorm as a dot product and one fused multiply (``norm``): CPU, fp32 stream, quantized only.
        self.row_norm = quantized and device.type == "cpu" and dtype == torch.float32
        self._zero = torch.zeros(1, device=device)  # addcmul's addend in ``norm``
        self.cache: torch.Tensor | None = None  # [layers, 2 KV, capacity, Dh]: keys then values
        # Views of each layer's cache, made once per allocation (a decode step slices no more than it must):
        self.layer_cache: list[torch.Tensor] = []  # [2 KV, capacity, Dh]
        self.layer_kv: list[tuple[torch.Tensor, torch.Tensor]] = []  # ([KV, capacity, Dh] keys, values)
        self.freqs: dict[str, torch.Tensor] = {}  # key -> [capacity, 1, Dh / 2] complex64
        # One token's layers in one C call (kernels/step.c), bound per cache allocation: None where it cannot run
        self._c_step: Any = _PENDING
        self.use_c_step = True

    @property
    def capacity(self) -> int:
        return 0 if self.cache is None else self.cache.shape[2]

    def reserve(self, positions: int) -> None:
        """Make room for ``positions`` tokens, keeping what is cached."""
        if positions <= self.capacity:
            return
        s = self.spec
        size = min(s.max_positions, -(-positions // CACHE_STEP) * CACHE_STEP)
        cache = torch.zeros(s.layers, 2 * s.kv_heads, size, s.head_dim, dtype=self.dtype, device=self.device)
        if self.cache is not None:
            cache[:, :, :self.capacity] = self.cache
        self.cache = cache
        self.layer_cache = list(cache.unbind(0))
        self.layer_kv = [(c[:s.kv_heads], c[s.kv_heads:]) for c in self.layer_cache]
        self.freqs = {key: self._rope_table(inv, scale, size) for key, (inv, scale) in self.ropes.items()}
        self._c_step = _PENDING

    def _rope_table(self, inv_freq: torch.Tensor, scale: float, size: int) -> torch.Tensor:
        """RoPE as transformers computes it: angle = position * inv_freq, times the rope type's scaling.
        Pairs past the rotary dimension (partial rotary) are multiplied by 1."""
        angles = torch.outer(torch.arange(size, device=self.device, dtype=torch.float32), inv_freq)
        table = torch.polar(torch.full_like(angles, scale), angles)
        rest = self.spec.head_dim // 2 - table.shape[1]
        if rest:
            table = torch.cat([table, torch.ones(size, rest, dtype=table.dtype, device=self.device)], dim=1)
        return table[:, None, :]

    def release(self) -> None:
        self.cache, self.freqs, self.layer_cache, self.layer_kv = None, {}, [], []
        self._c_step = _PENDING

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, start: int, logits: bool = True,
                all_positions: bool = False) -> torch.Tensor | None:
        """Run ``ids`` ([S] long) at positions start..start+S-1, filling the KV cache.

        Returns the last position's logits [V] fp32 (every position's, [S, V], with ``all_positions``),
        or None when ``logits`` is False (prompt chunks).
        """
        end = start + ids.shape[0]
        self.reserve(end)
        if ids.shape[0] == 1 and (step := self.c_step()) is not None:  # one token: the same layers, in C
            x = self.embed(ids).contiguous()
            step(x, start)
            return self.logits(x, all_positions) if logits else None
        freqs = {key: table[start:end] for key, table in self.freqs.items()}
        masks: dict[int | None, torch.Tensor | None] = {}  # window -> prompt mask, built once per call

        def attend(i: int, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
            layer_cache = self.layer_cache[i]
            layer_cache[:, start:end] = kv.transpose(0, 1)
            window = self.layer_window[i]
            if q.shape[0] == 1:
                return self._attend_one(q, self.layer_kv[i], end, window)
            if window not in masks:
                masks[window] = _prompt_mask(start, end, window, self.device)
            return self._attend_many(q, layer_cache, start, end, window, masks[window])

        x = self.embed(ids)
        for i, layer in enumerate(self.w.layers):
            x = self.layer(i, layer, x, freqs[self.layer_rope[i]], attend)
        return self.logits(x, all_positions) if logits else None

    def c_step(self) -> Any:
        """``layer`` for one token over all layers in one C call (kernels/step.c), or None where it does not run:
        a decode step is ~20 small ops per layer around 4 matmuls, and from Python those took as long as the
        matmuls on 2 threads (bench/README.md). ``use_c_step = False`` keeps the Python layers (tests)."""
        if not self.use_c_step:
            return None
        if self._c_step is _PENDING:
            from engine.fastpath.kernels.step import layers_step

            self._c_step = layers_step(self)
        return self._c_step

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """[S] -> [S, D] in the residual stream's dtype (Gemma: times sqrt(hidden))."""
        x = self.w.embed[ids].to(self.dtype)
        if self.spec.embed_scale != 1.0:
            x.mul_(self.spec.embed_scale)
        return x

    def layer(self, i: int, layer: Any, x: torch.Tensor, freqs: torch.Tensor, attend: Callable) -> torch.Tensor:
        """One decoder layer on x [S, D], in place. ``freqs`` [S, 1, Dh / 2] complex: RoPE at the S positions.
        ``attend(i, q [S, H, Dh], kv [S, 2 KV, Dh]) -> [S, H Dh]`` stores the new keys/values and attends."""
        s = self.spec
        S, H, KV, Dh, D = x.shape[0], s.heads, s.kv_heads, s.head_dim, s.hidden
        h = self.norm(x, layer.attn_norm, self.matmul_dtype)  # None: folded into qkv
        qkv = layer.qkv(h).view(S, H + 2 * KV, Dh)
        if qkv.dtype != torch.float32:  # RoPE as a complex multiply needs fp32
            qkv = qkv.float()
        if layer.q_norm is not None:
            qkv[:, :H] = F.rms_norm(qkv[:, :H], (Dh,), layer.q_norm.float(), s.eps)
            qkv[:, H:H + KV] = F.rms_norm(qkv[:, H:H + KV], (Dh,), layer.k_norm.float(), s.eps)
        torch.view_as_complex(qkv[:, :H + KV].view(S, H + KV, Dh // 2, 2)).mul_(freqs)
        out = layer.o(attend(i, qkv[:, :H].to(self.dtype), qkv[:, H:]))
        if layer.post_attn_norm is not None:
            out = F.rms_norm(out.to(layer.post_attn_norm.dtype), (D,), layer.post_attn_norm, s.eps)
        x.add_(out)
        h = self.norm(x, layer.ffn_norm, self.matmul_dtype)  # None: folded into gate_up
        gate_up = layer.gate_up(h)  # [S, 2 I]
        gate = gate_up[:, :s.intermediate]
        act = F.silu(gate) if s.act == "silu" else F.gelu(gate, approximate="tanh")
        act.mul_(gate_up[:, s.intermediate:])
        out = layer.down(act)
        if layer.post_ff_norm is not None:
            out = F.rms_norm(out.to(layer.post_ff_norm.dtype), (D,), layer.post_ff_norm, s.eps)
        return x.add_(out)

    def norm(self, x: torch.Tensor, weight: torch.Tensor | None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """RMSNorm of x [S, D] times ``weight`` [D] (None: folded into the next matmul), in ``dtype`` (x's)."""
        D, eps = x.shape[1], self.spec.eps
        if x.shape[0] != 1 or not self.row_norm:
            h = F.rms_norm(x, (D,), weight, eps)
            return h if dtype is None else h.to(dtype)
        # One decode row: F.rms_norm is seven small ops on the CPU (14 us for D = 576 with the cast to bf16,
        # 60 norms a step); one dot product and one multiply that writes the matmul's dtype take 8 us.
        inv = 1.0 / math.sqrt(float(torch.dot(x[0], x[0])) / D + eps)
        if dtype is not None and self.row_fp32():  # Hearth's kernels round fp32 to int8 (as step.c does)
            dtype = None
        out = torch.empty(x.shape, dtype=dtype or x.dtype)
        if weight is None:
            return torch.mul(x, inv, out=out)
        return torch.addcmul(self._zero, x, weight, value=inv, out=out)

    def row_fp32(self) -> bool:
        """Whether one-row matmuls take the norm's output in fp32: Hearth's kernels round it to int8 themselves
        (a bf16 rounding first was a second rounding; torch's kernels want bf16)."""
        return build.load() is not None  # loaded once per process

    def logits(self, x: torch.Tensor, all_positions: bool = False) -> torch.Tensor:
        """[S, D] -> the last position's logits [V] fp32, or every position's [S, V]."""
        s, w = self.spec, self.w
        last = self.norm(x if all_positions else x[-1:], w.final_norm)
        out = w.lm_head(last).float()
        out = out if all_positions else out[0]
        if s.final_softcap:
            out = out.div_(s.final_softcap).tanh_().mul_(s.final_softcap)
        return out

    def _attend_one(self, q: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], end: int,
                    window: int | None) -> torch.Tensor:
        """One token: the G query heads that share a KV head act as G queries of one bmm: no copies.
        Three plain ops: cheaper than SDPA's dispatch for one token (bench/README.md). ``kv``: the layer's
        (keys, values) caches [KV, capacity, Dh]. Returns [1, H Dh]."""
        s = self.spec
        KV, Dh = s.kv_heads, s.head_dim
        lo = max(0, end - window) if window else 0
        keys, values = kv[0][:, lo:end], kv[1][:, lo:end]  # [KV, T, Dh]
        scores = torch.bmm(q.view(KV, self.group, Dh), keys.transpose(1, 2)).mul_(self.scale)  # [KV, G, T]
        if s.attn_softcap:
            scores = scores.div_(s.attn_softcap).tanh_().mul_(s.attn_softcap)
        probs = scores.softmax(-1) if scores.dtype == torch.float32 else \
            scores.softmax(-1, dtype=torch.float32).to(values.dtype)  # bf16/fp16 (CUDA): fp32 softmax
        return torch.bmm(probs, values).view(1, s.heads * Dh)

    def _attend_many(self, q: torch.Tensor, layer_cache: torch.Tensor, start: int, end: int,
                     window: int | None, mask: torch.Tensor | None) -> torch.Tensor:
        """A prompt chunk at start..end-1, attending to the cache up to end. Returns [S, H Dh]."""
        s = self.spec
        S, H, KV, G, Dh = q.shape[0], s.heads, s.kv_heads, s.group, s.head_dim
        lo = _window_start(start, window)
        keys, values = layer_cache[:KV, lo:end], layer_cache[KV:, lo:end]  # [KV, T, Dh]
        T = end - lo
        if s.attn_softcap:  # SDPA cannot soft-cap: scores by hand, per KV head, G·S queries each
            scores = torch.bmm(q.view(S, KV, G, Dh).permute(1, 2, 0, 3).reshape(KV, G * S, Dh),
                               keys.transpose(1, 2)).mul_(s.scale)  # [KV, G S, T]
            scores = scores.div_(s.attn_softcap).tanh_().mul_(s.attn_softcap).view(KV, G, S, T)
            if mask is None:
                mask = _prompt_mask(start, end, window, self.device, force=True)
            scores.masked_fill_(~mask, float("-inf"))
            probs = scores.softmax(-1, dtype=torch.float32).to(values.dtype).view(KV, G * S, T)
            out = torch.bmm(probs, values).view(KV, G, S, Dh)  # [KV, G, S, Dh]
            return out.permute(2, 0, 1, 3).reshape(S, H * Dh)
        # Repeating K/V per query head costs a copy, but lets SDPA take its flash kernel on CPU
        # (enable_gqa=True falls back to the math path there: 3x slower on a 500-token prompt).
        keys, values = (t[:, None].expand(KV, G, T, Dh).reshape(1, H, T, Dh) for t in (keys, values))
        out = F.scaled_dot_product_attention(q.transpose(0, 1)[None], keys, values, attn_mask=mask,
                                             is_causal=mask is None, scale=s.scale)
        return out[0].transpose(0, 1).reshape(S, H * Dh)


def _window_start(start: int, window: int | None) -> int:
    """The first cached position any query of a chunk starting at ``start`` can see."""
    return max(0, start - window + 1) if window else 0


def _prompt_mask(start: int, end: int, window: int | None, device: torch.device,
                 force: bool = False) -> torch.Tensor | None:
    """[S, T] bool, True where query i (absolute start + row) sees key j (absolute lo + column):
    j <= i, and i - W < j with a window. None when plain causal from 0 says the same (SDPA's is_causal)."""
    lo = _window_start(start, window)
    if not force and start == 0 and (window is None or end <= window):
        return None
    i = torch.arange(start, end, device=device)[:, None]
    j = torch.arange(lo, end, device=device)[None, :]
    mask = j <= i
    if window:
        mask &= j > i - window
    return mask
