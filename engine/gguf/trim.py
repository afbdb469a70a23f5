"""Give freed memory back to the operating system while a model is repacked.

Repacking allocates and frees one tensor's temporary copies after another;
glibc keeps freed blocks in its heap, and after a large block is freed it
raises its mmap threshold (up to 32 MB), so the next tensors land in the heap
too, between blocks that stay. Without the two calls here resident memory
after loading the default model was about twice its packed weights.

- ``repack_heap()``: while a model is read and repacked, blocks from 256 KB up
  are mapped and unmapped on their own. Only then, where the model's memory
  has room (the loader says): with a fixed threshold every fresh large block is
  a new mapping and its page faults (a 500-token prompt: 177 000 of them on the
  default model, 370 000 on a 1 B llama, 15-30 % of its time), and the threshold
  would also hold for everything else the process does. Where the memory has no room for the
  holes a heap keeps (the default model's bound), it stays.
- ``fixed_mmap_threshold()``: a threshold for the rest of the process
  (fine-tuning where memory is tight, finetune/mixed.py); repacks return to it.
- ``trim()``: ``malloc_trim`` hands free heap pages back.

glibc has no call that reads the thresholds back, and any ``mallopt`` of them
turns its dynamic policy off for good (malloc.c: ``mp_.no_dyn_threshold``).
So where nothing fixes one, leaving the repack sets the state that policy
reaches once large blocks have been freed, as a torch process's are: mmap
threshold 32 MiB (its ceiling, ``DEFAULT_MMAP_THRESHOLD_MAX``), trim
threshold twice that. bench/README.md ("GGUF direct") has the figures.

Elsewhere than glibc all of these do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator


@lru_cache(maxsize=1)
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


M_TRIM_THRESHOLD = -1  # mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024  # while repacking
HEAP_MMAP_THRESHOLD = 32 << 20  # afterwards, where nothing fixed one: glibc's dynamic ceiling (64-bit)...
HEAP_TRIM_THRESHOLD = 2 * HEAP_MMAP_THRESHOLD  # ...and the trim threshold its policy pairs with it

_lock = threading.Lock()
_fixed: int | None = None  # fixed_mmap_threshold's, for the rest of the process: it outranks a repack's choice
_outside: int | None = None  # mmap threshold outside repacks; None: glibc's heap policy (above)
_repacks = 0  # repack_heap blocks open now (two loads may overlap in threads)


def _mallopt(param: int, value: int) -> bool:
    libc = _libc()
    return bool(libc is not None and libc.mallopt(param, value))


def fixed_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Blocks of ``threshold`` bytes and more get their own mapping from now on, repacks or not; whether glibc
    took it."""
    global _fixed, _outside
    with _lock:
        took = _mallopt(M_MMAP_THRESHOLD, threshold)
        if took:
            _fixed = _outside = threshold
        return took


@dataclass
class Repack:
    took: bool  # whether glibc took the repack's threshold
    keep: bool = False  # set by the loader: the model's memory has no room for the heap's holes (load.py)


@contextmanager
def repack_heap(threshold: int = MMAP_THRESHOLD) -> Iterator[Repack]:
    """Blocks of ``threshold`` bytes and more get their own mapping inside the ``with``. On leaving (the last of
    overlapping ones): a threshold fixed for the process (``fixed_mmap_threshold``) comes back; otherwise, after a
    load that set ``keep``, this one stays; after one that did not, glibc's heap policy (32 MiB mmap, 64 MiB trim
    threshold); after a failed load, whatever was there before it."""
    global _repacks, _outside
    with _lock:
        repack = Repack(took=_mallopt(M_MMAP_THRESHOLD, threshold))
        _repacks += 1
    done = False
    try:
        yield repack
        done = True
    finally:
        with _lock:
            _repacks -= 1
            if done and _fixed is None:
                _outside = threshold if repack.keep else None
            if repack.took and not _repacks:
                _set_outside()


def _set_outside() -> None:
    if _outside is not None:
        _mallopt(M_MMAP_THRESHOLD, _outside)
    else:
        _mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)
        _mallopt(M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD)


def trim() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
