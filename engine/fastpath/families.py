"""Read one transformers layer of any supported family as the lean forward's fp32 matrices.

Whatever the family names its modules (q/k/v apart or Phi3's fused
``qkv_proj``, gate/up apart or fused), the result is the same set of tensors,
with the algebra that keeps the function unchanged already applied:

- q, k, v stacked into one matrix and gate/up into another;
- each RMSNorm that feeds a matmul folded into that matrix's columns (Gemma's
  norms multiply by 1 + w, so 1 + w is folded);
- the rows of q and k reordered inside each head from transformers' "halves"
  RoPE layout to interleaved pairs, so RoPE is one complex multiply (only the
  first ``rotary_dim`` features of a head rotate; the rest keep their order);
- peft LoRA adapters merged in.

Norms that act on a matmul's *output* (Gemma2/3's post-norms, q/k norms, the
final norm) cannot be folded; their effective weights are returned as vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.fastpath.spec import ArchSpec, UnsupportedModelError, base_model


@dataclass
class RawLayer:
    """fp32 tensors of one layer. D hidden, H/KV heads, Dh head dim, I intermediate."""

    qkv: torch.Tensor  # [(H + 2 KV) Dh, D], input norm folded in, q/k rows permuted
    qkv_bias: torch.Tensor | None
    o: torch.Tensor  # [D, H Dh]
    o_bias: torch.Tensor | None
    gate_up: torch.Tensor  # [2 I, D], the pre-MLP norm folded in
    down: torch.Tensor  # [D, I]
    down_bias: torch.Tensor | None
    q_norm: torch.Tensor | None = None  # [Dh], permuted like q's rows
    k_norm: torch.Tensor | None = None
    post_attn_norm: torch.Tensor | None = None  # [D] Gemma2/3
    post_ff_norm: torch.Tensor | None = None


def effective_weight(module: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of a Linear, with any active peft LoRA adapters merged in."""
    base = getattr(module, "base_layer", None)
    if base is None:
        return module.weight.detach(), _bias(module)
    weight = base.weight.detach()
    if getattr(module, "merged", False) or getattr(module, "disable_adapters", False):
        return weight, _bias(base)
    if any(len(getattr(module, name, {}) or {}) for name in ("lora_magnitude_vector", "lora_embedding_A")):
        raise UnsupportedModelError("DoRA / embedding adapters are not supported by the fast path")
    active = getattr(module, "active_adapters", [])
    deltas = [module.get_delta_weight(a) for a in active if a in getattr(module, "lora_A", {})]
    if deltas:
        weight = weight.float() + sum(d.float() for d in deltas)
    return weight, _bias(base)


def _bias(module: Any) -> torch.Tensor | None:
    bias = getattr(module, "bias", None)
    return None if bias is None else bias.detach()


def rope_permutation(heads: int, head_dim: int, rotary_dim: int | None = None) -> torch.Tensor:
    """Row order that turns each head's [x0..x_{r-1}, y0..y_{r-1}, rest] into [x0, y0, x1, y1, ..., rest]."""
    rotary_dim = head_dim if rotary_dim is None else rotary_dim
    half = rotary_dim // 2
    inner = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).reshape(-1)
    inner = torch.cat([inner, torch.arange(rotary_dim, head_dim)])
    return (torch.arange(heads)[:, None] * head_dim + inner[None, :]).reshape(-1)


def norm_weight(norm: Any, spec: ArchSpec) -> torch.Tensor:
    """The vector an RMSNorm multiplies by, fp32: w, or 1 + w for Gemma."""
    return norm.weight.detach().float() + spec.norm_offset


def read_layer(layer: Any, spec: ArchSpec, rotary_dim: int) -> RawLayer:
    attn, mlp = layer.self_attn, layer.mlp
    H, KV, Dh = spec.heads, spec.kv_heads, spec.head_dim
    q_perm, k_perm = rope_permutation(H, Dh, rotary_dim), rope_permutation(KV, Dh, rotary_dim)
    if hasattr(attn, "qkv_proj"):  # Phi3: one matrix, rows q | k | v
        wqkv, bqkv = effective_weight(attn.qkv_proj)
        sizes = [H * Dh, KV * Dh, KV * Dh]
        (wq, wk, wv) = wqkv.float().split(sizes)
        (bq, bk, bv) = bqkv.float().split(sizes) if bqkv is not None else (None, None, None)
    else:
        (wq, bq), (wk, bk), (wv, bv) = (effective_weight(m) for m in (attn.q_proj, attn.k_proj, attn.v_proj))
    ln_in = norm_weight(layer.input_layernorm, spec)
    qkv = torch.cat([wq.float()[q_perm], wk.float()[k_perm], wv.float()]) * ln_in[None, :]
    qkv_bias = None
    if any(b is not None for b in (bq, bk, bv)):
        zeros = [torch.zeros(w.shape[0], device=w.device) for w in (wq, wk, wv)]
        bq, bk, bv = (z if b is None else b.float() for b, z in zip((bq, bk, bv), zeros))
        qkv_bias = torch.cat([bq[q_perm], bk[k_perm], bv])
    if hasattr(mlp, "gate_up_proj"):  # Phi3: rows gate | up already
        gate_up, b_gu = effective_weight(mlp.gate_up_proj)
        gate_up = gate_up.float()
    else:
        (wg, bg), (wu, bu) = (effective_weight(m) for m in (mlp.gate_proj, mlp.up_proj))
        gate_up, b_gu = torch.cat([wg.float(), wu.float()]), bg if bg is not None else bu
    if b_gu is not None:
        raise UnsupportedModelError("MLP biases are not supported")  # none of the families has them
    pre_mlp = layer.pre_feedforward_layernorm if spec.post_norms else layer.post_attention_layernorm
    gate_up = gate_up * norm_weight(pre_mlp, spec)[None, :]
    wo, bo = effective_weight(attn.o_proj)
    wd, bd = effective_weight(mlp.down_proj)
    raw = RawLayer(qkv=qkv, qkv_bias=qkv_bias, o=wo.float(), o_bias=_float(bo), gate_up=gate_up,
                   down=wd.float(), down_bias=_float(bd))
    if spec.qk_norm:
        head_perm = rope_permutation(1, Dh, rotary_dim)
        raw.q_norm = norm_weight(attn.q_norm, spec)[head_perm]
        raw.k_norm = norm_weight(attn.k_norm, spec)[head_perm]
    if spec.post_norms:
        raw.post_attn_norm = norm_weight(layer.post_attention_layernorm, spec)
        raw.post_ff_norm = norm_weight(layer.post_feedforward_layernorm, spec)
    return raw


def read_head(model: Any, spec: ArchSpec) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(lm_head weight, its bias, the final norm's effective weight fp32)."""
    model = base_model(model)
    w_head, b_head = effective_weight(model.lm_head)
    return w_head, b_head, norm_weight(model.model.norm, spec)


def _float(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.float()
