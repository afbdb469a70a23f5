"""Heatmaps as PNG files with nothing but numpy and zlib (the engine does not use Qt).

The colour map is viridis (dark blue = 0, yellow = 1), the same the lab's window uses.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

# viridis at 0, 0.25, 0.5, 0.75, 1 (matplotlib's values), interpolated linearly between them
_VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)


def viridis(values: np.ndarray) -> np.ndarray:
    """values in [0, 1], any shape -> uint8 RGB with one more axis of 3."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0.0, 1.0) * (len(_VIRIDIS) - 1)
    low = np.minimum(np.floor(v).astype(int), len(_VIRIDIS) - 2)
    frac = (v - low)[..., None]
    return (_VIRIDIS[low] * (1 - frac) + _VIRIDIS[low + 1] * frac).round().astype(np.uint8)


def heatmap_rgb(matrix: np.ndarray, cell: int = 0, max_side: int = 1024) -> np.ndarray:
    """(T, T) weights -> (T·cell, T·cell, 3) image, scaled so the largest weight is yellow."""
    matrix = np.asarray(matrix, dtype=np.float64)
    peak = matrix.max() if matrix.size and matrix.max() > 0 else 1.0
    cell = cell or max(1, min(32, max_side // max(1, max(matrix.shape))))
    rgb = viridis(matrix / peak)
    return np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)


def write_png(path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 array as an 8-bit RGB PNG."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))  # filter type 0 on every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path = Path(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
                     + chunk(b"IEND", b""))
    return path
