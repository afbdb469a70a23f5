"""Give freed memory back to the operating system while a model is repacked.

Repacking allocates and frees one tensor's temporary copies after another;
glibc keeps freed blocks in its heap, and after a large block is freed it
raises its mmap threshold (up to 32 MB), so the next tensors land in the heap
too, between blocks that stay. Without the two calls here resident memory
after loading the default model was about twice its packed weights.

- ``fixed_mmap_threshold()``: blocks from 256 KB up are mapped and unmapped on
  their own (a fixed threshold also stops glibc raising it). Costs a page fault
  per page of a new large block: ~3 % of a long prompt's time, nothing per
  decoded token (those allocations are small).
- ``trim()``: ``malloc_trim`` hands free heap pages back.

Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


M_MMAP_THRESHOLD = -3  # mallopt parameter number (malloc.h)
MMAP_THRESHOLD = 256 * 1024


def fixed_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Blocks of ``threshold`` bytes and more get their own mapping from now on; whether glibc took it."""
    libc = _libc()
    return bool(libc is not None and hasattr(libc, "mallopt") and libc.mallopt(M_MMAP_THRESHOLD, threshold))


def trim() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
