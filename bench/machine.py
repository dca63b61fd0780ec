"""The machine and its physical limits, measured in the same run as the servers."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

MIB = 1 << 20
GIB = 1 << 30


def describe(workdir: Path) -> dict[str, Any]:
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    disk = shutil.disk_usage(workdir)
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kb / MIB, 1),
        "disk": f"{_device_of(workdir)} ({disk.total // GIB} GiB, {disk.free // GIB} GiB free)",
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _device_of(path: Path) -> str:
    best = ("?", "")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, fstype, *_ = line.split()
        if str(path.resolve()).startswith(mount) and len(mount) >= len(best[1]):
            best = (f"{device} {fstype} on {mount}", mount)
    return best[0]


def disk_write_mib_s(directory: Path, size: int) -> float:
    """Durable sequential write: `size` bytes in 1 MiB writes, then fsync (file and dir)."""
    block = os.urandom(MIB)
    path = directory / "disk-probe.bin"
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(size // MIB):
            os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    seconds = time.perf_counter() - started
    path.unlink()
    return size / MIB / seconds


def sha256_mib_s(size: int = 512 * MIB) -> float:
    """Single-core SHA-256 over 1 MiB buffers (what the server's hashing runs on)."""
    block = os.urandom(MIB)
    digest = hashlib.sha256()
    started = time.perf_counter()
    for _ in range(size // MIB):
        digest.update(block)
    return size / MIB / (time.perf_counter() - started)
