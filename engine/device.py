"""Pick the device and dtype: CUDA if present, else Apple MPS, else CPU."""

from __future__ import annotations

import torch

from engine.errors import ModelLoadError


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(None, "CUDA was asked for, but no CUDA device is available.")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError(None, "Apple MPS was asked for, but it is not available.")
    return torch.device(preference)


def pick_dtype(device: torch.device, preference: str = "auto") -> torch.dtype:
    if preference != "auto":
        return getattr(torch, preference)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    # On CPU, fp32 is exact and, for small models, as fast as bf16 in eager mode.
    return torch.float32
