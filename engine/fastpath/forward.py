"""A lean forward pass over packed weights with a preallocated KV cache.

Per layer and token this runs about a dozen torch ops (transformers' eager
forward runs several times as many, plus its cache and mask bookkeeping), and
the KV cache is one tensor written in place, so a decode step allocates
almost nothing. Batch size is always one: a desktop app answers one person.

Shapes: S new tokens, D hidden, H query heads, KV key/value heads, G = H / KV,
Dh head dim, T cached positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.fastpath.spec import ArchSpec
from engine.fastpath.weights import PackedWeights

CACHE_STEP = 256  # the KV cache grows in these steps (positions)


class LeanForward:
    def __init__(self, packed: PackedWeights, spec: ArchSpec, inv_freq: torch.Tensor, rope_scale: float,
                 device: torch.device, dtype: torch.dtype) -> None:
        self.w, self.spec, self.device = packed, spec, device
        self.dtype = dtype  # the residual stream, attention and KV cache
        self.inv_freq = inv_freq.float().to(device)  # [Dh / 2]
        self.rope_scale = float(rope_scale)
        self.cache: torch.Tensor | None = None  # [layers, 2 KV, capacity, Dh]: keys then values
        self.freqs: torch.Tensor | None = None  # [capacity, 1, Dh / 2] complex64

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
        # RoPE as HF computes it: angle = position * inv_freq, scaled by the rope type's factor.
        angles = torch.outer(torch.arange(size, device=self.device, dtype=torch.float32), self.inv_freq)
        self.freqs = torch.polar(torch.full_like(angles, self.rope_scale), angles)[:, None, :]

    def release(self) -> None:
        self.cache = self.freqs = None

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, start: int, logits: bool = True) -> torch.Tensor | None:
        """Run ``ids`` ([S] long) at positions start..start+S-1, filling the KV cache.

        Returns the last position's logits [V] fp32, or None when ``logits`` is False (prompt chunks).
        """
        s, w = self.spec, self.w
        S, H, KV, Dh, D = ids.shape[0], s.heads, s.kv_heads, s.head_dim, s.hidden
        end = start + S
        self.reserve(end)
        cache, freqs = self.cache, self.freqs[start:end]
        scale = Dh ** -0.5
        mask = None
        if S > 1 and start > 0:  # a chunk after cached tokens: causal, offset by start
            mask = torch.arange(end, device=self.device)[None, :] <= torch.arange(start, end, device=self.device)[:, None]
        x = w.embed[ids].to(self.dtype)  # [S, D]
        for i, layer in enumerate(w.layers):
            h = F.rms_norm(x, (D,), None, s.eps)
            qkv = layer.qkv(h).view(S, H + 2 * KV, Dh)
            if qkv.dtype != torch.float32:  # RoPE as a complex multiply needs fp32
                qkv = qkv.float()
            if layer.q_norm is not None:
                qkv[:, :H] = F.rms_norm(qkv[:, :H], (Dh,), layer.q_norm.float(), s.eps)
                qkv[:, H:H + KV] = F.rms_norm(qkv[:, H:H + KV], (Dh,), layer.k_norm.float(), s.eps)
            torch.view_as_complex(qkv[:, :H + KV].unflatten(-1, (Dh // 2, 2))).mul_(freqs)
            layer_cache = cache[i]
            layer_cache[:, start:end] = qkv[:, H:].transpose(0, 1)
            q = qkv[:, :H].to(self.dtype)
            keys, values = layer_cache[:KV, :end], layer_cache[KV:, :end]  # [KV, T, Dh]
            if S == 1:  # the G query heads that share a KV head act as G queries: no copies.
                # Three plain ops: cheaper than SDPA's dispatch for one token (bench/README.md).
                scores = torch.bmm(q.view(KV, s.group, Dh), keys.transpose(1, 2)).mul_(scale)  # [KV, G, T]
                probs = scores.softmax(-1) if scores.dtype == torch.float32 else \
                    scores.softmax(-1, dtype=torch.float32).to(values.dtype)  # bf16/fp16 (CUDA): fp32 softmax
                out = torch.bmm(probs, values).view(1, H * Dh)
            else:
                # Repeating K/V per query head costs a copy, but lets SDPA take its flash kernel on CPU
                # (enable_gqa=True falls back to the math path there: 3x slower on a 500-token prompt).
                keys, values = (t[:, None].expand(KV, s.group, end, Dh).reshape(1, H, end, Dh)
                                for t in (keys, values))
                out = F.scaled_dot_product_attention(q.transpose(0, 1)[None], keys, values, attn_mask=mask,
                                                     is_causal=mask is None)
                out = out[0].transpose(0, 1).reshape(S, H * Dh)
            x.add_(layer.o(out))
            h = F.rms_norm(x, (D,), None, s.eps)
            gate_up = layer.gate_up(h)  # [S, 2 I]
            act = F.silu(gate_up[:, :s.intermediate])
            act.mul_(gate_up[:, s.intermediate:])
            x.add_(layer.down(act))
        if not logits:
            return None
        last = F.rms_norm(x[-1:], (D,), w.final_norm, s.eps)
        return w.lm_head(last)[0].float()
