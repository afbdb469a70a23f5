"""Turn a transformers model into the lean forward's weights, and cache them on disk.

What changes on the way (all exact algebra, so the exact path computes the
same function):
- q, k, v are fused into one matrix and gate/up into another: one matmul each.
- each RMSNorm's weight is folded into the columns of the matrix that follows,
  so the forward normalises without a weight.
- the rows of q and k are reordered inside each head from HF's "halves" RoPE
  layout to interleaved pairs, so RoPE becomes one complex multiply. q·k is
  unchanged because both sides get the same permutation.
- peft LoRA adapters, when present, are merged into the weights here.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.fastpath.linear import Dense, Int8, from_tensors
from engine.fastpath.spec import ArchSpec, UnsupportedModelError, base_model

FORMAT_VERSION = 1
MODES = ("exact", "int8")


@dataclass
class LayerWeights:
    qkv: Any  # Dense | Int8, [(H + 2 KV) * Dh, D], input norm folded in
    o: Any  # [D, H * Dh]
    gate_up: Any  # [2 I, D], post-attention norm folded in
    down: Any  # [D, I]
    q_norm: torch.Tensor | None = None  # Qwen3: [Dh], rows permuted like q
    k_norm: torch.Tensor | None = None


@dataclass
class PackedWeights:
    mode: str
    layers: list[LayerWeights]
    lm_head: Any  # Dense | Int8; in int8 mode the final norm is folded in
    final_norm: torch.Tensor | None  # exact mode: applied before lm_head
    embed: torch.Tensor  # [V, D], the model's own embedding (never copied)

    def to_state(self) -> dict[str, torch.Tensor]:
        """Everything but the embedding, flat, for safetensors."""
        state: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            for name in ("qkv", "o", "gate_up", "down"):
                for key, t in getattr(layer, name).tensors().items():
                    state[f"layers.{i}.{name}.{key}"] = t
            for name in ("q_norm", "k_norm"):
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
                               q_norm=state.get(f"layers.{i}.q_norm"), k_norm=state.get(f"layers.{i}.k_norm"))
                  for i in range(spec.layers)]
        return cls(mode=mode, layers=layers, lm_head=part("lm_head"), final_norm=state.get("final_norm"),
                   embed=embed)


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


def rope_permutation(heads: int, head_dim: int) -> torch.Tensor:
    """Row order that turns each head's [x0..x_{h-1}, y0..y_{h-1}] into [x0, y0, x1, y1, ...]."""
    half = head_dim // 2
    inner = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).reshape(-1)
    return (torch.arange(heads)[:, None] * head_dim + inner[None, :]).reshape(-1)


def pack(model: Any, spec: ArchSpec, mode: str, dtype: torch.dtype) -> PackedWeights:
    """Build the lean weights from ``model`` (its device; ``dtype`` for the exact path)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    model = base_model(model)
    q_perm = rope_permutation(spec.heads, spec.head_dim)
    k_perm = rope_permutation(spec.kv_heads, spec.head_dim)
    head_perm = rope_permutation(1, spec.head_dim)

    def make(w: torch.Tensor, b: torch.Tensor | None):
        if mode == "int8":
            return Int8.quantize(w, b)
        return Dense(w.to(dtype).contiguous(), None if b is None else b.to(dtype).contiguous())

    layers = []
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        (wq, bq), (wk, bk), (wv, bv) = (effective_weight(m) for m in (attn.q_proj, attn.k_proj, attn.v_proj))
        ln_in = layer.input_layernorm.weight.detach().float()
        qkv = torch.cat([wq.float()[q_perm], wk.float()[k_perm], wv.float()]) * ln_in[None, :]
        bias = None
        if any(b is not None for b in (bq, bk, bv)):
            zeros = [torch.zeros(w.shape[0], device=w.device) for w in (wq, wk, wv)]
            bq, bk, bv = (z if b is None else b.float() for b, z in zip((bq, bk, bv), zeros))
            bias = torch.cat([bq[q_perm], bk[k_perm], bv])
        (wg, bg), (wu, bu), (wd, bd) = (effective_weight(m) for m in (mlp.gate_proj, mlp.up_proj, mlp.down_proj))
        if bg is not None or bu is not None:
            raise UnsupportedModelError("MLP biases are not supported")  # none of the families has them
        ln_post = layer.post_attention_layernorm.weight.detach().float()
        gate_up = torch.cat([wg.float(), wu.float()]) * ln_post[None, :]
        wo, bo = effective_weight(attn.o_proj)
        norms = {}
        if spec.qk_norm:
            norms = {"q_norm": attn.q_norm.weight.detach().to(dtype)[head_perm],
                     "k_norm": attn.k_norm.weight.detach().to(dtype)[head_perm]}
        layers.append(LayerWeights(qkv=make(qkv, bias), o=make(wo.float(), bo), gate_up=make(gate_up, None),
                                   down=make(wd.float(), bd), **norms))
    w_head, b_head = effective_weight(model.lm_head)
    norm = model.model.norm.weight.detach()
    embed = model.model.embed_tokens.weight.detach()
    if mode == "int8":
        lm_head, final_norm = Int8.quantize(w_head.float() * norm.float()[None, :], b_head), None
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
