"""Which models the fast path can run, and their shapes.

The lean forward in ``forward.py`` implements one architecture: a pre-norm
decoder with RMSNorm, rotary position embeddings, grouped-query attention and a
SiLU-gated MLP. Llama, Mistral (without a sliding window in use), Qwen2 and
Qwen3 (per-head q/k norms) are all that architecture; anything else is declined
with a reason and decodes on the plain transformers path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import HearthError

MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
ROPE_TYPES = ("default", "linear", "llama3", "yarn")  # static tables; "dynamic" rescales with length


class UnsupportedModelError(HearthError):
    """The fast path does not implement this model; the plain path is used instead."""


@dataclass(frozen=True)
class ArchSpec:
    model_type: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    eps: float
    qk_norm: bool  # Qwen3: RMSNorm over each query/key head before RoPE
    max_positions: int  # longest sequence the fast path accepts

    @property
    def group(self) -> int:  # query heads per key/value head
        return self.heads // self.kv_heads


def base_model(model: Any) -> Any:
    """The causal LM under a peft wrapper, if any."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def describe(model: Any) -> ArchSpec:
    """The model's shapes, or UnsupportedModelError saying why it cannot run here."""
    model = base_model(model)
    cfg = getattr(model, "config", None)
    kind = getattr(cfg, "model_type", None)
    if kind not in MODEL_TYPES:
        raise UnsupportedModelError(f"model type {kind!r} is not one of {', '.join(MODEL_TYPES)}")
    if getattr(cfg, "hidden_act", "silu") != "silu":
        raise UnsupportedModelError(f"activation {cfg.hidden_act!r} is not silu")
    rope = getattr(cfg, "rope_parameters", None) or {}
    rope_type = rope.get("rope_type", "default") if isinstance(rope, dict) else "unknown"
    if rope_type not in ROPE_TYPES:
        raise UnsupportedModelError(f"RoPE type {rope_type!r} is not supported")
    if float(getattr(cfg, "partial_rotary_factor", 1.0) or 1.0) != 1.0:
        raise UnsupportedModelError("partial rotary embeddings are not supported")
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    max_positions = int(cfg.max_position_embeddings)
    window = _sliding_window(cfg)
    if window is not None:
        max_positions = min(max_positions, window)  # identical to full attention up to the window
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "layers") or not hasattr(model, "lm_head"):
        raise UnsupportedModelError("the model does not have the usual model.layers / lm_head layout")
    return ArchSpec(model_type=kind, layers=cfg.num_hidden_layers, hidden=cfg.hidden_size, heads=heads,
                    kv_heads=kv_heads, head_dim=head_dim, intermediate=cfg.intermediate_size,
                    vocab=model.lm_head.weight.shape[0], eps=float(cfg.rms_norm_eps), qk_norm=kind == "qwen3",
                    max_positions=max_positions)


def _sliding_window(cfg: Any) -> int | None:
    window = getattr(cfg, "sliding_window", None)
    if not window:
        return None
    if cfg.model_type in ("qwen2", "qwen3") and not getattr(cfg, "use_sliding_window", False):
        return None
    return int(window)
