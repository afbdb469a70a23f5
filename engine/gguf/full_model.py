"""The full-precision transformers model of a GGUF, built on demand for the features that need one.

Chat never needs it. The lab's attention maps do (the quantized forward keeps
no attention weights), and so does training. transformers' own GGUF loading
dequantizes the file, tensor by tensor, into a bf16 model (float32 where bf16
is not wanted); ``full_model_estimate`` says how much memory that takes before
anything is built, and ``build_full_model`` refuses, with both numbers, what
will not fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from engine.errors import ModelLoadError
from engine.gguf import memory

if TYPE_CHECKING:
    from engine.loader import LoadedModel

ProgressFn = Callable[[float, str], None]


def dequantized() -> Any:
    """transformers' GGUF loading keeps weights in their blocks unless told otherwise; this says: unpack them."""
    from transformers import GgufConfig

    return GgufConfig(dequantize=True)


def full_model_estimate(path: str | Path, dtype: torch.dtype = torch.bfloat16) -> int:
    """Bytes the transformers model of ``path`` needs: its weights at ``dtype``, plus the largest tensor
    in fp32 (dequantizing happens one tensor at a time)."""
    from gguf import GGMLQuantizationType
    from transformers.integrations.gguf import GgufHeader

    header = GgufHeader.from_file(str(path))
    sizes = [_numel(t.shape) for t in header.tensors if GGMLQuantizationType(t.ggml_type).name != "I32"]
    per = torch.tensor([], dtype=dtype).element_size()
    return sum(sizes) * per + max(sizes, default=0) * 4


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def build_full_model(path: str | Path, *, dtype: torch.dtype = torch.bfloat16, device: Any = "cpu",
                     on_progress: ProgressFn | None = None) -> Any:
    """The transformers model of ``path`` at ``dtype`` on ``device``, in eval mode."""
    from transformers import AutoModelForCausalLM

    path = Path(path)
    needed = full_model_estimate(path, dtype)
    memory.check_fits(path, needed)
    if on_progress is not None:
        from engine.errors import format_bytes

        on_progress(0.0, f"Building the full-precision model of {path.name} (about {format_bytes(needed)})…")
    try:
        model = _build_direct(path, dtype)
        if model is None:  # an architecture the direct reader does not map: transformers' own GGUF loading
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype,
                                                         local_files_only=True, quantization_config=dequantized())
    except (torch.OutOfMemoryError, MemoryError) as exc:
        raise ModelLoadError(path, "not enough memory to build its full-precision model.") from exc
    except Exception as exc:  # transformers raises many types here
        raise ModelLoadError(path, f"transformers cannot build a model from this GGUF "
                                   f"({type(exc).__name__}: {exc}).") from exc
    if hasattr(model.config, "quantization_config"):  # it is plain floats now; say so, so it can be saved
        del model.config.quantization_config
    model.hf_quantizer = None
    model.name_or_path = str(path)  # what a LoRA adapter trained on it records as its base
    return model.to(device).eval()


# GGUF tensor names (after "blk.N.") -> transformers' (after "model.layers.N.")
LAYER_NAMES = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
               "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
               "attn_k_norm": "self_attn.k_norm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}
TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
# Where a family's GGUF names differ (engine/gguf/families.py): gemma2/3's four norms, phi3's fused matrices.
FAMILY_NAMES = {
    "gemma2": {"post_attention_norm": "post_attention_layernorm", "ffn_norm": "pre_feedforward_layernorm",
               "post_ffw_norm": "post_feedforward_layernorm"},
    "phi3": {"attn_qkv": "self_attn.qkv_proj", "ffn_up": "mlp.gate_up_proj"},
}
FAMILY_NAMES["gemma3"] = FAMILY_NAMES["gemma2"]
GEMMA = ("gemma", "gemma2", "gemma3")  # norms stored as 1 + w; transformers' modules add the 1 themselves


def _build_direct(path: Path, dtype: torch.dtype) -> Any:
    """The model of a GGUF of an architecture read in place (families.py), read with Hearth's own reader (None
    for other architectures).

    Same weights as transformers' GGUF loading (each tensor dequantized to fp32, then cast to ``dtype``;
    llama.cpp's q/k row order put back for llama), about 5x faster: transformers parses the whole
    metadata (the vocabulary) twice and rebuilds its tensor-name map for every module, 12-16 s for the
    default model on this machine against 2-3 s here. The weights are copied one tensor at a time into
    an uninitialised model, so memory peaks at the model plus one tensor in fp32.
    """
    from transformers import AutoModelForCausalLM
    from transformers.initialization import no_init_weights

    from engine.gguf.metadata import DirectUnsupported, read_meta
    from engine.gguf.reader import open_gguf

    f = open_gguf(path)
    try:
        try:
            meta = read_meta(f)
        except DirectUnsupported:
            return None
        config = meta.hf_config()
        with no_init_weights():  # every weight is read from the file below
            attention = "eager" if meta.attn_softcap else "sdpa"  # SDPA cannot soft-cap (gemma2)
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attention)
        params = dict(model.named_parameters(remove_duplicate=False))
        loaded = set()
        for name, tensor in f.tensors.items():
            if name.startswith("rope_"):  # frequency factors: read into meta.rope_factors, set below
                continue
            target = _hf_name(name, meta.arch)
            if target is None or target not in params:
                raise ModelLoadError(path, f"its tensor {name!r} has no place in a {meta.model_type} model.")
            with torch.no_grad():
                params[target].copy_(_dequantized(tensor, name, meta))
            loaded.add(target)
            f.release(tensor)
        missing = [n for n in params if n not in loaded and not (meta.tied and n == "lm_head.weight")]
        if missing:
            raise ModelLoadError(path, f"the tensor for {missing[0]} is missing.")
        if meta.tied:
            model.tie_weights()
        if meta.rope_factors:
            _set_rope(model, meta)
        return model
    finally:
        f.close()


def _set_rope(model: Any, meta: Any) -> None:
    """The rotary table of a file with per-frequency factors (Llama 3's rope_freqs, Phi-3's LongRoPE short factors),
    which the GGUF metadata does not describe in transformers' terms: the quantized forward's own table."""
    rotary = model.model.rotary_emb
    inv = meta.inv_freq().to(rotary.inv_freq.device)
    rotary.inv_freq = inv
    rotary.original_inv_freq = inv.clone()
    rotary.attention_scaling = meta.rope_attention


def _hf_name(name: str, arch: str = "llama") -> str | None:
    stem, _, kind = name.rpartition(".")  # kind: weight or bias
    if stem.startswith("blk."):
        _, layer, role = stem.split(".", 2)
        mapped = FAMILY_NAMES.get(arch, {}).get(role) or LAYER_NAMES.get(role)
        return f"model.layers.{layer}.{mapped}.{kind}" if mapped else None
    mapped = TOP_NAMES.get(stem)
    return f"{mapped}.{kind}" if mapped else None


def _dequantized(tensor: Any, name: str, meta: Any) -> torch.Tensor:
    """fp32 [rows, cols] (or [n] for a vector), q/k rows in transformers' order."""
    from engine.gguf import quants

    if len(tensor.shape) == 1:
        w = quants.dequantized(tensor.data, tensor.tensor_type, (1, int(tensor.n_elements)))[0]
    else:  # GGUF lists the input dimension first
        w = quants.dequantized(tensor.data, tensor.tensor_type, (int(tensor.shape[1]), int(tensor.shape[0])))
    role = name.split(".")[2] if name.startswith("blk.") else ""
    if meta.arch in GEMMA and name.endswith("norm.weight"):
        w = w - 1  # llama.cpp's converter stored 1 + w
    if meta.interleaved_rope and role in ("attn_q", "attn_k"):
        # llama.cpp's converter interleaves each head's rotary halves; undo it (as transformers does)
        heads = meta.heads if role == "attn_q" else meta.kv_heads
        w = w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)
    return w


def full_model_for(lm: LoadedModel, *, on_progress: ProgressFn | None = None) -> Any:
    """A LoadedModel over the full-precision model of ``lm``'s GGUF (``lm`` itself if it is not a quantized
    GGUF run). Built once and kept with ``lm`` until it is unloaded; same tokenizer, no fast path."""
    if "gguf" not in getattr(lm, "extras", {}):
        return lm
    cached = lm.extras.get("full_model")
    if cached is not None:
        return cached
    from engine.config import LoadConfig
    from engine.loader import wrap_model

    # float32 where it fits (attention weights that sum to 1 to the last digit), else bf16
    dtype = torch.float32 if full_model_estimate(lm.path, torch.float32) < memory.available_bytes() \
        else torch.bfloat16
    model = build_full_model(lm.path, dtype=dtype, device=lm.device, on_progress=on_progress)
    full = wrap_model(model, lm.tokenizer, lm.path, LoadConfig(path=str(lm.path), fast=False), name=lm.name,
                      device=lm.device)
    lm.extras["full_model"] = full
    return full


def is_gguf(path: str | Path) -> bool:
    path = Path(path)
    return path.suffix.lower() == ".gguf" and path.is_file()


def gguf_tokenizer(path: str | Path) -> tuple[Any, int]:
    """(tokenizer, context length) from a GGUF's metadata, without touching its weights."""
    from engine.gguf.metadata import read_meta
    from engine.gguf.reader import open_gguf
    from engine.gguf.tokenizer import build_tokenizer

    f = open_gguf(path)
    try:
        context = int(read_meta(f).context)
        return build_tokenizer(f), context
    finally:
        f.close()


def gguf_config(path: str | Path) -> dict:
    """The transformers config (as a dict, as config.json holds it) of a GGUF's model."""
    from engine.gguf.metadata import read_meta
    from engine.gguf.reader import open_gguf

    f = open_gguf(path)
    try:
        return read_meta(f).hf_config().to_dict()
    finally:
        f.close()
