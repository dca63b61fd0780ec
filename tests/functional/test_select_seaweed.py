"""Glacier Select end to end: boto3 -> live server -> SeaweedFS (spec 7)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from support.seaweed import ACCESS_KEY, SECRET_KEY, Seaweed
from support.server import LiveServer

DATA = b"region,amount\nnorth,10\nsouth,25\nnorth,7\n"


@pytest.fixture(scope="module")
def store(seaweed_store: Seaweed) -> Seaweed:
    """The session's SeaweedFS (tests/conftest.py), with this module's bucket
    (test_s3_postgres_flows.py reruns these tests on the same bucket)."""
    seaweed_store.ensure_bucket("select-out")
    return seaweed_store


@pytest.fixture(scope="module")
def select_server(tmp_path_factory: pytest.TempPathFactory, store: Seaweed) -> Iterator[LiveServer]:
    env = {
        "OPENGLACIER_SELECT_OUTPUT_URL": store.output_url,
        "OPENGLACIER_SELECT_OUTPUT_ACCESS_KEY_ID": ACCESS_KEY,
        "OPENGLACIER_SELECT_OUTPUT_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    live = LiveServer(tmp_path_factory.mktemp("sel") / "data", extra_env=env).start()
    yield live
    live.stop()


def test_select_job_writes_results_to_s3(select_server: LiveServer, store: Seaweed) -> None:
    glacier = select_server.client()
    glacier.create_vault(vaultName="csv")
    archive_id = glacier.upload_archive(vaultName="csv", body=DATA)["archiveId"]
    parameters = {
        "ExpressionType": "SQL",
        "Expression": "SELECT amount FROM archive WHERE region = 'north'",
        "InputSerialization": {"csv": {"FileHeaderInfo": "USE"}},
        "OutputSerialization": {"csv": {"QuoteFields": "ASNEEDED"}},
    }
    location = {"S3": {"BucketName": "select-out", "Prefix": "q1"}}
    started = glacier.initiate_job(
        vaultName="csv",
        jobParameters={
            "Type": "select",
            "ArchiveId": archive_id,
            "Tier": "Expedited",
            "SelectParameters": parameters,
            "OutputLocation": location,
        },
    )
    job_id = started["jobId"]
    assert started["jobOutputPath"] == f"q1/{job_id}/"
    # Completes every due job before answering (the background runner may beat it).
    assert select_server.admin("POST", "/jobs/run").status_code == 200

    job = glacier.describe_job(vaultName="csv", jobId=job_id)
    assert job["Action"] == "Select"
    assert job["StatusCode"] == "Succeeded"
    assert job["JobOutputPath"] == f"q1/{job_id}/"
    assert job["SelectParameters"] == parameters
    assert job["OutputLocation"] == location
    assert job["Tier"] == "Expedited"
    assert "ArchiveSizeInBytes" not in job  # null for select jobs (spec 2.0)

    objects = store.objects("select-out", f"q1/{job_id}/")
    assert objects[f"q1/{job_id}/results/00000001.csv"] == b"10\n7\n"
    assert (
        objects[f"q1/{job_id}/result_manifest.txt"] == f"q1/{job_id}/results/00000001.csv".encode()
    )
    assert f"q1/{job_id}/error_manifest.txt" not in objects
    assert b'"Action": "Select"' in objects[f"q1/{job_id}/job.txt"]

    with pytest.raises(ClientError) as info:
        glacier.get_job_output(vaultName="csv", jobId=job_id)
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_select_into_a_missing_bucket_fails_the_job(select_server: LiveServer) -> None:
    glacier = select_server.client()
    glacier.create_vault(vaultName="csv2")
    archive_id = glacier.upload_archive(vaultName="csv2", body=DATA)["archiveId"]
    job_id = glacier.initiate_job(
        vaultName="csv2",
        jobParameters={
            "Type": "select",
            "ArchiveId": archive_id,
            "SelectParameters": {"ExpressionType": "SQL", "Expression": "SELECT * FROM archive"},
            "OutputLocation": {"S3": {"BucketName": "no-such-bucket", "Prefix": "p"}},
        },
    )["jobId"]
    select_server.admin("POST", "/jobs/run")
    job = glacier.describe_job(vaultName="csv2", jobId=job_id)
    assert job["StatusCode"] == "Failed"
    assert "no-such-bucket" in job["StatusMessage"]


def test_bad_sql_is_rejected_at_initiation(select_server: LiveServer) -> None:
    glacier = select_server.client()
    glacier.create_vault(vaultName="csv3")
    archive_id = glacier.upload_archive(vaultName="csv3", body=DATA)["archiveId"]
    with pytest.raises(ClientError) as info:
        glacier.initiate_job(
            vaultName="csv3",
            jobParameters={
                "Type": "select",
                "ArchiveId": archive_id,
                "SelectParameters": {
                    "ExpressionType": "SQL",
                    "Expression": "SELECT COUNT(*) FROM archive",
                },
                "OutputLocation": {"S3": {"BucketName": "select-out", "Prefix": "p"}},
            },
        )
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert glacier.list_jobs(vaultName="csv3")["JobList"] == []
