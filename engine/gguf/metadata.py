"""A GGUF file's architecture, from its metadata, as the fast path's ArchSpec and a transformers config.

llama.cpp writes the shapes under ``<arch>.*`` keys. The architectures read
directly are those of ``families.FAMILIES``: llama (which also carries Mistral
and SmolLM files), qwen2, qwen3, gemma, gemma2, gemma3 and phi3 (families.py
says how each differs in the file). Anything else raises ``DirectUnsupported``
and the loader takes the conversion route.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.errors import BadModelFileError, HearthError
from engine.gguf.families import FAMILIES, GLOBAL, SLIDING, switches
from engine.gguf.reader import GGUFFile

ARCHITECTURES = tuple(FAMILIES)
REQUIRED = ("block_count", "embedding_length", "feed_forward_length", "attention.head_count",
            "attention.layer_norm_rms_epsilon")


class DirectUnsupported(HearthError):
    """This GGUF is valid, but not an architecture the direct path reads; convert it instead."""


@dataclass(frozen=True)
class ModelMeta:
    arch: str  # GGUF general.architecture
    model_type: str  # transformers'
    name: str  # general.name, or the file's stem
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    eps: float
    context: int
    rope_theta: float
    rope_linear: float  # linear RoPE scaling factor (1.0: none)
    interleaved_rope: bool  # q/k rows already in interleaved-pair order
    tied: bool  # no output.weight: the embedding is the output matrix too
    qk_norm: bool
    sliding_window: int | None
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    # Family switches (families.py), llama's by default. Norms are used as stored (gemma files hold 1 + w).
    fused: bool = False  # phi3: attn_qkv and a gate | up ffn_up
    rotary_dim: int = 0  # features of a head that rotate; 0: all
    windows: tuple[int | None, ...] = ()  # per layer
    act: str = "silu"
    embed_scale: float = 1.0
    attn_scale: float | None = None
    attn_softcap: float | None = None
    final_softcap: float | None = None
    post_norms: bool = False
    rope_keys: tuple[str, ...] = ()  # gemma3: per layer, SLIDING or GLOBAL
    rope_local_theta: float | None = None  # gemma3: the sliding-window layers' RoPE base
    # Per-frequency divisors [rotary / 2]: Llama 3's rope_freqs, or Phi-3's LongRoPE short factors (the context is
    # then capped at the original one, as transformers' fast path does), and RoPE's attention scaling.
    rope_factors: tuple[float, ...] = ()
    rope_attention: float = 1.0

    @property
    def rotary(self) -> int:
        return self.rotary_dim or self.head_dim

    def spec(self) -> Any:
        from engine.fastpath.spec import ArchSpec

        return ArchSpec(model_type=self.model_type, layers=self.layers, hidden=self.hidden, heads=self.heads,
                        kv_heads=self.kv_heads, head_dim=self.head_dim, intermediate=self.intermediate,
                        vocab=self.vocab, eps=self.eps, qk_norm=self.qk_norm, max_positions=self.context,
                        windows=self.windows if any(self.windows) else (), act=self.act,
                        embed_scale=self.embed_scale, attn_scale=self.attn_scale, attn_softcap=self.attn_softcap,
                        final_softcap=self.final_softcap, post_norms=self.post_norms, rope_keys=self.rope_keys,
                        rotary_dim=self.rotary if self.rotary != self.head_dim else None)

    def inv_freq(self, factors: bool = True, theta: float | None = None, linear: float | None = None) -> Any:
        """[rotary / 2] fp32: theta^(-2i / rotary), divided by the file's per-frequency factors (``factors``)
        and by a linear scaling factor."""
        import torch

        theta = self.rope_theta if theta is None else theta
        inv = 1.0 / (theta ** (torch.arange(0, self.rotary, 2, dtype=torch.float32) / self.rotary))
        if factors and self.rope_factors:
            inv = inv / torch.tensor(self.rope_factors, dtype=torch.float32)
        return inv / (self.rope_linear if linear is None else linear)

    def ropes(self) -> dict[str, tuple[Any, float]]:
        """RoPE key -> (inv_freq, attention scaling), as LeanForward takes them. gemma3: the global layers
        use the file's base and scaling, the sliding ones their own base, unscaled (as transformers)."""
        from engine.fastpath.spec import DEFAULT_ROPE

        if not self.rope_keys:
            return {DEFAULT_ROPE: (self.inv_freq(), self.rope_attention)}
        return {GLOBAL: (self.inv_freq(), self.rope_attention),
                SLIDING: (self.inv_freq(False, theta=self.rope_local_theta, linear=1.0), 1.0)}

    def hf_kwargs(self) -> dict:
        """The fields of this model's transformers config."""
        kwargs = dict(vocab_size=self.vocab, hidden_size=self.hidden, intermediate_size=self.intermediate,
                      num_hidden_layers=self.layers, num_attention_heads=self.heads,
                      num_key_value_heads=self.kv_heads, head_dim=self.head_dim, rms_norm_eps=self.eps,
                      max_position_embeddings=self.context, tie_word_embeddings=self.tied,
                      rope_theta=self.rope_theta, bos_token_id=self.bos_id, eos_token_id=self.eos_id,
                      pad_token_id=self.pad_id, hidden_act="silu")
        if self.rope_linear != 1.0:
            kwargs["rope_scaling"] = {"rope_type": "linear", "factor": self.rope_linear}
        if self.sliding_window:
            kwargs["sliding_window"] = self.sliding_window
        if self.act == "gelu_tanh":
            kwargs.update(hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh")
        if self.model_type in ("gemma2", "gemma3_text"):
            kwargs.update(query_pre_attn_scalar=round(self.attn_scale ** -2),
                          attn_logit_softcapping=self.attn_softcap, final_logit_softcapping=self.final_softcap,
                          layer_types=[SLIDING if w else GLOBAL for w in self.windows] if self.windows else None)
        if self.rope_local_theta is not None:
            kwargs["rope_local_base_freq"] = self.rope_local_theta
        if self.rotary != self.head_dim:
            kwargs["partial_rotary_factor"] = self.rotary / self.head_dim
        return kwargs

    def hf_config(self) -> Any:
        """The transformers config of the same model, for building the full-precision model on demand."""
        from transformers import AutoConfig

        config = AutoConfig.for_model(self.model_type, **self.hf_kwargs())
        config.name_or_path = self.name
        return config

    def shape_config(self) -> Any:
        """What ``lm.model.config`` answers for a model run quantized: the same fields as ``hf_config()``
        in transformers' base config class. The architecture's own class (LlamaConfig, ...) imports
        transformers' modeling stack (accelerate, torch.distributed, sympy: 700 modules, 50-56 MB resident,
        more than half the default model's file), which a model run from its GGUF never uses."""
        return _shape_config_class()(self.model_type, name_or_path=self.name, **self.hf_kwargs())


@lru_cache(maxsize=1)
def _shape_config_class() -> type:
    """transformers' base config with the model type held per instance (defined on first use: transformers
    is imported lazily)."""
    from transformers import PretrainedConfig

    class _ShapeConfig(PretrainedConfig):
        def __init__(self, model_type: str = "", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.model_type = model_type  # per instance: the base class has none

        def to_dict(self) -> dict:
            return super().to_dict() | {"model_type": self.model_type}

    return _ShapeConfig


def read_meta(f: GGUFFile) -> ModelMeta:
    """The architecture of ``f``; DirectUnsupported for others, BadModelFileError for missing keys."""
    arch = str(f.value("general.architecture"))
    if arch not in ARCHITECTURES:
        raise DirectUnsupported(f"GGUF architecture {arch!r} is not read directly "
                                f"(direct: {', '.join(ARCHITECTURES)})")
    fam = FAMILIES[arch]
    for key in REQUIRED:
        f.value(f"{arch}.{key}")  # raises with the key's name when absent
    heads = int(f.value(f"{arch}.attention.head_count"))
    hidden = int(f.value(f"{arch}.embedding_length"))
    head_dim = int(f.value(f"{arch}.attention.key_length", hidden // heads))
    rotary = int(f.value(f"{arch}.rope.dimension_count", head_dim))
    if rotary > head_dim or rotary % 2 or rotary < 2:
        raise BadModelFileError(f.path, f"its rotary dimension ({rotary}) does not fit heads of {head_dim}.")
    if rotary != head_dim and arch != "phi3":
        raise DirectUnsupported(f"partial rotary embeddings ({rotary} of {head_dim})")
    factors, attention, context = _rope_factors(f, arch, rotary)
    scaling = str(f.value(f"{arch}.rope.scaling.type", "none"))
    if scaling not in ("none", "linear"):
        raise DirectUnsupported(f"RoPE scaling {scaling!r}")
    embed = f.tensor("token_embd.weight")
    vocab = int(f.value(f"{arch}.vocab_size", int(embed.shape[-1])))
    name = f.value("general.name", "") or f.path.stem
    layers = int(f.value(f"{arch}.block_count"))
    return ModelMeta(
        arch=arch, model_type=fam.model_type, name=str(name), layers=layers,
        hidden=hidden, heads=heads, kv_heads=int(f.value(f"{arch}.attention.head_count_kv", heads)),
        head_dim=head_dim, intermediate=_intermediate(f, arch), vocab=vocab,
        eps=float(f.value(f"{arch}.attention.layer_norm_rms_epsilon")),
        context=context, rope_factors=factors, rope_attention=attention,
        rope_theta=float(f.value(f"{arch}.rope.freq_base", 10000.0)),
        rope_linear=float(f.value(f"{arch}.rope.scaling.factor", 1.0)) if scaling == "linear" else 1.0,
        interleaved_rope=fam.interleaved_rope, tied=f.tensor("output.weight", required=False) is None,
        qk_norm=f.tensor("blk.0.attn_q_norm.weight", required=False) is not None,
        bos_id=_token(f, "bos"), eos_id=_token(f, "eos"), pad_id=_token(f, "padding"), fused=fam.fused,
        rotary_dim=rotary if rotary != head_dim else 0,
        **switches(f, arch, layers=layers, hidden=hidden, heads=heads, head_dim=head_dim))


def _intermediate(f: GGUFFile, arch: str) -> int:
    value = f.value(f"{arch}.feed_forward_length")
    if isinstance(value, list):  # some files give one size per layer
        if len(set(value)) != 1:
            raise DirectUnsupported("layers of different MLP sizes")
        value = value[0]
    return int(value)


def _rope_factors(f: GGUFFile, arch: str, rotary: int) -> tuple[tuple[float, ...], float, int]:
    """(per-frequency divisors, attention scaling, context). Llama 3 files carry ``rope_freqs``; Phi-3 long-context
    files LongRoPE's ``rope_factors_short/long``: the short ones up to the original context, which becomes the
    context (past it transformers switches to the long factors; the fast path stops there, as for a folder)."""
    context = int(f.value(f"{arch}.context_length", 2048))
    name = "rope_factors_short.weight" if f.tensor("rope_factors_short.weight", required=False) else "rope_freqs.weight"
    t = f.tensor(name, required=False)
    if t is None:
        return (), 1.0, context
    if int(t.n_elements) != rotary // 2:
        raise BadModelFileError(f.path, f"its tensor {name!r} has {int(t.n_elements)} values for "
                                        f"{rotary // 2} rotary frequencies.")
    from engine.gguf import quants

    factors = tuple(float(v) for v in quants.dequantized(t.data, t.tensor_type, (1, rotary // 2))[0])
    if name == "rope_freqs.weight":
        return factors, 1.0, context
    if arch != "phi3":
        raise DirectUnsupported(f"LongRoPE factors in a {arch} file")
    original = int(f.value(f"{arch}.rope.scaling.original_context_length", context))
    scale = context / original
    default = math.sqrt(1 + math.log(scale) / math.log(original)) if scale > 1 else 1.0  # llama.cpp's converter
    return factors, float(f.value(f"{arch}.rope.scaling.attn_factor", default)), min(context, original)


def _token(f: GGUFFile, kind: str) -> int | None:
    value = f.value(f"tokenizer.ggml.{kind}_token_id", None)
    return None if value is None else int(value)


def check_shapes(f: GGUFFile, meta: ModelMeta) -> None:
    """Every tensor the forward reads is there, with the shape the metadata promises."""
    D, Dh, I = meta.hidden, meta.head_dim, meta.intermediate
    expect = {"token_embd.weight": (meta.vocab, D), "output_norm.weight": (D,)}
    if not meta.tied:
        expect["output.weight"] = (meta.vocab, D)
    H, KV = meta.heads * Dh, meta.kv_heads * Dh
    for i in range(meta.layers):
        b = f"blk.{i}."
        expect.update({b + "attn_norm.weight": (D,), b + "ffn_norm.weight": (D,), b + "attn_output.weight": (D, H),
                       b + "ffn_down.weight": (D, I)})
        if meta.fused:  # phi3
            expect.update({b + "attn_qkv.weight": (H + 2 * KV, D), b + "ffn_up.weight": (2 * I, D)})
        else:
            expect.update({b + "attn_q.weight": (H, D), b + "attn_k.weight": (KV, D), b + "attn_v.weight": (KV, D),
                           b + "ffn_gate.weight": (I, D), b + "ffn_up.weight": (I, D)})
        if meta.post_norms:
            expect.update({b + "post_attention_norm.weight": (D,), b + "post_ffw_norm.weight": (D,)})
        if meta.qk_norm:
            expect.update({b + "attn_q_norm.weight": (Dh,), b + "attn_k_norm.weight": (Dh,)})
    for name, shape in expect.items():
        t = f.tensor(name)
        got = tuple(int(n) for n in reversed(list(t.shape)))  # GGUF lists the fastest dimension first
        if got != shape:
            raise BadModelFileError(f.path, f"the tensor {name!r} has shape {list(got)}, but the metadata "
                                            f"says {list(shape)}.")
