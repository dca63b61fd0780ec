"""Scenario 9: a burst of 2,000 retrieval jobs, alone and under polling clients.

16 keep-alive connections send 2,000 InitiateJob calls (archive retrievals of
one small archive, instant profile: each job is due when it is initiated) as
fast as the server answers. In the second run 64 more connections poll
GetJobOutput meanwhile, each for the jobs initiated so far that it has not yet
seen ready, as a client waiting for its output would.

Both figures come from the server's own job rows (read from its SQLite file
afterwards), so they do not depend on how often the pollers happen to ask:
- drain: the last completion after the last job was initiated;
- lateness: for each job, completion minus due time (the time a polling client
  is told "not ready" after the job was due); the worst and the 99th percentile.

Targets (issue 17): drain <= 2 s, worst lateness <= 1 s with 64 pollers.
Each run gets a fresh server and data directory, so its rows are its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from pathlib import Path

from bench import scenarios as sc
from bench.data import ArchiveFile, make_archive
from bench.report import Report
from bench.servers import start_openglacier
from bench.wire import Conn, Endpoint, raw_request

JOBS = 2000
INITIATORS = 16
POLLERS = 64


@dataclass
class Burst:
    initiate_seconds: float = 0.0
    drain_seconds: float = 0.0
    worst_late: float = 0.0
    p99_late: float = 0.0
    polls: int = 0
    ready_seen: int = 0

    @property
    def initiate_rate(self) -> float:
        return JOBS / self.initiate_seconds if self.initiate_seconds else 0.0


@dataclass
class _Shared:
    job_ids: list[str] = field(default_factory=list)
    ready: set[str] = field(default_factory=set)
    initiating: bool = True
    polls: int = 0


def run_burst(endpoint: Endpoint, archive_id: str, database: Path, *, pollers: int) -> Burst:
    """One burst against a server whose SQLite file is `database`."""
    shared = _Shared()
    burst = Burst()
    asyncio.run(_burst(endpoint, archive_id, shared, burst, pollers))
    burst.polls, burst.ready_seen = shared.polls, len(shared.ready)
    _from_rows(database, shared.job_ids, burst)
    return burst


async def _burst(
    endpoint: Endpoint, archive_id: str, shared: _Shared, burst: Burst, pollers: int
) -> None:
    body = json.dumps({"Type": "archive-retrieval", "ArchiveId": archive_id}).encode()
    initiate = raw_request(
        endpoint, "POST", sc.vault_path() + "/jobs", body, sha256(body).hexdigest()
    )
    counter = itertools.count()

    async def initiator() -> None:
        conn = await Conn.open(endpoint)
        try:
            while next(counter) < JOBS:
                status, headers, _ = await conn.call(initiate)
                if status != 202:
                    raise RuntimeError(f"InitiateJob answered {status}")
                shared.job_ids.append(headers["x-amz-job-id"])
        finally:
            conn.close()

    tasks = [asyncio.create_task(_poller(endpoint, shared, n, pollers)) for n in range(pollers)]
    started = time.perf_counter()
    await asyncio.gather(*(initiator() for _ in range(INITIATORS)))
    burst.initiate_seconds = time.perf_counter() - started
    shared.initiating = False
    await asyncio.gather(*tasks)


async def _poller(endpoint: Endpoint, shared: _Shared, index: int, pollers: int) -> None:
    """Poll GetJobOutput for this poller's share of the jobs until all are ready."""
    conn = await Conn.open(endpoint)
    requests: dict[str, bytes] = {}
    try:
        while True:
            mine = [j for j in shared.job_ids[index::pollers] if j not in shared.ready]
            if not mine and not shared.initiating:
                return
            if not mine:
                await asyncio.sleep(0.005)
                continue
            for job_id in mine:
                if job_id not in requests:
                    target = f"{sc.vault_path()}/jobs/{job_id}/output"
                    requests[job_id] = raw_request(endpoint, "GET", target)
                status, _, _ = await conn.call(requests[job_id])
                shared.polls += 1
                if status == 200:
                    shared.ready.add(job_id)
    finally:
        conn.close()


def wait_until_done(database: Path, timeout: float = 600) -> None:
    """Without pollers nobody watches the jobs: wait until the rows say done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as db:
            left = db.execute("SELECT count(*) FROM jobs WHERE status = 'InProgress'").fetchone()
        if left[0] == 0:
            return
        time.sleep(0.05)
    raise RuntimeError("the burst's jobs did not complete")


def _from_rows(database: Path, job_ids: list[str], burst: Burst) -> None:
    wait_until_done(database)
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT created_at, due_at, completed_at, status FROM jobs").fetchall()
    wanted = len(job_ids)
    if len(rows) < wanted or any(r[3] != "Succeeded" for r in rows):
        raise RuntimeError("a burst job did not succeed")
    created = [_time(r[0]) for r in rows]
    late = sorted((_time(r[2]) - _time(r[1])) for r in rows)
    burst.drain_seconds = max(_time(r[2]) for r in rows) - max(created)
    burst.worst_late = late[-1]
    burst.p99_late = statistics.quantiles(late, n=100)[98]


def _time(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def scenario(work: Path, report: Report, runs: int) -> None:
    """Scenario 9's figures and targets, `runs` bursts of each kind."""
    results: dict[int, list[Burst]] = {0: [], POLLERS: []}
    for n in range(runs):
        for pollers, bursts in results.items():
            data_dir = work / f"burst-{n}-{pollers}"
            server = start_openglacier(data_dir)
            try:
                sc.create_vault(server.endpoint)
                archive_id, _ = sc.upload_archive(server.endpoint, _small_archive(work))
                database = data_dir / "metadata.db"
                bursts.append(run_burst(server.endpoint, archive_id, database, pollers=pollers))
            finally:
                server.stop()
    alone, polled = results[0], results[POLLERS]
    report.add(
        "9", "InitiateJob x 2,000 (16 connections)", "jobs/s", [b.initiate_rate for b in alone]
    )
    report.add("9", "drain after the last InitiateJob", "s", [b.drain_seconds for b in alone])
    report.add("9", "worst lateness, no pollers", "s", [b.worst_late for b in alone])
    note = f"{statistics.median(b.polls for b in polled):.0f} polls per run"
    report.add("9", "InitiateJob x 2,000, 64 pollers", "jobs/s", [b.initiate_rate for b in polled])
    report.add("9", "drain, 64 pollers", "s", [b.drain_seconds for b in polled])
    report.add("9", "worst lateness, 64 pollers", "s", [b.worst_late for b in polled], note)
    report.add("9", "p99 lateness, 64 pollers", "s", [b.p99_late for b in polled])
    worst_drain = max(b.drain_seconds for b in alone + polled)
    report.target(
        "9", "2,000 jobs drained after the last call", worst_drain, 2.0, higher=False, unit="s"
    )
    worst = max(b.worst_late for b in polled)
    report.target("9", "worst job lateness, 64 pollers", worst, 1.0, higher=False, unit="s")


def _small_archive(work: Path) -> ArchiveFile:
    path = work / "burst-archive.bin"
    return make_archive(path, 1024)  # 1 KiB: the jobs' cost, not their bytes
