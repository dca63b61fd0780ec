"""GET /metrics and /health/* of a live server, driven by real boto3 traffic.

A scrape before and after a known set of requests: the counters move by
exactly what was sent (requests per operation and status, body bytes each
way, latency observations), under one process and under `--processes 2`
(where a scrape of either process sums both). The gauges maintenance refreshes
(stored archives and bytes, open uploads, jobs) match the store after a pass.
Readiness turns 503 naming the blob store when it stops answering.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from openglacier.treehash import MIB
from support.seaweed import ACCESS_KEY as S3_KEY
from support.seaweed import REGION as S3_REGION
from support.seaweed import SECRET_KEY as S3_SECRET
from support.seaweed import Seaweed
from support.server import ACCOUNT_ID, LiveServer, free_port
from support.stall import StallingProxy
from support.uploads import multipart_upload
from support.workers import poll

pytestmark = pytest.mark.functional

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
ARCHIVE = bytes(range(256)) * 12  # 3072 bytes
PARTS = 2 * MIB


def scrape(url: str) -> Samples:
    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def traffic(server: LiveServer, vault: str) -> None:
    """One of each: create, upload, multipart, job + output, and a 404."""
    glacier = server.client()
    glacier.create_vault(vaultName=vault)
    archive_id = glacier.upload_archive(vaultName=vault, body=ARCHIVE)["archiveId"]
    multipart_upload(glacier, vault, bytes(PARTS), part_size=MIB)
    job = glacier.initiate_job(
        vaultName=vault, jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id}
    )
    assert server.admin("POST", "/jobs/run").status_code == 200
    out = glacier.get_job_output(vaultName=vault, jobId=job["jobId"])
    assert out["body"].read() == ARCHIVE
    with pytest.raises(ClientError) as info:
        glacier.describe_vault(vaultName=vault + "-missing")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


EXPECTED_REQUESTS = {
    ("CreateVault", "201"): 1,
    ("UploadArchive", "201"): 1,
    ("InitiateMultipartUpload", "201"): 1,
    ("UploadMultipartPart", "204"): 2,
    ("CompleteMultipartUpload", "201"): 1,
    ("InitiateJob", "202"): 1,
    ("GetJobOutput", "200"): 1,
    ("DescribeVault", "404"): 1,
    ("_admin", "200"): 1,
}


def check_traffic_counted(before: Samples, after: Samples) -> None:
    for (operation, status), count in EXPECTED_REQUESTS.items():
        moved = delta(
            before, after, "openglacier_requests_total", operation=operation, status=status
        )
        assert moved == count, (operation, status, moved)
        observed = delta(
            before, after, "openglacier_request_duration_seconds_count", operation=operation
        )
        assert observed == sum(n for (op, _), n in EXPECTED_REQUESTS.items() if op == operation)
    total = sum(
        v - before.get(k, 0.0) for k, v in after.items() if k[0] == "openglacier_requests_total"
    )
    assert total == sum(EXPECTED_REQUESTS.values())  # nothing else counted (scrapes are not)
    received = "openglacier_received_bytes_total"
    assert delta(before, after, received, operation="UploadArchive") == len(ARCHIVE)
    assert delta(before, after, received, operation="UploadMultipartPart") == PARTS
    sent = "openglacier_sent_bytes_total"
    assert delta(before, after, sent, operation="GetJobOutput") == len(ARCHIVE)
    puts = delta(before, after, "openglacier_blob_operations_total", store="file", op="put")
    assert puts >= 3  # the archive, two parts (and the job's output, if stored)
    assert delta(before, after, "openglacier_blob_errors_total", store="file", op="put") == 0


def check_gauges(server: LiveServer, metrics_url: str) -> None:
    """After a maintenance pass the stored and upload gauges match the store."""
    glacier = server.client()
    vault = "gauges-" + uuid.uuid4().hex[:8]
    glacier.create_vault(vaultName=vault)
    glacier.upload_archive(vaultName=vault, body=ARCHIVE)
    open_upload = glacier.initiate_multipart_upload(vaultName=vault, partSize=str(MIB))
    assert server.admin("POST", "/maintenance").status_code == 200
    samples = scrape(metrics_url)
    assert value(samples, "openglacier_multipart_uploads_in_progress") == 1
    archives = value(samples, "openglacier_stored_archives", account=ACCOUNT_ID)
    stored = value(samples, "openglacier_stored_bytes", account=ACCOUNT_ID)
    listed = glacier.list_vaults()["VaultList"]
    assert archives == 2 * (len(listed) - 1) + 1  # 2 per traffic vault, 1 here
    assert stored == (len(listed) - 1) * (len(ARCHIVE) + PARTS) + len(ARCHIVE)
    succeeded = value(
        samples, "openglacier_jobs", type="ArchiveRetrieval", tier="Standard", state="Succeeded"
    )
    assert succeeded == len(listed) - 1
    assert value(samples, "openglacier_stats_refreshed_timestamp_seconds") > 0
    glacier.abort_multipart_upload(vaultName=vault, uploadId=open_upload["uploadId"])
    assert server.admin("POST", "/scrub").status_code == 200  # a finished pass, persisted
    assert server.admin("POST", "/maintenance").status_code == 200
    samples = scrape(metrics_url)
    assert value(samples, "openglacier_multipart_uploads_in_progress") == 0
    assert value(samples, "openglacier_scrub_last_pass_finished_timestamp_seconds") > 0


def check_scrapes_sum_processes(server: LiveServer, url: str) -> None:
    """20 connections of their own spread over both processes (SO_REUSEPORT;
    all on one: odds 2^-19); every scrape, whichever process answers it,
    counts all 20."""
    before = scrape(url)
    for _ in range(20):
        assert httpx.get(server.endpoint + "/-/vaults").status_code in (400, 403)
    name = "openglacier_requests_total"
    for _ in range(6):
        after = scrape(url)
        moved = sum(
            delta(before, after, name, operation="ListVaults", status=status)
            for status in ("400", "403")
        )
        assert moved == 20


@pytest.mark.parametrize("processes", [1, 2])
def test_metrics_count_boto3_traffic(tmp_path: Path, processes: int) -> None:
    server = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_PROCESSES": str(processes)})
    server.start()
    try:
        url = server.endpoint + "/metrics"
        before = scrape(url)
        traffic(server, "metrics-a")
        check_traffic_counted(before, scrape(url))
        # Again: counts keep adding up, whichever process answers the scrape.
        before = scrape(url)
        traffic(server, "metrics-b")
        check_traffic_counted(before, scrape(url))
        check_gauges(server, url)
        if processes > 1:
            check_scrapes_sum_processes(server, url)
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_metrics_dir_of_processes_is_removed(tmp_path: Path) -> None:
    """The supervisor's multiprocess directory lives as long as it does."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    server = LiveServer(
        tmp_path / "data", extra_env={"OPENGLACIER_PROCESSES": "2", "TMPDIR": str(tmp)}
    ).start()
    try:
        scrape(server.endpoint + "/metrics")
        dirs = [p for p in tmp.iterdir() if p.name.startswith("openglacier-metrics-")]
        assert len(dirs) == 1
        assert any(dirs[0].glob("*.db"))
    finally:
        server.stop()
    assert not any(tmp.iterdir())


def test_health_and_metrics_need_no_auth_while_glacier_paths_do(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data").start()
    try:
        live = httpx.get(server.endpoint + "/health/live")
        assert (live.status_code, live.json()) == (200, {"status": "live"})
        ready = httpx.get(server.endpoint + "/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"metadata": "ok", "migrations": "ok", "blob_store": "ok"},
        }
        assert httpx.get(server.endpoint + "/_admin/health").status_code == 200
        assert httpx.post(server.endpoint + "/health/live").status_code == 405
        assert "openglacier_requests_total" in httpx.get(server.endpoint + "/metrics").text
        for path in ("/-/vaults", f"/{ACCOUNT_ID}/vaults/metrics", "/metrics/", "/health"):
            resp = httpx.get(server.endpoint + path)
            assert resp.status_code in (400, 403), (path, resp.status_code)
            assert resp.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationToken")
        assert httpx.get(server.endpoint + "/_admin/scrub").status_code == 401
    finally:
        server.stop()


@pytest.mark.parametrize("processes", [1, 2])
def test_metrics_port(tmp_path: Path, processes: int) -> None:
    """--metrics-port: /metrics there (served by the supervisor under --processes,
    merging its processes), and the API port's /metrics is a Glacier path."""
    port = free_port()
    env = {"OPENGLACIER_METRICS_PORT": str(port), "OPENGLACIER_PROCESSES": str(processes)}
    server = LiveServer(tmp_path / "data", extra_env=env)
    server.start()
    try:
        with pytest.raises(ClientError):
            server.client().describe_vault(vaultName="none")
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
        moved = value(
            samples, "openglacier_requests_total", operation="DescribeVault", status="404"
        )
        assert moved == 1
        api = httpx.get(server.endpoint + "/metrics")
        assert api.status_code != 200
        assert "x-amzn-ErrorType" in api.headers
        assert httpx.get(server.endpoint + "/health/ready").status_code == 200
    finally:
        server.stop()


def test_metrics_port_taken_is_one_line(tmp_path: Path) -> None:
    with socket_on_free_port() as port:
        server = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_METRICS_PORT": str(port)})
        with pytest.raises(RuntimeError, match="exited early"):
            server.start()
    log = server.log()
    assert f"cannot serve metrics on 127.0.0.1:{port}" in log
    assert "Traceback" not in log


def socket_on_free_port() -> Any:
    import contextlib
    import socket

    @contextlib.contextmanager
    def held() -> Iterator[int]:
        with socket.create_server(("127.0.0.1", 0)) as sock:
            yield int(sock.getsockname()[1])

    return held()


@pytest.fixture
def stalling_s3_server(
    tmp_path: Path, seaweed_store: Seaweed
) -> Iterator[tuple[LiveServer, StallingProxy]]:
    prefix = f"health/{uuid.uuid4().hex}"
    with StallingProxy(("127.0.0.1", seaweed_store.s3_port)) as proxy:
        server = LiveServer(
            tmp_path / "data",
            extra_env={
                "OPENGLACIER_BLOB_URL": f"s3+http://127.0.0.1:{proxy.port}/blob-contract/{prefix}",
                "OPENGLACIER_BLOB_ACCESS_KEY_ID": S3_KEY,
                "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": S3_SECRET,
                "OPENGLACIER_BLOB_REGION": S3_REGION,
            },
        )
        seaweed_store.ensure_bucket("blob-contract")
        server.start()
        try:
            yield server, proxy
        finally:
            proxy.resume()
            server.stop()
            seaweed_store.empty("blob-contract", prefix)


def test_ready_is_503_while_the_blob_store_does_not_answer(
    stalling_s3_server: tuple[LiveServer, StallingProxy],
) -> None:
    server, proxy = stalling_s3_server
    url = server.endpoint + "/health/ready"
    assert httpx.get(url, timeout=30).status_code == 200
    proxy.stall()
    resp = httpx.get(url, timeout=30)
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unready"
    assert body["failed"] == ["blob_store"]
    assert body["checks"]["metadata"] == "ok"
    assert httpx.get(server.endpoint + "/health/live").status_code == 200  # still alive
    proxy.resume()
    assert httpx.get(url, timeout=30).status_code == 200


def test_worker_serves_its_metrics_on_its_port(tmp_path: Path) -> None:
    """A worker has no API: with --metrics-port it serves /metrics there, and the
    jobs it runs show in its blob store counters, not the API node's."""
    data = tmp_path / "data"
    server = LiveServer(data, extra_env={"OPENGLACIER_JOB_WORKERS": "0"}).start()
    port = free_port()
    env = {**server.env(), "OPENGLACIER_METRICS_PORT": str(port), "OPENGLACIER_JOB_WORKERS": "1"}
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "openglacier", "worker"], env=env, stdout=log, stderr=log
        )
    try:
        glacier = server.client()
        glacier.create_vault(vaultName="by-worker")
        archive_id = glacier.upload_archive(vaultName="by-worker", body=ARCHIVE)["archiveId"]
        job = glacier.initiate_job(
            vaultName="by-worker",
            jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id},
        )

        def done() -> bool:
            described = glacier.describe_job(vaultName="by-worker", jobId=job["jobId"])
            return bool(described["Completed"])

        poll(done, "the worker to complete the job")
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
        assert value(samples, "openglacier_blob_operations_total", store="file", op="get") >= 1
        assert not value(
            samples, "openglacier_requests_total", operation="InitiateJob", status="202"
        )
        api = scrape(server.endpoint + "/metrics")
        assert value(api, "openglacier_requests_total", operation="InitiateJob", status="202") == 1
    finally:
        worker.terminate()
        worker.wait(15)
        server.stop()
    assert "Traceback" not in log_path.read_text()
