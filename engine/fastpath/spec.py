"""Which models the fast path can run, and their shapes.

The lean forward in ``forward.py`` implements one pre-norm decoder (RMSNorm,
rotary position embeddings, grouped-query attention, a gated MLP) with the
switches the supported families need:

- llama, mistral, qwen2, qwen3: the plain layout (qwen3 adds per-head q/k norms);
- phi3: q/k/v and gate/up already fused in the checkpoint, partial rotary,
  "longrope" up to its original context;
- gemma: embeddings scaled by sqrt(hidden), (1 + w) RMSNorm, GELU-tanh MLP;
- gemma2: + a norm after attention and after the MLP, attention and final
  logit soft-capping, sliding-window layers alternating with global ones,
  a query scale from ``query_pre_attn_scalar``;
- gemma3 (text): gemma2 without attention soft-capping, + q/k norms and a
  RoPE base per layer type (local layers use their own base).

Anything else is declined with a reason and decodes on the plain transformers path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import HearthError

MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3", "gemma3_text")
ROPE_TYPES = ("default", "linear", "llama3", "yarn", "longrope")  # static tables; "dynamic" rescales with length
GEMMA = ("gemma", "gemma2", "gemma3", "gemma3_text")
ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_tanh": "gelu_tanh"}
DEFAULT_ROPE = "default"  # the rope key of models with one RoPE table for all layers


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
    qk_norm: bool  # Qwen3, Gemma3: RMSNorm over each query/key head before RoPE
    max_positions: int  # longest sequence the fast path accepts
    # Family switches; the defaults are the llama layout.
    act: str = "silu"  # "silu" or "gelu_tanh" (Gemma): the gate's activation
    norm_offset: float = 0.0  # Gemma's RMSNorm multiplies by (1 + w)
    embed_scale: float = 1.0  # Gemma: sqrt(hidden), rounded to the embedding's dtype as transformers does
    attn_scale: float | None = None  # None: head_dim ** -0.5; Gemma2/3: query_pre_attn_scalar ** -0.5
    attn_softcap: float | None = None  # Gemma2: scores = cap * tanh(scores / cap)
    final_softcap: float | None = None  # Gemma2/3: the same on the logits
    post_norms: bool = False  # Gemma2/3: RMSNorm on the attention's and the MLP's outputs before the residual
    windows: tuple[int | None, ...] = ()  # per layer: attend to the last W positions; None (or empty): all
    rope_keys: tuple[str, ...] = ()  # per layer: which RoPE table (Gemma3: local and global bases); empty: one
    rotary_dim: int | None = None  # features of a head that rotate (Phi3 partial rotary); None: all

    @property
    def group(self) -> int:  # query heads per key/value head
        return self.heads // self.kv_heads

    @property
    def scale(self) -> float:
        return self.attn_scale if self.attn_scale is not None else self.head_dim ** -0.5

    @property
    def rotary(self) -> int:
        return self.rotary_dim or self.head_dim

    def window(self, layer: int) -> int | None:
        return self.windows[layer] if self.windows else None

    def rope_key(self, layer: int) -> str:
        return self.rope_keys[layer] if self.rope_keys else DEFAULT_ROPE


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
        raise UnsupportedModelError(f"the fast path does not implement {kind!r} models")
    act_name = getattr(cfg, "hidden_activation", None) or getattr(cfg, "hidden_act", "silu")
    if act_name not in ACTIVATIONS:
        raise UnsupportedModelError(f"activation {act_name!r} is not silu or gelu-tanh")
    for rope_type in _rope_types(cfg):
        if rope_type not in ROPE_TYPES:
            raise UnsupportedModelError(f"RoPE type {rope_type!r} is not supported")
    if getattr(cfg, "use_bidirectional_attention", False):
        raise UnsupportedModelError("bidirectional attention is not supported")
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "layers") or not hasattr(model, "lm_head"):
        raise UnsupportedModelError("the model does not have the usual model.layers / lm_head layout")
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    layers = cfg.num_hidden_layers
    max_positions = int(cfg.max_position_embeddings)
    if "longrope" in _rope_types(cfg):  # past the original context transformers switches to other tables
        max_positions = min(max_positions, int(getattr(cfg, "original_max_position_embeddings", max_positions)))
    gemma, gemma23 = kind in GEMMA, kind in GEMMA[1:]
    keys = tuple(getattr(cfg, "layer_types", None) or ()) if kind in ("gemma3", "gemma3_text") else ()
    rotary_dim = _rotary_dim(inner, keys, head_dim)
    return ArchSpec(
        model_type=kind, layers=layers, hidden=cfg.hidden_size, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        intermediate=cfg.intermediate_size, vocab=model.lm_head.weight.shape[0], eps=float(cfg.rms_norm_eps),
        qk_norm=kind in ("qwen3", "gemma3", "gemma3_text"), max_positions=max_positions,
        act=ACTIVATIONS[act_name], norm_offset=1.0 if gemma else 0.0,
        embed_scale=_embed_scale(inner.embed_tokens, cfg.hidden_size) if gemma else 1.0,
        attn_scale=float(cfg.query_pre_attn_scalar) ** -0.5 if gemma23 else None,
        attn_softcap=_softcap(getattr(cfg, "attn_logit_softcapping", None)) if kind == "gemma2" else None,
        final_softcap=_softcap(getattr(cfg, "final_logit_softcapping", None)) if gemma23 else None,
        post_norms=gemma23, windows=_windows(cfg, layers), rope_keys=keys,
        rotary_dim=rotary_dim if rotary_dim != head_dim else None)


def rope_tables(model: Any, spec: ArchSpec) -> dict[str, tuple[Any, float]]:
    """RoPE key -> (inv_freq [rotary_dim / 2], attention scaling), read from the model's rotary module."""
    rotary = base_model(model).model.rotary_emb
    if not spec.rope_keys:
        return {DEFAULT_ROPE: (rotary.inv_freq, float(getattr(rotary, "attention_scaling", 1.0)))}
    return {key: (getattr(rotary, f"{key}_inv_freq"), float(getattr(rotary, f"{key}_attention_scaling", 1.0)))
            for key in set(spec.rope_keys)}


def _rotary_dim(inner: Any, keys: tuple[str, ...], head_dim: int) -> int:
    rotary = getattr(inner, "rotary_emb", None)
    inv_freq = getattr(rotary, f"{keys[0]}_inv_freq" if keys else "inv_freq", None)
    if inv_freq is None:
        raise UnsupportedModelError("the model has no rotary embedding table the fast path can read")
    dim = 2 * int(inv_freq.numel())
    if dim > head_dim or dim % 2:
        raise UnsupportedModelError(f"a rotary dimension of {dim} does not fit heads of {head_dim}")
    return dim


def _rope_types(cfg: Any) -> list[str]:
    rope = getattr(cfg, "rope_parameters", None) or {}
    if not isinstance(rope, dict):
        return ["unknown"]
    if any(isinstance(v, dict) for v in rope.values()):  # Gemma3: one set of parameters per layer type
        return [v.get("rope_type", "default") for v in rope.values() if isinstance(v, dict)]
    return [rope.get("rope_type", "default")]


def _windows(cfg: Any, layers: int) -> tuple[int | None, ...]:
    """Per layer, the sliding window (transformers: key j is seen from query i when i - W < j <= i)."""
    window = getattr(cfg, "sliding_window", None)
    if not window:
        return ()
    types = getattr(cfg, "layer_types", None)
    if types:  # Gemma2/3, Qwen2/3: only the "sliding_attention" layers have a window
        windows = tuple(int(window) if t == "sliding_attention" else None for t in types[:layers])
        return windows if any(windows) else ()
    return (int(window),) * layers  # Mistral, Phi3: every layer


def _embed_scale(embed: Any, hidden: int) -> float:
    """sqrt(hidden) as transformers applies it: cast to the embedding weight's dtype first."""
    import torch

    return float(torch.tensor(hidden ** 0.5).to(embed.weight.dtype))


def _softcap(value: Any) -> float | None:
    return float(value) if value else None
