"""The retrieval flow through the AWS CLI (`aws glacier ...`) against a live server.

Spec 2.5-2.7, 2.26-2.29, 8.5: `initiate-job --job-parameters JSON`, `describe-job`,
`list-jobs`, `get-job-output ... OUTFILE` (body to the file, the rest printed),
ranged output, a CSV inventory and vault notifications. The CLI omits nulls.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from openglacier.treehash import MIB, tree_hash
from support.awscli import GlacierCli
from support.server import ACCESS_KEY, ACCOUNT_ID, REGION, SECRET_KEY, LiveServer

VAULT = "cli-jobs"
TOPIC = "arn:aws:sns:us-east-1:111122223333:cli-topic"


def run_jobs(server: LiveServer) -> None:
    resp = server.admin("POST", "/jobs/run")
    assert resp.status_code == 200, resp.text


@pytest.fixture(scope="module")
def aws(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> GlacierCli:
    home = tmp_path_factory.mktemp("cli-home")
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(home / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
        AWS_PAGER="",
        AWS_MAX_ATTEMPTS="1",
    )
    cli = GlacierCli(server, env, vault=VAULT)
    cli("create-vault")
    return cli


@pytest.fixture(scope="module")
def retrieval(aws: GlacierCli, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An archive uploaded with the CLI and a finished whole-archive job for it."""
    work = tmp_path_factory.mktemp("cli-jobs")
    data = os.urandom(3 * MIB + 999)
    (work / "archive.bin").write_bytes(data)
    up = aws(
        "upload-archive",
        "--archive-description",
        "cli archive",
        "--body",
        str(work / "archive.bin"),
    )
    params = {"Type": "archive-retrieval", "ArchiveId": up["archiveId"], "Description": "cli job"}
    job = aws("initiate-job", "--job-parameters", json.dumps(params))
    run_jobs(aws.server)
    return {"data": data, "archive_id": up["archiveId"], "job": job, "work": work}


def test_cli_initiate_and_describe_job(aws: GlacierCli, retrieval: dict[str, Any]) -> None:
    job_id = retrieval["job"]["jobId"]
    assert len(job_id) == 92
    assert retrieval["job"]["location"] == f"/{ACCOUNT_ID}/vaults/{VAULT}/jobs/{job_id}"
    data = retrieval["data"]
    job = aws("describe-job", "--job-id", job_id)
    assert job["JobId"] == job_id
    assert job["Action"] == "ArchiveRetrieval"
    assert job["ArchiveId"] == retrieval["archive_id"]
    assert job["JobDescription"] == "cli job"
    assert (job["StatusCode"], job["Completed"], job["StatusMessage"]) == (
        "Succeeded",
        True,
        "Succeeded",
    )
    assert job["SHA256TreeHash"] == job["ArchiveSHA256TreeHash"] == tree_hash(data)
    assert job["RetrievalByteRange"] == f"0-{len(data) - 1}"
    assert job["ArchiveSizeInBytes"] == len(data)
    assert job["VaultARN"] == f"arn:aws:glacier:{REGION}:{ACCOUNT_ID}:vaults/{VAULT}"
    assert "InventorySizeInBytes" not in job  # null, omitted by the CLI


def test_cli_list_jobs(aws: GlacierCli, retrieval: dict[str, Any]) -> None:
    job_id = retrieval["job"]["jobId"]
    listed = aws("list-jobs")
    assert job_id in [j["JobId"] for j in listed["JobList"]]
    done = aws("list-jobs", "--statuscode", "Succeeded", "--completed", "true")
    assert job_id in [j["JobId"] for j in done["JobList"]]
    assert all(j["StatusCode"] == "Succeeded" for j in done["JobList"])
    assert aws("list-jobs", "--statuscode", "Failed").get("JobList", []) == []
    stderr = aws.fails("list-jobs", "--statuscode", "Done")
    assert "InvalidParameterValueException" in stderr
    assert "The job status code is not valid: Done" in stderr


def test_cli_get_job_output(aws: GlacierCli, retrieval: dict[str, Any]) -> None:
    data, work = retrieval["data"], retrieval["work"]
    out = work / "whole.bin"
    printed = aws("get-job-output", "--job-id", retrieval["job"]["jobId"], str(out))
    assert out.read_bytes() == data
    assert printed["status"] == 200
    assert printed["checksum"] == tree_hash(data)
    assert printed["acceptRanges"] == "bytes"
    assert printed["contentType"] == "application/octet-stream"
    assert printed["archiveDescription"] == "cli archive"
    assert "contentRange" not in printed


def test_cli_ranged_get_job_output(aws: GlacierCli, retrieval: dict[str, Any]) -> None:
    data, work, job_id = retrieval["data"], retrieval["work"], retrieval["job"]["jobId"]
    out = work / "range.bin"
    printed = aws(
        "get-job-output", "--job-id", job_id, "--range", f"bytes={MIB}-{2 * MIB - 1}", str(out)
    )
    assert out.read_bytes() == data[MIB : 2 * MIB]
    assert printed["status"] == 206
    assert printed["contentRange"] == f"bytes {MIB}-{2 * MIB - 1}/{len(data)}"
    assert printed["checksum"] == tree_hash(data[MIB : 2 * MIB])
    # Not tree-hash aligned: the bytes, but no checksum (spec 3.6).
    printed = aws("get-job-output", "--job-id", job_id, "--range", "bytes=10-109", str(out))
    assert out.read_bytes() == data[10:110]
    assert printed["status"] == 206
    assert printed["contentRange"] == f"bytes 10-109/{len(data)}"
    assert "checksum" not in printed
    stderr = aws.fails("describe-job", "--job-id", "J" * 92)
    assert "ResourceNotFoundException" in stderr


def test_cli_csv_inventory(aws: GlacierCli, retrieval: dict[str, Any]) -> None:
    job = aws("initiate-job", "--job-parameters", '{"Type":"inventory-retrieval","Format":"CSV"}')
    run_jobs(aws.server)
    described = aws("describe-job", "--job-id", job["jobId"])
    assert described["Action"] == "InventoryRetrieval"
    assert described["StatusCode"] == "Succeeded"
    assert described["InventoryRetrievalParameters"] == {"Format": "CSV"}
    out = retrieval["work"] / "inventory.csv"
    printed = aws("get-job-output", "--job-id", job["jobId"], str(out))
    assert printed["status"] == 200
    assert printed["contentType"] == "text/csv"
    assert "checksum" not in printed
    lines = out.read_text().splitlines()
    assert described["InventorySizeInBytes"] == out.stat().st_size
    assert lines[0] == "ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash"
    rows = [line for line in lines[1:] if line.startswith(retrieval["archive_id"] + ",")]
    assert len(rows) == 1
    data = retrieval["data"]
    assert rows[0].endswith(f",{len(data)},{tree_hash(data)}")
    assert "cli archive" in rows[0]


def test_cli_vault_notifications(aws: GlacierCli) -> None:
    config = {"SNSTopic": TOPIC, "Events": ["ArchiveRetrievalCompleted"]}
    aws("set-vault-notifications", "--vault-notification-config", json.dumps(config))
    assert aws("get-vault-notifications") == {"vaultNotificationConfig": config}
    aws("delete-vault-notifications")
    assert "ResourceNotFoundException" in aws.fails("get-vault-notifications")


def test_cli_unknown_archive(aws: GlacierCli) -> None:
    params = {"Type": "archive-retrieval", "ArchiveId": "a" * 138}
    stderr = aws.fails("initiate-job", "--job-parameters", json.dumps(params))
    assert "ResourceNotFoundException" in stderr
    assert f"The archive ID was not found: {'a' * 138}" in stderr
