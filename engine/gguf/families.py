"""The GGUF architectures read in place, and how each differs from llama in the file.

llama.cpp's converter (convert_hf_to_gguf.py) writes every family with the
same tensor names except where listed here, and the lean forward's family
switches (engine/fastpath/spec.py) take it from there:

- q/k rows: only llama's converter permutes them into interleaved RoPE pairs;
  qwen, gemma and phi3 (NEOX RoPE in llama.cpp) keep transformers' "halves".
- gemma, gemma2, gemma3: every ``*norm.weight`` is stored as 1 + w (the
  converter adds Gemma's offset, transformers' GGUF loading subtracts it), so
  the norms are used as they are; embeddings times sqrt(hidden); GELU-tanh.
- gemma2: post-attention and post-MLP norms (``post_attention_norm``,
  ``post_ffw_norm``; ``ffn_norm`` is the pre-MLP one), soft-capped attention
  scores and logits, a sliding window on even layers.
- gemma3: gemma2's norms and q/k norms, no attention soft-cap, a sliding window
  on five layers of six whose RoPE has its own base (10 000: llama.cpp's fixed
  value; the file's ``rope.freq_base`` is the global layers').
- gemma2/3 query scale: the file has no ``query_pre_attn_scalar``; llama.cpp
  uses 1/sqrt(hidden / heads) for the 27 B models (46 and 62 layers) and
  1/sqrt(head_dim) for the others, and so does this.
- phi3: q/k/v in one matrix (``attn_qkv``), gate and up in one (``ffn_up``,
  gate rows first), a rotary part of each head (``rope.dimension_count``), a
  sliding window on every layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GEMMA_LOCAL_ROPE_THETA = 10000.0  # llama.cpp: gemma3's sliding-window layers
GEMMA2_SOFTCAPS = (50.0, 30.0)  # llama.cpp's defaults when a gemma2 file has no soft-cap keys
LARGE_GEMMA_LAYERS = {"gemma2": 46, "gemma3": 62}  # the 27 B models: query scale from hidden / heads
SLIDING, GLOBAL = "sliding_attention", "full_attention"  # transformers' layer types (and RoPE keys)


@dataclass(frozen=True)
class Family:
    model_type: str  # transformers'
    interleaved_rope: bool  # q/k rows already in interleaved-pair order (llama's converter)
    gemma: bool = False
    post_norms: bool = False  # gemma2/3
    fused: bool = False  # phi3: attn_qkv, and ffn_up holding gate | up
    window_period: int = 0  # a global layer every N (gemma2: 2, gemma3: 6); 0: the window is on every layer


FAMILIES = {
    "llama": Family("llama", True),
    "qwen2": Family("qwen2", False),
    "qwen3": Family("qwen3", False),
    "gemma": Family("gemma", False, gemma=True),
    "gemma2": Family("gemma2", False, gemma=True, post_norms=True, window_period=2),
    "gemma3": Family("gemma3_text", False, gemma=True, post_norms=True, window_period=6),
    "phi3": Family("phi3", False, fused=True),
}


def switches(f: Any, arch: str, *, layers: int, hidden: int, heads: int, head_dim: int) -> dict:
    """The ModelMeta fields that differ by family, read from ``f``'s metadata."""
    fam = FAMILIES[arch]
    window = f.value(f"{arch}.attention.sliding_window", 0)
    window = int(window) if window else None
    out: dict = {"windows": _windows(window, layers, fam.window_period), "sliding_window": window}
    if not fam.gemma:
        return out
    import torch

    out.update(act="gelu_tanh", embed_scale=float(torch.tensor(hidden ** 0.5, dtype=torch.float32)),
               post_norms=fam.post_norms)
    if arch in LARGE_GEMMA_LAYERS:
        large = LARGE_GEMMA_LAYERS[arch] == layers
        out["attn_scale"] = (hidden / heads if large else head_dim) ** -0.5
    if arch == "gemma2":
        attn_cap, final_cap = GEMMA2_SOFTCAPS
        out.update(attn_softcap=_float(f.value(f"{arch}.attn_logit_softcapping", attn_cap)),
                   final_softcap=_float(f.value(f"{arch}.final_logit_softcapping", final_cap)))
    if arch == "gemma3":
        out.update(final_softcap=_float(f.value(f"{arch}.final_logit_softcapping", None)),
                   rope_local_theta=GEMMA_LOCAL_ROPE_THETA,
                   rope_keys=tuple(GLOBAL if w is None else SLIDING for w in _windows(1, layers, 6)))
    return out


def _windows(window: int | None, layers: int, period: int) -> tuple[int | None, ...]:
    """Per layer: the window, or None for a global layer (every ``period``-th, counting from 1)."""
    if not window:
        return ()
    if not period:
        return (window,) * layers
    return tuple(None if (i + 1) % period == 0 else window for i in range(layers))


def _float(value: Any) -> float | None:
    return float(value) if value else None
