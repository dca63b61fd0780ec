"""Cluster mode on one machine, started by scripts/cluster.py (the documented commands):
PostgreSQL, SeaweedFS (master, three volume servers with replication 001, filer, S3
gateway), two API nodes and a worker; parts of it are killed while it serves.

One cluster for the module (it takes seconds to start); each test puts back what it
stopped, so the next one starts from a whole cluster.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from scripts.cluster import Cluster
from sqlalchemy import text

from openglacier.storage.blobs.s3 import PART_SIZE
from openglacier.treehash import MIB, tree_hash
from support.cluster import (
    admin,
    glacier,
    leased_jobs,
    metadata_engine,
    retrieve,
    running_cluster,
    wait_job,
)
from support.uploads import multipart_upload

pytestmark = [
    pytest.mark.functional,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.timeout(240),
]
LEASE = 2.0  # seconds: a killed worker's jobs are retried soon after
VAULT = "cluster"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("cluster"),
        job_lease=LEASE,
        # Initiating an inventory job then reads no `inventories` row, so a lock on
        # that table blocks only the runners (the worker test holds one).
        serve_options=("--inventory-before-first=empty",),
    ) as running:
        glacier(running, "api-a").create_vault(vaultName=VAULT)
        yield running


def archive(rng: random.Random) -> bytes:
    # One in four is past the S3 part size: a multipart upload in the bucket.
    size = PART_SIZE + rng.randrange(1, MIB) if rng.random() < 0.25 else rng.randrange(1, 2 * MIB)
    return rng.randbytes(size)


def upload(client: Any, data: bytes, multipart: bool) -> str:
    if multipart:
        answer = multipart_upload(client, VAULT, data)
    else:
        answer = client.upload_archive(vaultName=VAULT, body=data)
    assert answer["checksum"] == tree_hash(data)
    return str(answer["archiveId"])


def test_upload_through_a_retrieve_through_b(cluster: Cluster) -> None:
    data = os.urandom(3 * MIB + 17)
    archive_id = upload(glacier(cluster, "api-a"), data, multipart=False)
    parts = os.urandom(2 * MIB + 5)
    multipart_id = upload(glacier(cluster, "api-a"), parts, multipart=True)
    b = glacier(cluster, "api-b")
    assert retrieve(b, VAULT, archive_id) == data
    assert retrieve(b, VAULT, multipart_id) == parts


def test_sigkill_of_node_a_during_uploads_loses_no_acknowledged_archive(
    cluster: Cluster,
) -> None:
    acknowledged = upload_while_a_dies(cluster, kill_after=random.randrange(6, 12))
    try:
        listed = admin(
            cluster,
            "api-b",
            "GET",
            f"/vaults/{cluster.secrets.account_id}/{VAULT}/archives?limit=100000",
        )
        live = {a["ArchiveId"]: a for a in listed["archives"]}
        for archive_id, (checksum, size) in acknowledged.items():
            assert archive_id in live, "an acknowledged archive was lost"
            assert (live[archive_id]["SHA256TreeHash"], live[archive_id]["Size"]) == (
                checksum,
                size,
            )
        audit = admin(cluster, "api-b", "POST", "/audit")
        assert audit["problems"] == []  # every archive is whole: none partial
        assert audit["checked"] == len(live)
    finally:
        cluster.start_part("api-a")


def upload_while_a_dies(cluster: Cluster, kill_after: int) -> dict[str, tuple[str, int]]:
    """Four clients upload through A and, once A fails them, retry on B; A is
    SIGKILLed mid-request. Returns the acknowledged archives: id -> (checksum, size)."""
    acked: dict[str, tuple[str, int]] = {}
    lock = threading.Lock()
    enough, done_on_b = threading.Event(), threading.Semaphore(0)

    def client(seed: int) -> None:
        rng, node = random.Random(seed), "api-a"
        clients = {name: glacier(cluster, name) for name in ("api-a", "api-b")}
        while True:
            data = archive(rng)
            try:
                archive_id = upload(clients[node], data, multipart=seed % 2 == 1)
            except (ClientError, BotoCoreError):
                assert node == "api-a", "node B failed an upload"
                node = "api-b"  # not acknowledged: the client retries on B
                continue
            with lock:
                acked[archive_id] = (tree_hash(data), len(data))
                if len(acked) >= kill_after:
                    enough.set()
            if node == "api-b":
                done_on_b.release()
                return

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    assert enough.wait(120), cluster.log("api-a")
    cluster.kill_part("api-a")  # while the other clients are mid-request
    for thread in threads:
        thread.join(120)
    for _ in threads:
        assert done_on_b.acquire(timeout=0), "a client never got an upload through B"
    return acked


def test_sigkill_of_the_worker_holding_leased_jobs(cluster: Cluster) -> None:
    """The worker is SIGKILLed inside an inventory job (blocked on a table lock the
    test holds); a new worker finishes the job once the lease lapses."""
    b = glacier(cluster, "api-b")
    upload(b, os.urandom(1000), multipart=False)
    engine = metadata_engine(cluster)
    worker = cluster.parts["worker"].process
    assert worker is not None
    try:
        with engine.connect() as locker:
            held = locker.execution_options(isolation_level="READ COMMITTED").begin()
            locker.execute(text("SET LOCAL lock_timeout = '10s'"))
            locker.execute(text("LOCK TABLE inventories IN ACCESS EXCLUSIVE MODE"))
            job = b.initiate_job(vaultName=VAULT, jobParameters={"Type": "inventory-retrieval"})
            poll_until(lambda: leased_jobs(engine, worker.pid) == [job["jobId"]], cluster)
            cluster.kill_part("worker")
            held.rollback()
        cluster.start_part("worker")  # another worker process
        done = wait_job(b, VAULT, job["jobId"], timeout=30)
        assert done["StatusCode"] == "Succeeded", done
        with engine.connect() as conn:
            attempts = conn.scalar(
                text("SELECT attempts FROM jobs WHERE job_id = :j"), {"j": job["jobId"]}
            )
        assert attempts is not None
        assert attempts >= 2  # claimed by the dead worker, then again
        output = b.get_job_output(vaultName=VAULT, jobId=job["jobId"])["body"].read()
        assert b'"ArchiveList"' in output
    finally:
        engine.dispose()
        if not cluster.parts["worker"].alive:
            cluster.start_part("worker")


def poll_until(condition: Any, cluster: Cluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, cluster.log("worker")
        time.sleep(0.05)  # polling another process's progress


@pytest.fixture
def completed_retrieval(cluster: Cluster) -> tuple[str, bytes]:
    """A finished archive retrieval: its output is read from the blob store."""
    b = glacier(cluster, "api-b")
    data = os.urandom(MIB + 3)
    archive_id = upload(b, data, multipart=False)
    job = b.initiate_job(
        vaultName=VAULT, jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id}
    )
    assert wait_job(b, VAULT, job["jobId"])["StatusCode"] == "Succeeded"
    return job["jobId"], data


def output(cluster: Cluster, node: str, job_id: str) -> bytes:
    answer = glacier(cluster, node).get_job_output(vaultName=VAULT, jobId=job_id)
    body: bytes = answer["body"].read()
    return body


def test_reads_keep_working_without_one_volume_server(
    cluster: Cluster, completed_retrieval: tuple[str, bytes]
) -> None:
    job_id, data = completed_retrieval
    engine = metadata_engine(cluster)
    with engine.connect() as conn:
        keys = conn.scalars(
            text("SELECT blob_key FROM job_segments WHERE job_id = :j"), {"j": job_id}
        )
        holders = sorted({name for key in keys for name in cluster.volume_servers_holding(key)})
    engine.dispose()
    assert len(holders) >= 2  # replication 001: two copies of every chunk
    down = holders[0]  # a server holding a copy of the bytes read below
    cluster.stop_part(down, grace=3)
    try:
        # Replication 001: every volume has its second copy on another server.
        assert output(cluster, "api-a", job_id) == data
        assert output(cluster, "api-b", job_id) == data
    finally:
        cluster.start_part(down)
    fresh = os.urandom(1000)
    assert output(cluster, "api-b", completed_retrieval[0]) == data
    assert upload(glacier(cluster, "api-a"), fresh, multipart=False)


def test_writes_keep_working_without_one_volume_server(cluster: Cluster) -> None:
    """Three volume servers, replication 001: with one down, the master still finds
    two live servers for a volume's two copies (and grows new volumes there)."""
    cluster.stop_part("volume2", grace=3)
    try:
        # A stalled write fails within the timeout instead of hanging the test.
        a, b = (glacier(cluster, node, read_timeout=30) for node in ("api-a", "api-b"))
        single, parts = os.urandom(1000), os.urandom(PART_SIZE + MIB + 7)
        written = {
            upload(a, single, multipart=False): single,
            upload(b, parts, multipart=True): parts,  # S3 multipart in the bucket too
        }
        for archive_id, data in written.items():
            assert retrieve(b, VAULT, archive_id) == data  # read back while it is still down
    finally:
        cluster.start_part("volume2")
    for archive_id, data in written.items():
        assert retrieve(glacier(cluster, "api-a"), VAULT, archive_id) == data


def test_s3_gateway_down_is_a_clean_service_unavailable_then_service_resumes(
    cluster: Cluster, completed_retrieval: tuple[str, bytes]
) -> None:
    job_id, data = completed_retrieval
    a = glacier(cluster, "api-a")
    cluster.stop_part("s3")
    try:
        for attempt in (
            lambda: a.upload_archive(vaultName=VAULT, body=os.urandom(1000)),
            lambda: output(cluster, "api-b", job_id),
        ):
            with pytest.raises(ClientError) as refused:
                attempt()
            answer = refused.value.response
            assert answer["Error"]["Code"] == "ServiceUnavailableException"
            assert answer["ResponseMetadata"]["HTTPStatusCode"] == 500  # Glacier's status for it
            assert "Traceback" not in answer["Error"]["Message"]
            assert "File " not in answer["Error"]["Message"]
        # Metadata-only requests do not need the blob store.
        assert a.describe_vault(vaultName=VAULT)["VaultName"] == VAULT
    finally:
        cluster.start_part("s3")
    # Nothing restarted on the OpenGlacier side: the nodes use the gateway again.
    assert output(cluster, "api-b", job_id) == data
    assert upload(a, os.urandom(1000), multipart=False)
