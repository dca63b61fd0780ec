"""Scenario 10: concurrent uploads, one and two API processes.

8 clients upload a 64 MiB archive each at the same time (UploadArchive with
`sendfile`, one connection per client), against a single 64 MiB stream on the
same server. Targets (issue 17): the 8 clients' aggregate >= 80 % of the
single stream's rate, and `serve --processes 2` >= 1.6x one process's
aggregate. Each server gets a fresh data directory on the bench's work disk.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import scenarios as sc
from bench.cpu import CpuMeter
from bench.data import ArchiveFile, make_archive
from bench.report import Report
from bench.servers import Server, start_openglacier

MIB = 1 << 20
CLIENTS = 8
SIZE = 64 * MIB


def scenario(work: Path, report: Report, runs: int) -> None:
    archive = make_archive(work / "concurrent.bin", SIZE)
    aggregate: dict[int, list[float]] = {}
    for processes in (1, 2):
        server = start_openglacier(work / f"concurrent-{processes}", processes=processes)
        meter = CpuMeter([server])
        try:
            sc.create_vault(server.endpoint)
            single, together = [], []
            for _ in range(runs):
                single.append(_single(server, archive))
                with meter:
                    together.append(_together(server, archive))
        finally:
            server.stop()
        aggregate[processes] = together
        who = f"{processes} process{'es' if processes > 1 else ''}"
        one = report.add("10", f"one 64 MiB stream ({who})", "MiB/s", single)
        many = report.add("10", f"8 clients x 64 MiB, aggregate ({who})", "MiB/s", together)
        report.target(
            "10",
            f"8 concurrent uploads / one stream ({who})",
            many.median / one.median * 100,
            80,
            unit=" %",
        )
        report.notes.append(meter.note("10", f"8 concurrent uploads, {who}"))
    ratio = statistics.median(aggregate[2]) / statistics.median(aggregate[1])
    report.target("10", "8 concurrent uploads: 2 processes / 1 process", ratio, 1.6, unit="x")
    archive.path.unlink()


def _single(server: Server, archive: ArchiveFile) -> float:
    archive_id, seconds = sc.upload_archive(server.endpoint, archive)
    sc.delete_archive(server.endpoint, archive_id)
    return archive.size / MIB / seconds


def _together(server: Server, archive: ArchiveFile) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        done = list(pool.map(lambda _: sc.upload_archive(server.endpoint, archive), range(CLIENTS)))
    seconds = time.perf_counter() - started
    for archive_id, _ in done:
        sc.delete_archive(server.endpoint, archive_id)
    return CLIENTS * archive.size / MIB / seconds
