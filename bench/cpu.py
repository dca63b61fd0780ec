"""Where a measurement's CPU went: each server, the bench's own client, the rest.

Every process of a run (the servers, SeaweedFS or PostgreSQL, the bench's
client threads, nginx) shares this machine's cores, so a rate that falls short
of its target is only explained once it is known whether the cores were full
and who filled them. `CpuMeter` samples, around each timed run, the CPU time of
the watched servers (with their child processes, from /proc), of this process
(the client: os.times, all threads) and of the whole machine (/proc/stat), and
`note()` reports the medians in % of one core. "rest" is the machine's busy
time that none of them used: PostgreSQL, SeaweedFS when it is not watched, the
kernel's own threads.

On a 2-core machine "client 95 %, openglacier 100 %, machine 198 % of 200 %"
says that the server had one core and the client the other, and that the
figure is bound by the cores, not by waiting.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

CLIENT = "client (bench)"
MACHINE = "machine"
REST = "rest"


class Watched(Protocol):
    @property
    def name(self) -> str: ...

    def cpu_seconds(self) -> float: ...


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used by each watched server, this client, and the whole machine over
    each `with` block, in % of one core; one sample per block."""

    def __init__(self, watched: Sequence[Watched]) -> None:
        self.watched = list(watched)
        self.shares: dict[str, list[float]] = {}

    def __enter__(self) -> CpuMeter:
        self._started = time.perf_counter()
        self._before = self._sample()
        return self

    def _sample(self) -> dict[str, float]:
        sample = {w.name: w.cpu_seconds() for w in self.watched}
        sample[CLIENT] = own_cpu()
        sample[MACHINE] = machine_busy()
        return sample

    def __exit__(self, *exc: object) -> None:
        seconds = time.perf_counter() - self._started
        after = self._sample()
        used = {name: (after[name] - self._before[name]) / seconds * 100 for name in after}
        # /proc/stat counts in clock ticks: a short run can show the machine a
        # tick below what the processes report; never a negative rest.
        used[REST] = max(0.0, used[MACHINE] - sum(v for k, v in used.items() if k != MACHINE))
        for name, share in used.items():
            self.shares.setdefault(name, []).append(share)

    def median(self, name: str) -> float:
        return statistics.median(self.shares[name])

    def note(self, scenario: str, what: str) -> str:
        cores = os.cpu_count() or 1
        parts = ", ".join(
            f"{name} {statistics.median(v):.0f} %"
            for name, v in self.shares.items()
            if name != MACHINE
        )
        return (
            f"scenario {scenario}, {what}: CPU in % of one core (median of runs): {parts}; "
            f"whole machine {self.median(MACHINE):.0f} % of {cores * 100} %"
        )
