"""Scale-out job running: several `openglacier worker` processes on one PostgreSQL
database run every job exactly once, even when one is killed and one is paused.

The API node runs no jobs (`--job-workers 0`); three worker processes with two
runners each and a 2 s lease share the metadata database and the blob directory.

To kill and pause workers while they hold claimed-but-unfinished jobs, without
guessing at timing, the test holds an ACCESS EXCLUSIVE lock on the `inventories`
table: archive retrievals run freely, but a runner that reaches an inventory
retrieval blocks inside it, holding that job's lease, until the lock goes. Once
every runner is blocked (seen in pg_locks), worker A is SIGKILLed and worker C
SIGSTOPped; the lock is released and worker B must finish their jobs after the
leases lapse. Then C is resumed: its pending finishes must be refused (fencing).
A second wave of jobs then runs on B and C side by side.

Exactly-once is checked through the notification outbox: the vault notifies on
every retrieval completion, in the completing transaction, so exactly one outbox
row per job id means no job completed twice, and one for every job that none was
lost.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL

from openglacier.treehash import MIB, tree_hash
from support.server import ACCOUNT_ID, REGION, LiveServer
from support.services import fresh_pg_database
from support.uploads import multipart_upload
from support.workers import (
    WorkerProcess,
    held_jobs,
    named_url,
    poll,
    quiescent,
    waiting_on_locks,
)

pytestmark = [pytest.mark.postgres, pytest.mark.functional, pytest.mark.timeout(180)]

VAULT = "workers"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:og-workers"
WAVE = 100  # jobs per wave; two waves
RUNNERS = 2  # per worker process
MIB_RANGE = f"{MIB}-{2 * MIB - 1}"  # tree-hash aligned: the output carries a checksum


@dataclass(frozen=True)
class Cluster:
    api: LiveServer
    db: Engine  # autocommit: every monitoring query sees the current state
    workers: dict[str, WorkerProcess]


@pytest.fixture
def cluster(tmp_path: Path, pg_admin: URL) -> Iterator[Cluster]:
    with fresh_pg_database(pg_admin) as url:
        blob_url = f"file://{tmp_path / 'blobs'}"
        api = LiveServer(
            tmp_path / "api",
            extra_env={
                "OPENGLACIER_METADATA_URL": named_url(url, "og-api"),
                "OPENGLACIER_BLOB_URL": blob_url,
                "OPENGLACIER_JOB_WORKERS": "0",
                # Initiating an inventory job then reads no `inventories` row, so
                # the test's lock on that table blocks only the runners.
                "OPENGLACIER_INVENTORY_BEFORE_FIRST": "empty",
            },
        )
        workers = {
            name: WorkerProcess(f"og-worker-{name}", tmp_path / name, url, blob_url, RUNNERS)
            for name in "abc"
        }
        db = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            api.start()
            yield Cluster(api, db, workers)
        finally:
            for worker in workers.values():
                worker.stop()
            api.stop()
            db.dispose()


def test_two_workers_run_every_job_once_despite_kill_and_pause(cluster: Cluster) -> None:
    glacier = cluster.api.client()
    archives = upload_archives(cluster)
    glacier.set_vault_notifications(
        vaultName=VAULT,
        vaultNotificationConfig={
            "SNSTopic": TOPIC,
            "Events": ["ArchiveRetrievalCompleted", "InventoryRetrievalCompleted"],
        },
    )
    a, b, c = (cluster.workers[name] for name in "abc")
    # All workers are up before any job exists, so their runners all take part
    # from the start.
    for worker in (a, b, c):
        worker.start()
    for worker in (a, b, c):
        worker.wait_ready()

    # --- wave 1: every runner ends up blocked inside an inventory job -----------
    with cluster.db.connect() as lock:
        held_lock = lock.execution_options(isolation_level="READ COMMITTED").begin()
        lock.execute(text("SET LOCAL lock_timeout = '10s'"))
        lock.execute(text("LOCK TABLE inventories IN ACCESS EXCLUSIVE MODE"))
        plan = initiate(glacier, archives, range(WAVE))
        with cluster.db.connect() as mon:
            poll(
                lambda: all(blocked(mon, w) == RUNNERS for w in (a, b, c)),
                "every runner to block in an inventory job",
            )
            a.kill()
            held_a = held_jobs(mon, a)
            pause_quiescent(mon, c)
            held_c = held_jobs(mon, c)
        held_lock.rollback()
    # Runners claim one job at a time: each holds exactly the inventory job it is
    # stuck in.
    for held in (held_a, held_c):
        assert sorted(held.values()) == ["InventoryRetrieval"] * RUNNERS, held
    stranded = set(held_a) | set(held_c)

    # B alone finishes the rest, including A's and C's jobs once their leases lapse.
    with cluster.db.connect() as mon:
        poll(lambda: in_progress(mon) == 0, "worker B to finish wave 1")
        wave1 = job_rows(mon)
    assert set(wave1) == set(plan)
    for job_id in stranded:
        row = wave1[job_id]
        assert row["status"] == "Succeeded", row
        assert row["attempts"] >= 2, row  # claimed by A or C, then again by B

    # C wakes up with leases it lost: every finish it attempts must be refused.
    c.resume()
    with cluster.db.connect() as mon:

        def c_done() -> bool:
            """Each of C's jobs was given up, or (a fencing bug) completed again."""
            rows = job_rows(mon)
            return all(
                f"job {job_id}: lease lost" in c.log() or rows[job_id] != wave1[job_id]
                for job_id in held_c
            )

        poll(c_done, "worker C to give up its jobs")
        assert {job_id: row for job_id, row in job_rows(mon).items() if job_id in wave1} == wave1
    for job_id in held_c:
        assert f"job {job_id}: lease lost" in c.log()
    assert "failed to run" not in c.log()

    # --- wave 2: B and C side by side -------------------------------------------
    plan |= initiate(glacier, archives, range(WAVE, 2 * WAVE))
    with cluster.db.connect() as mon:
        poll(lambda: in_progress(mon) == 0, "workers B and C to finish wave 2")
        final = job_rows(mon)
        outbox = notifications(mon)
    assert b.alive()
    assert c.alive()

    assert set(final) == set(plan)
    assert len(final) == 2 * WAVE
    for row in final.values():
        assert row["status"] == "Succeeded", row
        assert row["attempts"] >= 1, row
        assert row["completed_at"] is not None, row
        assert row["lease_owner"] is None, row
    # C's refused finishes changed nothing B had recorded.
    assert {job_id: final[job_id] for job_id in wave1} == wave1

    # Exactly one completion per job: one outbox row each, for the completion kept.
    per_job = Counter(message["JobId"] for _, message in outbox)
    assert per_job == Counter(set(plan)), {k: n for k, n in per_job.items() if n != 1}
    for topic, message in outbox:
        assert topic == TOPIC
        assert message["StatusCode"] == "Succeeded"
        assert message["Completed"] is True

    check_through_api(cluster, archives, plan, stranded)


def test_a_paused_worker_cannot_finish_a_job_another_worker_now_holds(
    cluster: Cluster,
) -> None:
    """Fencing while the job is still in progress: the paused worker resumes
    after its lease went to another worker that has not finished yet. Only the
    lease holder may complete the job (a status check alone would let either)."""
    glacier = cluster.api.client()
    archives = upload_archives(cluster)
    glacier.set_vault_notifications(
        vaultName=VAULT,
        vaultNotificationConfig={"SNSTopic": TOPIC, "Events": ["ArchiveRetrievalCompleted"]},
    )
    workers = [cluster.workers["b"], cluster.workers["c"]]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_ready()
    archive_id, data = archives["mib"]
    with cluster.db.connect() as mon, cluster.db.connect() as lock:
        # A retrieval pins its archive under a row lock (FOR UPDATE): holding it
        # stops whichever runner claims the job inside the job's transaction.
        held_lock = lock.execution_options(isolation_level="READ COMMITTED").begin()
        lock.execute(
            text("SELECT 1 FROM archives WHERE archive_id = :id FOR UPDATE"), {"id": archive_id}
        )
        job_id = glacier.initiate_job(
            vaultName=VAULT, jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id}
        )["jobId"]
        poll(lambda: any(waiting_on_locks(mon, w) for w in workers), "a runner to claim the job")
        stale, holder = workers if waiting_on_locks(mon, workers[0]) else workers[::-1]
        assert set(held_jobs(mon, stale)) == {job_id}
        pause_quiescent(mon, stale)
        held_lock.rollback()
        # The stale worker's session now holds the archive row lock for its paused
        # transaction; the other worker claims the job once the lease lapses and
        # waits on that row lock, mid-job.
        poll(
            lambda: set(held_jobs(mon, holder)) == {job_id} and waiting_on_locks(mon, holder) == 1,
            "the other worker to take over the job",
        )
        stale.resume()  # its finish, in the same transaction, must be refused
        poll(
            lambda: in_progress(mon) == 0 and job_id in stale.log() + holder.log(),
            "the job to be finished and the loser to log it",
        )
        assert f"job {job_id}: lease lost" in stale.log()
        row = job_rows(mon)[job_id]
        outbox = notifications(mon)
    assert row["status"] == "Succeeded"
    assert row["attempts"] == 2
    assert [message["JobId"] for _, message in outbox] == [job_id]
    for worker in workers:
        assert "failed to run" not in worker.log()
    assert "lease lost" not in holder.log()
    check_output(glacier, archives, job_id, Planned(0, "mib"))
    assert tree_hash(data) == glacier.describe_job(vaultName=VAULT, jobId=job_id)["SHA256TreeHash"]


def test_starting_a_worker_leaves_blobs_in_flight_alone(cluster: Cluster) -> None:
    """A process starting on a shared file:// blob store sweeps only stale temp
    files, never those of blobs another live process is writing (regression: the
    start-up sweep used to delete every temp file, failing the other writers)."""
    glacier = cluster.api.client()
    upload_archives(cluster)
    writer, newcomer = cluster.workers["a"], cluster.workers["b"]
    writer.start().wait_ready()
    tmp = cluster.api.extra_env["OPENGLACIER_BLOB_URL"].removeprefix("file://") + "/tmp"
    with cluster.db.connect() as lock:
        held_lock = lock.execution_options(isolation_level="READ COMMITTED").begin()
        lock.execute(text("SET LOCAL lock_timeout = '10s'"))
        lock.execute(text("LOCK TABLE inventories IN ACCESS EXCLUSIVE MODE"))
        for _ in range(RUNNERS):
            glacier.initiate_job(
                vaultName=VAULT, jobParameters={"Type": "inventory-retrieval", "Format": "JSON"}
            )
        with cluster.db.connect() as mon:
            poll(lambda: blocked(mon, writer) == RUNNERS, "the runners to block mid-inventory")
        in_flight = sorted(p.name for p in Path(tmp).iterdir())
        if len(in_flight) != RUNNERS:  # each blocked runner has its output blob open
            pytest.fail(f"expected {RUNNERS} temp files in {tmp}, found {in_flight}")
        newcomer.start().wait_ready()
        held_lock.rollback()
    with cluster.db.connect() as mon:
        poll(lambda: in_progress(mon) == 0, "the inventory jobs to finish")
        attempts = [row["attempts"] for row in job_rows(mon).values()]
    assert "failed to run" not in writer.log() + newcomer.log()
    assert attempts == [1] * RUNNERS  # finished first time, by the runner that began


# --- setup ------------------------------------------------------------------------


def upload_archives(cluster: Cluster) -> dict[str, tuple[str, bytes]]:
    """name -> (archive id, bytes)."""
    glacier = cluster.api.client()
    glacier.create_vault(vaultName=VAULT)
    rng = random.Random(20120601)
    bodies = {
        "tiny": b"x",
        "small": rng.randbytes(3000),
        "mib": rng.randbytes(MIB + 17),
        "multi": rng.randbytes(3 * MIB + 123),
    }
    archives = {}
    for name, body in bodies.items():
        if name == "multi":
            archive_id = multipart_upload(glacier, VAULT, body)["archiveId"]
        else:
            archive_id = glacier.upload_archive(vaultName=VAULT, body=body)["archiveId"]
        archives[name] = (archive_id, body)
    resp = cluster.api.admin("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": VAULT})
    assert resp.status_code == 200, resp.text
    return archives


@dataclass(frozen=True)
class Planned:
    """What job number `index` retrieves."""

    index: int
    archive: str | None  # None: an inventory retrieval
    byte_range: str | None = None
    inventory_format: str | None = None

    def params(self, archives: dict[str, tuple[str, bytes]]) -> dict[str, Any]:
        description = f"job-{self.index}"
        if self.archive is None:
            return {
                "Type": "inventory-retrieval",
                "Description": description,
                "Format": self.inventory_format,
            }
        params = {
            "Type": "archive-retrieval",
            "Description": description,
            "ArchiveId": archives[self.archive][0],
            "Tier": ("Expedited", "Standard", "Bulk")[self.index % 3],
        }
        if self.byte_range:
            params["RetrievalByteRange"] = self.byte_range
        return params


def planned(index: int) -> Planned:
    """Every fifth job is an inventory retrieval, so each runner, claiming jobs in
    initiation order, soon reaches one."""
    if index % 5 == 2:
        return Planned(index, None, inventory_format=("JSON", "CSV")[index // 5 % 2])
    name = ("tiny", "small", "mib", "multi")[index % 4]
    byte_range = MIB_RANGE if name == "multi" and index % 3 == 0 else None
    return Planned(index, name, byte_range=byte_range)


def initiate(
    glacier: Any, archives: dict[str, tuple[str, bytes]], indexes: range
) -> dict[str, Planned]:
    plan = {}
    for index in indexes:
        job = planned(index)
        resp = glacier.initiate_job(vaultName=VAULT, jobParameters=job.params(archives))
        plan[resp["jobId"]] = job
    return plan


# --- database views -----------------------------------------------------------------


def blocked(conn: Connection, worker: WorkerProcess) -> int:
    """Sessions of `worker` waiting for a lock on the `inventories` table."""
    return int(
        conn.scalar(
            text(
                "SELECT count(DISTINCT a.pid) FROM pg_stat_activity a "
                "JOIN pg_locks l ON l.pid = a.pid "
                "WHERE a.datname = current_database() AND a.application_name = :name "
                "AND NOT l.granted AND l.relation = 'inventories'::regclass"
            ),
            {"name": worker.name},
        )
        or 0
    )


def pause_quiescent(conn: Connection, worker: WorkerProcess) -> None:
    """SIGSTOP `worker` at a moment it holds no row lock (a lease renewal or a
    notification claim in flight would hide rows from the other workers'
    SKIP LOCKED claims until it resumed)."""

    def paused_quietly() -> bool:
        worker.pause()
        poll(lambda: stopped(worker.pid), f"{worker.name} to stop", 5)
        if quiescent(conn, worker):
            return True
        worker.resume()
        return False

    poll(paused_quietly, f"{worker.name} to pause between transactions", 10)


def stopped(pid: int) -> bool:
    """Every thread of `pid` is in the stopped state."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        except FileNotFoundError:  # a thread that just ended
            continue
    return all(state == "T" for state in states)


def in_progress(conn: Connection) -> int:
    return int(conn.scalar(text("SELECT count(*) FROM jobs WHERE status = 'InProgress'")) or 0)


def job_rows(conn: Connection) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT job_id, status, completed_at, attempts, output_blob_key, output_size, "
            "lease_owner FROM jobs"
        )
    )
    return {str(r.job_id): dict(r._mapping) for r in rows}


def notifications(conn: Connection) -> list[tuple[str, dict[str, Any]]]:
    rows = conn.execute(text("SELECT topic_arn, message FROM notifications ORDER BY id"))
    return [(str(r.topic_arn), json.loads(r.message)) for r in rows]


# --- through the API ------------------------------------------------------------------


def check_through_api(
    cluster: Cluster,
    archives: dict[str, tuple[str, bytes]],
    plan: dict[str, Planned],
    stranded: set[str],
) -> None:
    glacier = cluster.api.client()
    listed = []
    for page in glacier.get_paginator("list_jobs").paginate(vaultName=VAULT):
        listed += page["JobList"]
    assert sorted(j["JobId"] for j in listed) == sorted(plan)
    assert {j["StatusCode"] for j in listed} == {"Succeeded"}
    # Every job A or C held when it stopped, every inventory, and a sample.
    sample = [
        job_id
        for job_id, job in plan.items()
        if job_id in stranded or job.archive is None or job.index % 7 == 0
    ]
    for job_id in sample:
        check_output(glacier, archives, job_id, plan[job_id])


def check_output(
    glacier: Any, archives: dict[str, tuple[str, bytes]], job_id: str, job: Planned
) -> None:
    resp = glacier.get_job_output(vaultName=VAULT, jobId=job_id)
    body = resp["body"].read()
    if job.archive is None:
        assert inventory_ids(body, job.inventory_format) == {a for a, _ in archives.values()}
        return
    data = archives[job.archive][1]
    if job.byte_range:
        first, last = (int(n) for n in job.byte_range.split("-"))
        data = data[first : last + 1]
    assert body == data, f"{job_id} ({job})"
    assert resp["checksum"] == tree_hash(data)
    described = glacier.describe_job(vaultName=VAULT, jobId=job_id)
    assert described["SHA256TreeHash"] == tree_hash(data)


def inventory_ids(body: bytes, fmt: str | None) -> set[str]:
    if fmt == "JSON":
        return {item["ArchiveId"] for item in json.loads(body)["ArchiveList"]}
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0][0] == "ArchiveId"
    return {row[0] for row in rows[1:]}
