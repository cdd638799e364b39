"""The allocators' settings, made once at start for a process that works in batches: the C
allocator's thresholds and the cycle collector's.

Why: glibc serves a block of 128 KiB or more with a fresh ``mmap`` and unmaps it at ``free``
(its threshold rises only after such a block is freed, and the heap is trimmed again past twice
that). A batch's 2-D numpy arrays (fields × ~6k rows) and their temporaries are such blocks, so
batch after batch mapped its working memory and faulted its pages in again: in a replay of the
2M-line realistic log with 4 MiB batches, 0.40 s of system CPU against 0.16 s with the
thresholds raised, of ~3 s in all. Served from the heap, the memory is reused batch after
batch. The trim threshold keeps a few batches' worth of freed heap; beyond it the heap is still
given back, so a burst does not hold memory for the process's lifetime.

On a C library without ``mallopt`` (musl, macOS) this does nothing.

The cycle collector runs after every 700 new container objects by default, and every 100th run
walks every object the process holds. A batch of lines that each name a new model, version and
class makes tens of thousands of tuples, so full walks over the start-up objects (numpy's, the
config's) came often: 6% of a replay of the 1M-line unique-keys log (2.39-2.44 s of CPU against
2.57-2.60 s with the defaults). Start-up objects are moved out of its walks (``gc.freeze``)
and the thresholds raised; garbage that is not in a cycle is freed at once either way, so this
only delays collecting cycles, by at most a batch's allocations.

Start-up itself (numpy, the sidecar's modules, the config: ~60k objects that live as long as
the process) ran ~45 young collections that walked them for nothing: ~8 ms of a sidecar's
~155 ms of CPU to its first scrape. So the collector is paused from the moment a batch command
is chosen until its modules are loaded (``pause_collections``), and ``collect_less`` freezes
what was made and resumes it. The price: the few cycles that start-up drops (the argument
parser, the pure-Python halves of stdlib modules replaced by their C versions; ~0.15 MiB) are
frozen with the rest instead of collected.
"""

from __future__ import annotations

import ctypes
import gc
import sys

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest (a batch's column is far below it)
TRIM_THRESHOLD_BYTES = 32 << 20
GC_THRESHOLDS = (20_000, 20, 20)  # new containers per young collection; young per older


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


def pause_collections() -> None:
    """No cycle collection until ``collect_less`` (start-up: see above)."""
    gc.disable()


def resume_collections() -> None:
    """Let the cycle collector run again, for a start-up that ended before ``collect_less``
    (a refused config) in a process that goes on (the CLI called in-process)."""
    gc.enable()


def collect_less() -> None:
    """Freeze what start-up made, raise the cycle collector's thresholds and let it run (see
    above)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.enable()
