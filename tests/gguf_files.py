"""Tiny GGUF files for tests, written once per session per configuration, and byte-level damage to them."""

from __future__ import annotations

from pathlib import Path

_CACHE: dict = {}


def tiny_gguf(folder: Path, **kwargs) -> Path:
    """A random tiny model (engine.gguf.synthetic) with these SyntheticConfig fields."""
    from engine.gguf.synthetic import SyntheticConfig, write_synthetic_gguf

    config = SyntheticConfig(**kwargs)
    if config not in _CACHE:
        name = "-".join(f"{k}_{v}" for k, v in sorted(kwargs.items())) or "default"
        _CACHE[config] = write_synthetic_gguf(Path(folder) / f"tiny-{name}.gguf", config)
    return _CACHE[config]


def tensor_info_offset(data: bytes, name: str) -> int:
    """Where the GGML type of tensor ``name`` is stored in the header (after its name, dims and shape)."""
    import struct

    key = struct.pack("<Q", len(name)) + name.encode()
    at = data.index(key) + len(key)
    n_dims = struct.unpack_from("<I", data, at)[0]
    return at + 4 + 8 * n_dims
