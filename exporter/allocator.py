"""The C allocator's thresholds, set once at start for a process that works in batches.

Why: glibc serves a block of 128 KiB or more with a fresh ``mmap`` and unmaps it at ``free``
(its threshold rises only after such a block is freed, and the heap is trimmed again past twice
that). A batch's 2-D numpy arrays (fields × ~6k rows) and their temporaries are such blocks, so
batch after batch mapped its working memory and faulted its pages in again: in a replay of the
2M-line realistic log with 4 MiB batches, 0.40 s of system CPU against 0.16 s with the
thresholds raised, of ~3 s in all. Served from the heap, the memory is reused batch after
batch. The trim threshold keeps a few batches' worth of freed heap; beyond it the heap is still
given back, so a burst does not hold memory for the process's lifetime.

On a C library without ``mallopt`` (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest (a batch's column is far below it)
TRIM_THRESHOLD_BYTES = 32 << 20


def keep_batch_memory() -> bool:
    """Set the thresholds; whether the C library took them."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    mmap = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    trim = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    return bool(mmap and trim)
