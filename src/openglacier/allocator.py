"""glibc's allocator, tuned for buffers that cross threads (downloads).

A download reads each 1 MiB chunk into a new bytes object on a worker thread
and frees it on the event loop once it is sent. With glibc's defaults (an
mmap threshold that adapts, a trim threshold of twice that) the free hands
the thread arena's top pages back to the kernel, and the next read faults
them in again, zeroed: about 100 page faults per MiB, and half of a
download's server CPU in `perf` (page faults, `clear_page`, LRU bookkeeping).
Fixed thresholds keep those pages in the process: buffers up to
`MMAP_THRESHOLD` come from the heap, and up to `TRIM_THRESHOLD` of free
memory at the top of a heap is kept for the next allocation. The cost is
that memory a burst freed stays in the process (up to `TRIM_THRESHOLD` per
arena) instead of going back to the kernel at once.

Only glibc has these knobs; elsewhere `tune` does nothing.
"""

from __future__ import annotations

import ctypes
import platform

from openglacier.treehash import MIB

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune"]

# mallopt parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

# Above the 1 MiB chunks and a few of them joined; below glibc's 32 MiB cap.
MMAP_THRESHOLD = 4 * MIB
# A few downloads' windows in flight (4 MiB each, a few ahead).
TRIM_THRESHOLD = 32 * MIB


def tune() -> bool:
    """Set both thresholds for the whole process; True if glibc took them.
    Idempotent; call it once at start-up, before the worker threads run."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the running C library
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # Both, even if the first fails: each helps on its own.
    mmap_ok: int = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim_ok: int = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return mmap_ok == 1 and trim_ok == 1
