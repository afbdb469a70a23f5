"""Hearth's fast decode path: a lean llama/qwen forward with a static KV cache.

``attach(lm, config)`` is called by the loader. It puts a :class:`FastDecoder`
in ``lm.extras["decoder"]`` (which ``engine.generation.generate_ids`` uses
whenever it says it supports the request) and a ``prepare_fast_path(lm)``
callable that prepares it on a background thread. Models it cannot run are
left on the plain transformers path, with the reason in
``lm.extras["fast_path_off"]``; ``decoder.describe()`` says how a fast path stands.

Modes: ``exact`` (the model's dtype, same function as transformers) and
``int8`` (int8 weights, bf16 matmul inputs; CPU only). ``auto`` picks int8 on
CPU and exact elsewhere; ``HEARTH_FAST_MODE`` overrides it (auto, exact, int8,
off). Measurements: bench/README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.fastpath.decoder import FastDecoder, default_mode
from engine.fastpath.spec import UnsupportedModelError, describe

if TYPE_CHECKING:
    from engine.loader import LoadedModel

__all__ = ["FastDecoder", "attach", "UnsupportedModelError"]


def attach(lm: LoadedModel, config: Any = None, *, mode: str | None = None) -> FastDecoder | None:
    """Give ``lm`` a fast decoder if its architecture is supported; returns it (or None)."""
    mode = mode or default_mode()
    if (config is not None and not getattr(config, "fast", True)) or mode == "off":
        lm.extras["fast_path_off"] = "the fast path is switched off"
        return None
    if getattr(lm.device, "type", "cpu") not in ("cpu", "cuda"):  # e.g. Apple MPS: complex RoPE untested there
        lm.extras["fast_path_off"] = f"not available on {lm.device}"
        return None
    try:
        describe(lm.model)
        decoder = FastDecoder(lm, mode)
    except (UnsupportedModelError, ValueError) as exc:
        lm.extras["fast_path_off"] = str(exc)
        return None
    lm.extras["decoder"] = decoder
    lm.extras["prepare_fast_path"] = decoder.prepare_in_background
    return decoder
