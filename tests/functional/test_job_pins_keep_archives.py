"""A job's pins on an archive's blobs are released (a select job when it ends, a
retrieval job when it expires); the archive itself still names those blobs, so
blob collection must leave them alone. It used to delete them: the next
maintenance pass destroyed a live archive's bytes (found by
test_s3_postgres_flows.py's bucket check after the select flow)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.seaweed import ACCESS_KEY, SECRET_KEY, Seaweed
from support.server import LiveServer

pytestmark = pytest.mark.functional

CSV = b"region,amount\nnorth,10\nsouth,25\n"


@pytest.fixture
def live(tmp_path: Path, seaweed_store: Seaweed) -> Iterator[LiveServer]:
    env = {
        "OPENGLACIER_CLOCK": "manual",
        "OPENGLACIER_SELECT_OUTPUT_URL": seaweed_store.output_url,
        "OPENGLACIER_SELECT_OUTPUT_ACCESS_KEY_ID": ACCESS_KEY,
        "OPENGLACIER_SELECT_OUTPUT_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    server = LiveServer(tmp_path / "data", extra_env=env).start()
    yield server
    server.stop()


def admin(server: LiveServer, path: str, body: Any = None) -> Any:
    resp = server.admin("POST", path, body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def finished_job(server: LiveServer, params: dict[str, Any]) -> tuple[str, bytes]:
    """An archive, and a job on it run to Succeeded."""
    glacier = server.client()
    glacier.create_vault(vaultName="pins")
    archive_id = glacier.upload_archive(vaultName="pins", body=CSV)["archiveId"]
    job_id = glacier.initiate_job(
        vaultName="pins", jobParameters={**params, "ArchiveId": archive_id}
    )["jobId"]
    admin(server, "/jobs/run")
    assert glacier.describe_job(vaultName="pins", jobId=job_id)["StatusCode"] == "Succeeded"
    return archive_id, CSV


def assert_archive_whole(server: LiveServer, archive_id: str, data: bytes) -> None:
    assert admin(server, "/audit") == {"checked": 1, "problems": []}
    glacier = server.client()
    params = {"Type": "archive-retrieval", "ArchiveId": archive_id}
    job_id = glacier.initiate_job(vaultName="pins", jobParameters=params)["jobId"]
    admin(server, "/jobs/run")
    assert glacier.get_job_output(vaultName="pins", jobId=job_id)["body"].read() == data


def test_an_expired_retrieval_job_leaves_its_archive_whole(live: LiveServer) -> None:
    archive_id, data = finished_job(live, {"Type": "archive-retrieval"})
    admin(live, "/clock/advance", {"seconds": 2 * 86400})  # past job retention
    report = admin(live, "/maintenance")
    assert report["jobs_expired"] == 1
    assert report["blobs_deleted"] == 0
    assert_archive_whole(live, archive_id, data)


def test_a_finished_select_job_leaves_its_archive_whole(live: LiveServer) -> None:
    select = {
        "Type": "select",
        "SelectParameters": {"ExpressionType": "SQL", "Expression": "SELECT * FROM archive"},
        "OutputLocation": {"S3": {"BucketName": "results", "Prefix": "pins"}},
    }
    archive_id, data = finished_job(live, select)
    assert admin(live, "/maintenance")["blobs_deleted"] == 0
    assert_archive_whole(live, archive_id, data)
