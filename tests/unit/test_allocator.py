"""allocator.tune: 1 MiB buffers read on worker threads and freed on another
thread (a download's pattern) stop faulting their pages back in.

Each case runs in a fresh interpreter: the thresholds are process-wide and the
effect depends on the allocator's state since start-up.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from openglacier.treehash import MIB

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

# Four 1 MiB preads per window on a pool of three threads, two windows ahead;
# the main thread frees each window after it "sent" it. Prints page faults per
# MiB read.
DOWNLOAD_PATTERN = """
import os, resource, sys
from concurrent.futures import ThreadPoolExecutor
from openglacier import allocator
if sys.argv[2] == "tuned":
    assert allocator.tune()
MIB = 1 << 20
fd = os.open(sys.argv[1], os.O_RDONLY)
def window(_):
    return [os.pread(fd, MIB, i * MIB) for i in range(4)]
pool = ThreadPoolExecutor(3)
for _ in range(20):  # warm up: threads and arenas exist
    window(0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
pending = [pool.submit(window, i) for i in range(2)]
for i in range(200):
    pieces = pending.pop(0).result()
    pending.append(pool.submit(window, i))
    del pieces
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults / 800)
"""


def _faults_per_mib(tmp_path: Path, mode: str) -> float:
    data = tmp_path / "data.bin"
    if not data.exists():
        data.write_bytes(bytes(range(256)) * (4 * MIB // 256))
    out = subprocess.run(
        [sys.executable, "-c", DOWNLOAD_PATTERN, str(data), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(out.stdout.strip())


def test_tuned_buffers_are_not_faulted_back_in(tmp_path: Path) -> None:
    untuned = _faults_per_mib(tmp_path, "default")
    tuned = _faults_per_mib(tmp_path, "tuned")
    # A faulted-in MiB is 256 pages; glibc's defaults fault in a good part of
    # every buffer, the tuned allocator nearly none.
    assert untuned > 32, untuned
    assert tuned < untuned / 4, (tuned, untuned)
