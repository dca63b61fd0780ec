"""A burst of 2,000 retrieval jobs on a live server (instant profile), while
clients poll for output: the in-process runner, on its own thread and event
loop, claims and completes them in batches (jobs/batch.py), and every one
succeeds with the archive's bytes.

Before the runner had its own thread, polling clients starved it: about one job
a second completed (docs/performance.md, "Job bursts"). Nothing here drives the
runner through the admin API: the background runner must do all the work.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.server import LiveServer
from support.workers import poll

pytestmark = [pytest.mark.functional, pytest.mark.timeout(300)]

VAULT = "burst"
JOBS = 2000
INITIATORS = 8
POLLERS = 8


def test_a_burst_of_2000_jobs_completes_while_clients_poll(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "og").start()
    try:
        glacier = server.client()
        glacier.create_vault(vaultName=VAULT)
        bodies = {}
        for size in (1, 1000, 70_000):
            body = random.Random(size).randbytes(size)
            bodies[glacier.upload_archive(vaultName=VAULT, body=body)["archiveId"]] = body
        plan = initiate_while_polling(server, sorted(bodies))
        assert len(plan) == JOBS

        def none_in_progress() -> bool:
            return not any(
                page["JobList"]
                for page in glacier.get_paginator("list_jobs").paginate(
                    vaultName=VAULT, completed="false"
                )
            )

        poll(none_in_progress, "the runner to complete the burst", timeout=120)
        statuses = [
            job["StatusCode"]
            for page in glacier.get_paginator("list_jobs").paginate(vaultName=VAULT)
            for job in page["JobList"]
        ]
        assert len(statuses) == JOBS
        assert set(statuses) == {"Succeeded"}
        for job_id in random.Random(2).sample(sorted(plan), 25):
            out = glacier.get_job_output(vaultName=VAULT, jobId=job_id)
            assert out["body"].read() == bodies[plan[job_id]]
        assert "failed to run" not in (server.log_path.read_text() if server.log_path else "")
    finally:
        server.stop()


def initiate_while_polling(server: LiveServer, archive_ids: list[str]) -> dict[str, str]:
    """job id -> archive id, initiated from several threads while others poll
    GetJobOutput of the jobs initiated so far (answers: 200 or "not ready")."""
    plan: dict[str, str] = {}
    order: list[str] = []
    lock = threading.Lock()
    initiating = threading.Event()
    initiating.set()

    def initiate(index: int) -> None:
        glacier = server.client()
        for n in range(index, JOBS, INITIATORS):
            archive_id = archive_ids[n % len(archive_ids)]
            params = {"Type": "archive-retrieval", "ArchiveId": archive_id}
            job_id = glacier.initiate_job(vaultName=VAULT, jobParameters=params)["jobId"]
            with lock:
                plan[job_id] = archive_id
                order.append(job_id)

    def poller(index: int) -> int:
        glacier = server.client()
        polls = 0
        while initiating.is_set():
            with lock:
                known = order[index::POLLERS][-5:]
            for job_id in known:
                polls += 1
                poll_output(glacier, job_id)
        return polls

    with ThreadPoolExecutor(INITIATORS + POLLERS) as pool:
        pollers = [pool.submit(poller, n) for n in range(POLLERS)]
        for future in [pool.submit(initiate, n) for n in range(INITIATORS)]:
            future.result()
        initiating.clear()
        assert sum(p.result() for p in pollers) > 0
    return plan


def poll_output(glacier: Any, job_id: str) -> None:
    try:
        glacier.get_job_output(vaultName=VAULT, jobId=job_id)["body"].read()
    except ClientError as exc:
        # Not ready yet: the job is still in progress (spec: 400 InvalidParameterValue).
        if exc.response["Error"]["Code"] != "InvalidParameterValueException":
            raise
