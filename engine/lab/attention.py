"""Attention weights of the lab's Transformer, computed step by step.

``nn.TransformerEncoderLayer`` asks its attention for outputs only (``need_weights=False``) to run
faster, so the weights are recomputed here from the layer's own parameters and the exact input it
received (captured with a forward pre-hook). The tests check these weights against
``nn.MultiheadAttention`` itself.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def layer_attention(layer: nn.TransformerEncoderLayer, x: torch.Tensor,
                    mask: torch.Tensor | None) -> torch.Tensor:
    """x: (B, T, D), the layer's input -> attention weights (B, H, T, T); rows sum to 1.

    headᵢ = Attention(Q Wᵢᑫ, K Wᵢᴷ, V Wᵢⱽ) with Attention(q, k, v) = softmax(q kᵀ / √d_k + M) v;
    this returns the softmax(…) part: how much each position (row) looks at each other one (column).
    """
    attn: nn.MultiheadAttention = layer.self_attn
    if layer.norm_first:  # pre-norm layers normalise before attention
        x = layer.norm1(x)
    batch, length, width = x.shape
    heads = attn.num_heads
    d_k = width // heads
    # in_proj_weight stacks W^Q, W^K, W^V for all heads: (3D, D)
    q, k, _v = nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)  # 3 × (B, T, D)

    def split_heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(batch, length, heads, d_k).transpose(1, 2)  # (B, T, D) -> (B, H, T, d_k)

    scores = split_heads(q) @ split_heads(k).transpose(-2, -1) / math.sqrt(d_k)  # (B, H, T, T)
    if mask is not None:
        scores = scores + mask  # (T, T) broadcast: -inf above the diagonal when causal
    return scores.softmax(dim=-1)  # (B, H, T, T)


@torch.no_grad()
def lab_attention_maps(model, input_ids: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``model`` (a LabTransformer) once; return (logits (B, T, V), per-layer weights [(B, H, T, T)])."""
    captured: list[torch.Tensor] = []
    hooks = [layer.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
             for layer in model.encoder.layers]
    try:
        logits = model(input_ids)
    finally:
        for hook in hooks:
            hook.remove()
    mask = model.mask_for(input_ids.size(1), input_ids.device)
    maps = [layer_attention(layer, x, mask) for layer, x in zip(model.encoder.layers, captured)]
    return logits, maps
