"""The bench's CPU notes: a server burning a core and the client burning one
show up as such, and the machine's total holds both."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.cpu import CLIENT, MACHINE, REST, CpuMeter
from bench.servers import Server
from bench.wire import Endpoint

BURN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"


@pytest.fixture
def burner(tmp_path: Path) -> Iterator[Server]:
    proc = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        yield Server("burner", proc, Endpoint("127.0.0.1", 1, "k", "s"), tmp_path / "log")
    finally:
        proc.kill()
        proc.wait(10)


def busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_each_process_and_the_machine_are_measured(burner: Server) -> None:
    meter = CpuMeter([burner])
    busy(0.1)  # the burner is running before the first sample
    for _ in range(2):
        with meter:
            busy(0.5)
    # Two busy processes on a machine that may have other work: each got a
    # good share of a core, and the machine's busy time covers both.
    assert meter.median("burner") > 30
    assert meter.median(CLIENT) > 30
    total = meter.median("burner") + meter.median(CLIENT)
    assert meter.median(MACHINE) > total - 15  # clock ticks: a little slack
    assert all(share >= 0 for share in meter.shares[REST])
    assert len(meter.shares["burner"]) == 2


def test_the_note_names_each_share(burner: Server) -> None:
    meter = CpuMeter([burner])
    with meter:
        busy(0.2)
    note = meter.note("3", "GetJobOutput whole")
    assert note.startswith("scenario 3, GetJobOutput whole: CPU in % of one core")
    shares, _, machine = note.partition("; whole machine ")
    for name in ("burner", CLIENT, REST):
        assert f"{name} " in shares
    assert MACHINE not in shares  # given once, against the machine's cores
    assert machine.endswith(" %")
