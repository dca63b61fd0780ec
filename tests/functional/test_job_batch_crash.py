"""Batched job completion survives SIGKILL at random points (jobs/batch.py).

An API node runs no jobs; `openglacier worker` processes on the same metadata
store (SQLite file, PostgreSQL) and blob directory run 300 archive retrievals of
4 MiB archives, claimed 64 at a time. Five workers in turn are SIGKILLed at a
random moment once they have started completing jobs: inside a batch's blob
checks, between its groups, or inside a commit. A last worker then finishes.

What must hold: every job succeeded exactly once (one outbox row per job, from
the completing transaction), each pinned exactly its archive's blobs (a batch
undone by the kill left no pin behind), at least one job was claimed again after
a kill (so a kill landed while a batch held its jobs), and the bytes served are
the archive's.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL

from openglacier.treehash import MIB
from support.server import ACCOUNT_ID, REGION, LiveServer
from support.services import fresh_pg_database
from support.workers import WorkerProcess, poll

pytestmark = [pytest.mark.functional, pytest.mark.timeout(240)]

VAULT = "batch-crash"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:og-batch-crash"
JOBS = 300
KILLS = 5


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
        return
    admin: URL = request.getfixturevalue("pg_admin")
    with fresh_pg_database(admin) as url:
        yield url


def test_sigkill_mid_batch_completes_every_job_exactly_once(
    tmp_path: Path, metadata_url: str
) -> None:
    blob_url = f"file://{tmp_path / 'blobs'}"
    env = {"OPENGLACIER_METADATA_URL": metadata_url, "OPENGLACIER_BLOB_URL": blob_url}
    api = LiveServer(tmp_path / "api", extra_env={**env, "OPENGLACIER_JOB_WORKERS": "0"})
    db = create_engine(metadata_url, isolation_level="AUTOCOMMIT")
    workers: list[WorkerProcess] = []
    try:
        api.start()
        bodies = upload(api)
        plan = initiate(api, bodies)
        rng = random.Random(9_0601)
        with db.connect() as mon:
            for n in range(KILLS):
                worker = start_worker(tmp_path, f"w{n}", metadata_url, blob_url, workers)
                poll(progressed(mon, done(mon)), "a first completion")
                time.sleep(rng.uniform(0, 0.4))  # the random kill point, not a wait for jobs
                worker.kill()
            last = start_worker(tmp_path, "last", metadata_url, blob_url, workers)
            poll(lambda: in_progress(mon) == 0, "the last worker to finish", timeout=120)
            assert "failed to run" not in last.log()
            check_store(mon, plan)
        check_outputs(api, plan, bodies)
    finally:
        for worker in workers:
            worker.stop()
        api.stop()
        db.dispose()


def start_worker(
    tmp_path: Path, name: str, url: str, blob_url: str, started: list[WorkerProcess]
) -> WorkerProcess:
    worker = WorkerProcess(name, tmp_path / name, url, blob_url, runners=1, lease_seconds=1.0)
    if url.startswith("sqlite"):  # no application_name on SQLite
        worker.extra_env["OPENGLACIER_METADATA_URL"] = url
    started.append(worker)
    worker.start().wait_ready()
    return worker


def upload(api: LiveServer) -> dict[str, bytes]:
    glacier = api.client()
    glacier.create_vault(vaultName=VAULT)
    glacier.set_vault_notifications(
        vaultName=VAULT,
        vaultNotificationConfig={"SNSTopic": TOPIC, "Events": ["ArchiveRetrievalCompleted"]},
    )
    rng = random.Random(4)
    bodies = {}
    for _ in range(6):
        body = rng.randbytes(4 * MIB + rng.randrange(MIB))
        bodies[glacier.upload_archive(vaultName=VAULT, body=body)["archiveId"]] = body
    return bodies


def initiate(api: LiveServer, bodies: dict[str, bytes]) -> dict[str, str]:
    """job id -> archive id."""
    glacier = api.client()
    ids = sorted(bodies)
    plan = {}
    for index in range(JOBS):
        archive_id = ids[index % len(ids)]
        params = {"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": "Expedited"}
        plan[glacier.initiate_job(vaultName=VAULT, jobParameters=params)["jobId"]] = archive_id
    return plan


def progressed(conn: Connection, before: int) -> Callable[[], bool]:
    return lambda: done(conn) > before or in_progress(conn) == 0


def done(conn: Connection) -> int:
    return int(conn.scalar(text("SELECT count(*) FROM jobs WHERE status <> 'InProgress'")) or 0)


def in_progress(conn: Connection) -> int:
    return int(conn.scalar(text("SELECT count(*) FROM jobs WHERE status = 'InProgress'")) or 0)


def check_store(conn: Connection, plan: dict[str, str]) -> None:
    rows = conn.execute(text("SELECT job_id, status, attempts, lease_owner FROM jobs")).all()
    assert sorted(r.job_id for r in rows) == sorted(plan)
    assert {r.status for r in rows} == {"Succeeded"}
    assert {r.lease_owner for r in rows} == {None}
    assert max(r.attempts for r in rows) >= 2, "no kill landed while a batch held its jobs"
    messages = conn.execute(text("SELECT message FROM notifications")).scalars().all()
    per_job = Counter(json.loads(m)["JobId"] for m in messages)
    assert per_job == Counter(set(plan)), {k: n for k, n in per_job.items() if n != 1}
    pins = Counter(conn.execute(text("SELECT job_id FROM job_segments")).scalars().all())
    segments = Counter(
        conn.execute(text("SELECT archive_id FROM archive_segments")).scalars().all()
    )
    assert pins == Counter({job: segments[archive] for job, archive in plan.items()})
    if conn.dialect.name == "sqlite":
        assert conn.scalar(text("PRAGMA integrity_check")) == "ok"


def check_outputs(api: LiveServer, plan: dict[str, str], bodies: dict[str, bytes]) -> None:
    glacier = api.client()
    for job_id in random.Random(1).sample(sorted(plan), 12):
        out = glacier.get_job_output(vaultName=VAULT, jobId=job_id)
        assert out["body"].read() == bodies[plan[job_id]]
