"""glibc's allocator, tuned for buffers that cross threads (downloads).

A download reads each 1 MiB chunk into a new bytes object on a worker thread
and frees it on the event loop once it is sent. With glibc's defaults (an
mmap threshold that adapts, a trim threshold of twice that) the free hands
the heap's top pages back to the kernel, and the next read faults them in
again, zeroed: about 100 page faults per MiB, and half of a download's server
CPU in `perf` (page faults, `clear_page`, LRU bookkeeping). Fixed thresholds
keep those pages in the process: buffers up to `MMAP_THRESHOLD` come from the
heap, and up to `TRIM_THRESHOLD` of free memory at the top of a heap is kept
for the next allocation.

Kept memory is what this costs, per arena: glibc gives threads arenas of
their own (up to 8 per core), each keeping what it once held, and a server
that had run downloads held some 25 MiB more than before. All threads share
one arena (`ARENAS`) instead: the buffers that cross threads all come from and
return to it, so what it keeps is at most the most that was ever in use at
once, and never more than `TRIM_THRESHOLD` of free memory. Python allocates
small objects under the GIL (pymalloc), and the few large ones made without
it (a read's buffer, a zstd frame) wait on the arena's lock for microseconds
per MiB.

Only glibc has these knobs; elsewhere `tune` does nothing.
"""

from __future__ import annotations

import ctypes
import platform
from functools import cache
from typing import Any

from openglacier.treehash import MIB

__all__ = ["ARENAS", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune"]

# mallopt parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

# Above the 1 MiB chunks and a few of them joined; below glibc's 32 MiB cap,
# and below the S3 store's 8 MiB multipart part buffers, which then go back to
# the OS when freed: with glibc's adaptive threshold they stayed in the arenas
# and an API process grew by about 100 MiB during one 1 GiB upload to S3 (peak
# 200-220 MiB against 145-150; bench/s3_scenario.py), at the price of page
# faults for every part (6.3 against 4.8 CPU seconds per GiB uploaded).
MMAP_THRESHOLD = 4 * MIB
# Downloads' windows in flight (about 4 MiB each, one read while one is sent):
# with one arena, 16 MiB keeps one or two downloads from faulting, 32 MiB six
# windows in flight (tests/unit/test_allocator.py's patterns).
TRIM_THRESHOLD = 32 * MIB
ARENAS = 1


@cache
def _glibc(name: str) -> Any:
    """A function of the running C library if that is glibc, else None."""
    if platform.libc_ver()[0] != "glibc":
        return None
    return getattr(ctypes.CDLL(None), name, None)


def tune() -> bool:
    """Set the thresholds and the arena count for the whole process; True if
    glibc took them all. Idempotent; call it once at start-up, before worker
    threads run (a thread that already has an arena of its own keeps it)."""
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # Each even if another fails: each helps on its own.
    settings = (
        (M_ARENA_MAX, ARENAS),
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
    )
    taken: list[int] = [mallopt(param, value) for param, value in settings]
    return all(ok == 1 for ok in taken)
