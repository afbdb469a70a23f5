"""A GGUF file's architecture, from its metadata, as the fast path's ArchSpec and a transformers config.

llama.cpp writes the shapes under ``<arch>.*`` keys. The architectures read
directly are the ones whose GGUF tensors map one to one onto the lean forward:
llama (which also carries Mistral and SmolLM files), qwen2 and qwen3. Anything
else raises ``DirectUnsupported`` and the loader takes the conversion route.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.errors import BadModelFileError, HearthError
from engine.gguf.reader import GGUFFile

# GGUF architecture -> transformers model_type, and whether llama.cpp's converter already permuted q/k
# rows into interleaved RoPE pairs (llama) or kept transformers' "halves" layout (NEOX-style: qwen).
ARCHITECTURES = {"llama": ("llama", True), "qwen2": ("qwen2", False), "qwen3": ("qwen3", False)}
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

    def spec(self) -> Any:
        from engine.fastpath.spec import ArchSpec

        windows = (self.sliding_window,) * self.layers if self.sliding_window else ()
        return ArchSpec(model_type=self.model_type, layers=self.layers, hidden=self.hidden, heads=self.heads,
                        kv_heads=self.kv_heads, head_dim=self.head_dim, intermediate=self.intermediate,
                        vocab=self.vocab, eps=self.eps, qk_norm=self.qk_norm, max_positions=self.context,
                        windows=windows)

    def inv_freq(self, rope_freqs: Any = None) -> Any:
        """[Dh / 2] fp32: theta^(-2i / Dh), divided by the file's per-frequency factors (Llama 3 rope_freqs)
        and by a linear scaling factor."""
        import torch

        inv = 1.0 / (self.rope_theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))
        if rope_freqs is not None:
            inv = inv / rope_freqs.float()
        return inv / self.rope_linear

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
    model_type, interleaved = ARCHITECTURES[arch]
    for key in REQUIRED:
        f.value(f"{arch}.{key}")  # raises with the key's name when absent
    heads = int(f.value(f"{arch}.attention.head_count"))
    hidden = int(f.value(f"{arch}.embedding_length"))
    head_dim = int(f.value(f"{arch}.attention.key_length", hidden // heads))
    rotary = int(f.value(f"{arch}.rope.dimension_count", head_dim))
    if rotary != head_dim:
        raise DirectUnsupported(f"partial rotary embeddings ({rotary} of {head_dim})")
    scaling = str(f.value(f"{arch}.rope.scaling.type", "none"))
    if scaling not in ("none", "linear"):
        raise DirectUnsupported(f"RoPE scaling {scaling!r}")
    embed = f.tensor("token_embd.weight")
    vocab = int(f.value(f"{arch}.vocab_size", int(embed.shape[-1])))
    name = f.value("general.name", "") or f.path.stem
    return ModelMeta(
        arch=arch, model_type=model_type, name=str(name), layers=int(f.value(f"{arch}.block_count")),
        hidden=hidden, heads=heads, kv_heads=int(f.value(f"{arch}.attention.head_count_kv", heads)),
        head_dim=head_dim, intermediate=_intermediate(f, arch), vocab=vocab,
        eps=float(f.value(f"{arch}.attention.layer_norm_rms_epsilon")),
        context=int(f.value(f"{arch}.context_length", 2048)),
        rope_theta=float(f.value(f"{arch}.rope.freq_base", 10000.0)),
        rope_linear=float(f.value(f"{arch}.rope.scaling.factor", 1.0)) if scaling == "linear" else 1.0,
        interleaved_rope=interleaved, tied=f.tensor("output.weight", required=False) is None,
        qk_norm=f.tensor("blk.0.attn_q_norm.weight", required=False) is not None,
        sliding_window=_window(f, arch), bos_id=_token(f, "bos"), eos_id=_token(f, "eos"), pad_id=_token(f, "padding"))


def _intermediate(f: GGUFFile, arch: str) -> int:
    value = f.value(f"{arch}.feed_forward_length")
    if isinstance(value, list):  # some files give one size per layer
        if len(set(value)) != 1:
            raise DirectUnsupported("layers of different MLP sizes")
        value = value[0]
    return int(value)


def _window(f: GGUFFile, arch: str) -> int | None:
    value = f.value(f"{arch}.attention.sliding_window", 0)
    return int(value) if value else None


def _token(f: GGUFFile, kind: str) -> int | None:
    value = f.value(f"tokenizer.ggml.{kind}_token_id", None)
    return None if value is None else int(value)


def check_shapes(f: GGUFFile, meta: ModelMeta) -> None:
    """Every tensor the forward reads is there, with the shape the metadata promises."""
    D, Dh, I = meta.hidden, meta.head_dim, meta.intermediate
    expect = {"token_embd.weight": (meta.vocab, D), "output_norm.weight": (D,)}
    if not meta.tied:
        expect["output.weight"] = (meta.vocab, D)
    for i in range(meta.layers):
        b = f"blk.{i}."
        expect.update({b + "attn_norm.weight": (D,), b + "ffn_norm.weight": (D,),
                       b + "attn_q.weight": (meta.heads * Dh, D), b + "attn_k.weight": (meta.kv_heads * Dh, D),
                       b + "attn_v.weight": (meta.kv_heads * Dh, D), b + "attn_output.weight": (D, meta.heads * Dh),
                       b + "ffn_gate.weight": (I, D), b + "ffn_up.weight": (I, D), b + "ffn_down.weight": (D, I)})
    for name, shape in expect.items():
        t = f.tensor(name)
        got = tuple(int(n) for n in reversed(list(t.shape)))  # GGUF lists the fastest dimension first
        if got != shape:
            raise BadModelFileError(f.path, f"the tensor {name!r} has shape {list(got)}, but the metadata "
                                            f"says {list(shape)}.")
