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
that up to `TRIM_THRESHOLD` of free memory per arena (one per thread that
allocates, up to 8 per core) stays in the process instead of going back to the
kernel at once: after a few downloads a server holds some 20-30 MiB more.
(`malloc_trim` would not give it back: it does not trim the top of a thread's
arena.)

Only glibc has these knobs; elsewhere `tune` does nothing.
"""

from __future__ import annotations

import ctypes
import platform
from functools import cache
from typing import Any

from openglacier.treehash import MIB

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune"]

# mallopt parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

# Above the 1 MiB chunks and a few of them joined; below glibc's 32 MiB cap.
MMAP_THRESHOLD = 4 * MIB
# A download's windows in flight (about 4 MiB each, one read while one is
# sent): 16 MiB already keeps a download's pattern from faulting (8 MiB does
# not, in tests/unit/test_allocator.py's pattern).
TRIM_THRESHOLD = 16 * MIB


@cache
def _glibc(name: str) -> Any:
    """A function of the running C library if that is glibc, else None."""
    if platform.libc_ver()[0] != "glibc":
        return None
    return getattr(ctypes.CDLL(None), name, None)


def tune() -> bool:
    """Set both thresholds for the whole process; True if glibc took them.
    Idempotent; call it once at start-up, before the worker threads run."""
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # Both, even if the first fails: each helps on its own.
    mmap_ok: int = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim_ok: int = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return mmap_ok == 1 and trim_ok == 1
