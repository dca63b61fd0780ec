"""allocator.tune: 1 MiB buffers read on worker threads and freed on another
thread (a download's pattern) stop faulting their pages back in, and what the
process keeps afterwards stays bounded.

Each case runs in a fresh interpreter: the settings are process-wide and their
effect depends on the allocator's state since start-up.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from openglacier.treehash import MIB

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

# Downloads' reads: four 1 MiB preads per window on a pool of worker threads,
# `ahead` windows in flight; the main thread frees each window after it "sent"
# it. Prints page faults per MiB read and the RSS kept once all is freed.
DOWNLOAD_PATTERN = """
import json, os, resource, sys
from concurrent.futures import ThreadPoolExecutor
from openglacier import allocator
if sys.argv[2] == "tuned":
    assert allocator.tune()
MIB = 1 << 20
ahead = int(sys.argv[3])
fd = os.open(sys.argv[1], os.O_RDONLY)
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) * 1024
def window(_):
    return [os.pread(fd, MIB, i * MIB) for i in range(4)]
start = rss()
pool = ThreadPoolExecutor(ahead + 1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
pending = [pool.submit(window, i) for i in range(ahead)]
for i in range(200):
    pieces = pending.pop(0).result()
    pending.append(pool.submit(window, i))
    del pieces
for future in pending:
    future.result()
del pending, future
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults_per_mib": faults / 800, "kept": rss() - start}))
"""


def _run(tmp_path: Path, mode: str, ahead: int) -> dict[str, float]:
    data = tmp_path / "data.bin"
    if not data.exists():
        data.write_bytes(bytes(range(256)) * (4 * MIB // 256))
    out = subprocess.run(
        [sys.executable, "-c", DOWNLOAD_PATTERN, str(data), mode, str(ahead)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return dict(json.loads(out.stdout))


@pytest.mark.parametrize("ahead", [2, 6])
def test_tuned_buffers_are_not_faulted_back_in(tmp_path: Path, ahead: int) -> None:
    """One download (two windows in flight), and several at once (six)."""
    untuned = _run(tmp_path, "default", ahead)["faults_per_mib"]
    tuned = _run(tmp_path, "tuned", ahead)["faults_per_mib"]
    # A faulted-in MiB is 256 pages; glibc's defaults fault in a good part of
    # every buffer, the tuned allocator nearly none.
    assert untuned > 32, untuned
    assert tuned < untuned / 4, (tuned, untuned)


def test_what_is_kept_after_concurrent_reads_stays_bounded(tmp_path: Path) -> None:
    """Six windows in flight on seven threads: with an arena per thread each
    keeps what it once held (about 60 MiB in all here); one shared arena keeps
    about what was in use at once (six windows, 24 MiB)."""
    kept = _run(tmp_path, "tuned", 6)["kept"]
    assert kept < 40 * MIB, kept / MIB
