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
