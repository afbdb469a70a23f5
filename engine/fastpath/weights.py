"""Turn a transformers model into the lean forward's weights, and cache them on disk.

``families.py`` reads each layer of any supported family as fp32 matrices with
the exact algebra applied (q/k/v and gate/up fused, norms folded into the
matrix that follows, q/k rows reordered for a one-multiply RoPE, LoRA merged);
here they become the chosen format (``Dense`` in the model's dtype, or ``Int8``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.fastpath.families import effective_weight, read_head, read_layer, rope_permutation  # noqa: F401
from engine.fastpath.linear import Dense, Int8, aligned, from_tensors
from engine.fastpath.spec import ArchSpec, base_model

FORMAT_VERSION = 1
MODES = ("exact", "int8")
NORMS = ("q_norm", "k_norm", "post_attn_norm", "post_ff_norm", "attn_norm", "ffn_norm")  # per-layer vectors


@dataclass
class LayerWeights:
    qkv: Any  # Dense | Int8, [(H + 2 KV) * Dh, D], input norm folded in
    o: Any  # [D, H * Dh]
    gate_up: Any  # [2 I, D], post-attention norm folded in
    down: Any  # [D, I]
    q_norm: torch.Tensor | None = None  # Qwen3, Gemma3: [Dh], rows permuted like q
    k_norm: torch.Tensor | None = None
    post_attn_norm: torch.Tensor | None = None  # Gemma2/3: [D], on the attention's output
    post_ff_norm: torch.Tensor | None = None  # Gemma2/3: [D], on the MLP's output
    # Pre-norm weights that could not be folded into qkv / gate_up (GGUF int4 keeps the file's groups): [D]
    attn_norm: torch.Tensor | None = None
    ffn_norm: torch.Tensor | None = None


@dataclass
class PackedWeights:
    mode: str
    layers: list[LayerWeights]
    lm_head: Any  # Dense | Int8; in int8 mode the final norm is folded in
    final_norm: torch.Tensor | None  # exact mode: applied before lm_head
    embed: torch.Tensor  # [V, D], the model's own embedding (never copied)

    def __post_init__(self) -> None:
        # The output matrix is the biggest matmul of a decode step (the default model: 49 152 x 576, 29 % of
        # a step on _weight_int8pack_mm); fbgemm's int8 kernel does it ~4x faster where HEARTH_FBGEMM=1 opts
        # in (off by default: its coarser activation rounding costs perplexity, dynamic_int8.py).
        if isinstance(self.lm_head, Int8):
            self.lm_head.use_fbgemm()

    def to_state(self) -> dict[str, torch.Tensor]:
        """Everything but the embedding, flat, for safetensors."""
        state: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            for name in ("qkv", "o", "gate_up", "down"):
                for key, t in getattr(layer, name).tensors().items():
                    state[f"layers.{i}.{name}.{key}"] = t
            for name in NORMS:
                if getattr(layer, name) is not None:
                    state[f"layers.{i}.{name}"] = getattr(layer, name)
        for key, t in self.lm_head.tensors().items():
            state[f"lm_head.{key}"] = t
        if self.final_norm is not None:
            state["final_norm"] = self.final_norm
        return state

    @classmethod
    def from_state(cls, mode: str, state: dict[str, torch.Tensor], spec: ArchSpec, embed: torch.Tensor):
        def part(prefix: str):
            return from_tensors({k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")})

        layers = [LayerWeights(qkv=part(f"layers.{i}.qkv"), o=part(f"layers.{i}.o"),
                               gate_up=part(f"layers.{i}.gate_up"), down=part(f"layers.{i}.down"),
                               **{name: state.get(f"layers.{i}.{name}") for name in NORMS})
                  for i in range(spec.layers)]
        return cls(mode=mode, layers=layers, lm_head=part("lm_head"), final_norm=state.get("final_norm"),
                   embed=embed)


def pack(model: Any, spec: ArchSpec, mode: str, dtype: torch.dtype) -> PackedWeights:
    """Build the lean weights from ``model`` (its device; ``dtype`` for the exact path)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    model = base_model(model)

    def make(w: torch.Tensor, b: torch.Tensor | None):
        if mode == "int8":
            return Int8.quantize(w, b)
        return Dense(w.to(dtype).contiguous(), None if b is None else b.to(dtype).contiguous())

    def vector(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.to(dtype)

    layers = []
    for layer in model.model.layers:
        raw = read_layer(layer, spec, spec.rotary)
        layers.append(LayerWeights(qkv=make(raw.qkv, raw.qkv_bias), o=make(raw.o, raw.o_bias),
                                   gate_up=make(raw.gate_up, None), down=make(raw.down, raw.down_bias),
                                   q_norm=vector(raw.q_norm), k_norm=vector(raw.k_norm),
                                   post_attn_norm=vector(raw.post_attn_norm), post_ff_norm=vector(raw.post_ff_norm)))
    w_head, b_head, norm = read_head(model, spec)
    embed = model.model.embed_tokens.weight.detach()
    if mode == "int8":
        lm_head, final_norm = Int8.quantize(w_head.float() * norm[None, :], b_head), None
    else:  # the model's own lm_head weight, not a copy
        lm_head, final_norm = Dense(w_head.to(dtype), b_head), norm.to(dtype)
    return PackedWeights(mode=mode, layers=layers, lm_head=lm_head, final_norm=final_norm, embed=embed)


def cache_key(folder: Path, mode: str, dtype: torch.dtype) -> str | None:
    """A name for the packed weights of the model saved in ``folder``; None if it is not a model folder."""
    folder = Path(folder)
    files = sorted(p for p in folder.glob("*") if p.suffix in (".safetensors", ".bin", ".json") and p.is_file())
    if not any(p.suffix in (".safetensors", ".bin") for p in files):
        return None
    owner = hashlib.sha256(f"{FORMAT_VERSION}|{mode}|{dtype}|{folder.resolve()}".encode()).hexdigest()[:16]
    h = hashlib.sha256(owner.encode())
    for p in files:
        st = p.stat()
        h.update(f"|{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return f"{owner}-{h.hexdigest()[:16]}"  # owner: one folder and mode; the rest: its files as they are


def load_cached(path: Path, mode: str, spec: ArchSpec, embed: torch.Tensor) -> PackedWeights | None:
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device=str(embed.device))
    except Exception:  # missing, truncated or from another version: rebuild
        return None
    for key, t in state.items():  # one at a time, each unaligned original freed as we go (linear.aligned: why)
        if t.dtype == torch.int8:
            state[key] = aligned(t)
    try:
        return PackedWeights.from_state(mode, state, spec, embed)
    except (KeyError, TypeError):
        return None


def save_cached(path: Path, packed: PackedWeights) -> None:
    """Write atomically: a half-written cache file is never read."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file({k: v.contiguous().cpu() for k, v in packed.to_state().items()}, str(tmp),
                  metadata={"format": str(FORMAT_VERSION), "mode": packed.mode})
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk only costs the cache
        return
    owner = path.name.split("-")[0]
    for old in path.parent.glob(f"{owner}-*.safetensors"):  # the same folder before it was overwritten
        if old != path:
            old.unlink(missing_ok=True)
