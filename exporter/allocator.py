"""The C allocator's thresholds, set once at start for a process that works in batches.

Why: glibc serves every block of 128 KiB or more with a fresh ``mmap`` and unmaps it at
``free``. A batch's numpy columns and their temporaries are such blocks (a 4 MiB batch holds
~12k rows: 100 KB per float column), so each batch mapped and faulted in its working memory
again, and the kernel's page faults came to ~8% of a catching-up sidecar's CPU. Served from the
heap, the same memory is reused batch after batch. The trim threshold keeps a few batches' worth
of freed heap instead of giving it back and asking for it again at the next batch; beyond it the
heap is still returned, so a burst does not hold memory for the process's lifetime.

Nothing else changes: on a C library without ``mallopt`` (musl, macOS) this does nothing.
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
