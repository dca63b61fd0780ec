"""The retrieval flow through boto3 (client and resource API) against a live server.

Spec 2.5-2.7, 2.26-2.29, 3.5-3.6, 4, 8.3-8.4. The module's `server` runs the
`instant` profile: jobs are due at once and `POST /_admin/jobs/run` returns when
every due job is done. `aws_server` runs the `aws` profile, where jobs stay in
progress until an admin hook completes or fails them. Nothing here sleeps.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.utils import calculate_tree_hash

from openglacier.treehash import MIB
from support.server import ACCOUNT_ID, REGION, LiveServer
from support.uploads import multipart_upload

SIZE = 6 * MIB + MIB // 2  # seven chunks, a short last one: spec 3.5's example archive
TOPIC = "arn:aws:sns:us-east-1:111122223333:boto3-vault-topic"
JOB_TOPIC = "arn:aws:sns:us-east-1:111122223333:boto3-job-topic"
NO_JOB = "J" * 92


def th(data: bytes) -> str:
    return str(calculate_tree_hash(io.BytesIO(data)))


def arn(vault: str) -> str:
    return f"arn:aws:glacier:{REGION}:{ACCOUNT_ID}:vaults/{vault}"


def error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def run_jobs(server: LiveServer) -> int:
    resp = server.admin("POST", "/jobs/run")
    assert resp.status_code == 200, resp.text
    return int(resp.json()["completed"])


def start(glacier: Any, vault: str, **params: Any) -> str:
    resp = glacier.initiate_job(vaultName=vault, jobParameters=params)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    job_id = str(resp["jobId"])
    assert resp["location"] == f"/{ACCOUNT_ID}/vaults/{vault}/jobs/{job_id}"
    return job_id


def output(glacier: Any, vault: str, job_id: str, **kwargs: Any) -> tuple[dict[str, Any], bytes]:
    resp = glacier.get_job_output(vaultName=vault, jobId=job_id, **kwargs)
    return resp, resp["body"].read()


def new_vault(glacier: Any, name: str) -> str:
    glacier.create_vault(vaultName=name)
    return name


@pytest.fixture(scope="module")
def aws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server on the `aws` profile: Standard jobs take hours, so they stay in progress."""
    live = LiveServer(
        tmp_path_factory.mktemp("aws-timing") / "data", extra_env={"OPENGLACIER_TIMING": "aws"}
    ).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def retrieved(server: LiveServer) -> dict[str, Any]:
    """A multipart-uploaded 6.5 MiB archive and a finished whole-archive job for it."""
    glacier = server.client()
    vault = new_vault(glacier, "ranged")
    data = os.urandom(SIZE)
    done = multipart_upload(glacier, vault, data, part_size=2 * MIB)
    job_id = start(glacier, vault, Type="archive-retrieval", ArchiveId=done["archiveId"])
    run_jobs(server)
    return {"vault": vault, "data": data, "archive_id": done["archiveId"], "job_id": job_id}


# --- archive retrieval, whole ------------------------------------------------------------


def test_single_upload_retrieval(server: LiveServer, glacier: Any, vault: str) -> None:
    body = os.urandom(3 * MIB + 17)
    up = glacier.upload_archive(vaultName=vault, archiveDescription="single", body=body)
    job_id = start(
        glacier,
        vault,
        Type="archive-retrieval",
        ArchiveId=up["archiveId"],
        Description="whole archive",
        Tier="Expedited",
    )
    assert len(job_id) == 92
    run_jobs(server)

    job = glacier.describe_job(vaultName=vault, jobId=job_id)
    assert job["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert job["JobId"] == job_id
    assert job["Action"] == "ArchiveRetrieval"
    assert job["ArchiveId"] == up["archiveId"]
    assert job["VaultARN"] == arn(vault)
    assert job["JobDescription"] == "whole archive"
    assert job["Tier"] == "Expedited"
    assert (job["Completed"], job["StatusCode"], job["StatusMessage"]) == (
        True,
        "Succeeded",
        "Succeeded",
    )
    assert job["CreationDate"] <= job["CompletionDate"]
    assert job["CompletionDate"].endswith("Z")
    assert job["ArchiveSizeInBytes"] == len(body)
    assert job["RetrievalByteRange"] == f"0-{len(body) - 1}"
    assert job["SHA256TreeHash"] == job["ArchiveSHA256TreeHash"] == th(body)
    for absent in ("InventorySizeInBytes", "InventoryRetrievalParameters", "SNSTopic"):
        assert absent not in job  # JSON null, dropped by botocore

    resp, got = output(glacier, vault, job_id)
    assert got == body
    assert resp["status"] == 200
    assert resp["checksum"] == th(body)
    assert resp["contentType"] == "application/octet-stream"
    assert resp["acceptRanges"] == "bytes"
    assert resp["archiveDescription"] == "single"
    assert "contentRange" not in resp
    # Output can be downloaded again (spec 2.29).
    assert output(glacier, vault, job_id)[1] == body


def test_multipart_upload_retrieval(retrieved: dict[str, Any], glacier: Any) -> None:
    data, vault = retrieved["data"], retrieved["vault"]
    job = glacier.describe_job(vaultName=vault, jobId=retrieved["job_id"])
    assert job["StatusCode"] == "Succeeded"
    assert job["ArchiveSizeInBytes"] == SIZE
    assert job["RetrievalByteRange"] == f"0-{SIZE - 1}"
    assert job["SHA256TreeHash"] == job["ArchiveSHA256TreeHash"] == th(data)
    assert job["Tier"] == "Standard"  # the default
    resp, got = output(glacier, vault, retrieved["job_id"])
    assert got == data
    assert resp["checksum"] == th(data)
    assert "archiveDescription" not in resp  # none was given


# --- ranged GetJobOutput (spec 2.29, 3.6) ------------------------------------------------

RANGES = [
    # (Range header, first, last, tree-hash aligned?)  S = 6.5 MiB, seven chunks
    (f"bytes={2 * MIB}-{4 * MIB - 1}", 2 * MIB, 4 * MIB - 1, True),
    (f"bytes={3 * MIB}-{4 * MIB - 1}", 3 * MIB, 4 * MIB - 1, True),
    (f"bytes={MIB}-{3 * MIB - 1}", MIB, 3 * MIB - 1, False),  # megabyte aligned only
    (f"bytes=0-{4 * MIB - 1}", 0, 4 * MIB - 1, True),
    (f"bytes={4 * MIB}-", 4 * MIB, SIZE - 1, True),  # open end: runs to the end
    (f"bytes={4 * MIB}-{8 * MIB - 1}", 4 * MIB, SIZE - 1, True),  # clamped, then aligned
    (f"bytes={6 * MIB}-{SIZE - 1}", 6 * MIB, SIZE - 1, True),  # the short last chunk
    (f"bytes={2 * MIB}-{SIZE - 1}", 2 * MIB, SIZE - 1, False),  # 5 chunks from an even start
    ("bytes=100-199", 100, 199, False),
    (f"bytes=0-{MIB}", 0, MIB, False),  # one byte past a chunk
]


@pytest.mark.parametrize("case", RANGES, ids=[r[0] for r in RANGES])
def test_ranged_job_output(
    retrieved: dict[str, Any], glacier: Any, case: tuple[str, int, int, bool]
) -> None:
    header, first, last, aligned = case
    data = retrieved["data"]
    resp, got = output(glacier, retrieved["vault"], retrieved["job_id"], range=header)
    assert resp["status"] == 206
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got == data[first : last + 1]
    assert resp["contentRange"] == f"bytes {first}-{last}/{SIZE}"
    assert resp["acceptRanges"] == "bytes"
    assert resp["ResponseMetadata"]["HTTPHeaders"]["content-length"] == str(last - first + 1)
    if aligned:
        assert resp["checksum"] == th(data[first : last + 1])
    else:
        assert "checksum" not in resp


def test_ranged_output_edge_cases(retrieved: dict[str, Any], glacier: Any) -> None:
    vault, job_id, data = retrieved["vault"], retrieved["job_id"], retrieved["data"]
    # A syntactically invalid Range (what some boto3 users send) is ignored: 200, all.
    resp, got = output(glacier, vault, job_id, range=f"bytes 0-{4 * MIB - 1}/{SIZE}")
    assert (resp["status"], got, resp["checksum"]) == (200, data, th(data))
    with pytest.raises(ClientError) as info:
        glacier.get_job_output(vaultName=vault, jobId=job_id, range=f"bytes={SIZE}-{SIZE + 10}")
    assert error(info) == (
        "InvalidParameterValueException",
        f"The start of the range is larger than size of retrieved data: bytes={SIZE}-{SIZE + 10}",
        400,
    )


# --- RetrievalByteRange (spec 4.4) -------------------------------------------------------


def test_aligned_retrieval_byte_range(
    server: LiveServer, retrieved: dict[str, Any], glacier: Any
) -> None:
    vault, data = retrieved["vault"], retrieved["data"]
    first, last = 2 * MIB, 4 * MIB - 1
    job_id = start(
        glacier,
        vault,
        Type="archive-retrieval",
        ArchiveId=retrieved["archive_id"],
        RetrievalByteRange=f"{first}-{last}",
    )
    run_jobs(server)
    job = glacier.describe_job(vaultName=vault, jobId=job_id)
    assert job["RetrievalByteRange"] == f"{first}-{last}"
    assert job["ArchiveSizeInBytes"] == SIZE  # the whole archive, not the range
    assert job["SHA256TreeHash"] == th(data[first : last + 1])
    assert job["ArchiveSHA256TreeHash"] == th(data)
    resp, got = output(glacier, vault, job_id)
    assert (resp["status"], got) == (200, data[first : last + 1])
    assert resp["checksum"] == th(data[first : last + 1])
    # Range header offsets are relative to the retrieved range.
    resp, got = output(glacier, vault, job_id, range=f"bytes={MIB}-{2 * MIB - 1}")
    assert got == data[first + MIB : first + 2 * MIB]
    assert resp["contentRange"] == f"bytes {MIB}-{2 * MIB - 1}/{2 * MIB}"
    assert resp["checksum"] == th(got)


def test_unaligned_retrieval_byte_range_has_no_checksums(
    server: LiveServer, retrieved: dict[str, Any], glacier: Any
) -> None:
    vault, data = retrieved["vault"], retrieved["data"]
    first, last = MIB, 3 * MIB - 1  # megabyte aligned, not tree-hash aligned
    job_id = start(
        glacier,
        vault,
        Type="archive-retrieval",
        ArchiveId=retrieved["archive_id"],
        RetrievalByteRange=f"{first}-{last}",
    )
    run_jobs(server)
    job = glacier.describe_job(vaultName=vault, jobId=job_id)
    assert "SHA256TreeHash" not in job
    assert job["ArchiveSHA256TreeHash"] == th(data)
    resp, got = output(glacier, vault, job_id)
    assert got == data[first : last + 1]
    assert "checksum" not in resp
    resp, got = output(glacier, vault, job_id, range=f"bytes=0-{MIB - 1}")
    assert got == data[first : first + MIB]
    assert "checksum" not in resp  # R itself is unaligned: never a checksum


@pytest.mark.parametrize("byte_range", ["1-1048576", "0-1048574", f"0-{SIZE}", "zero-one"])
def test_bad_retrieval_byte_range(retrieved: dict[str, Any], glacier: Any, byte_range: str) -> None:
    with pytest.raises(ClientError) as info:
        glacier.initiate_job(
            vaultName=retrieved["vault"],
            jobParameters={
                "Type": "archive-retrieval",
                "ArchiveId": retrieved["archive_id"],
                "RetrievalByteRange": byte_range,
            },
        )
    assert error(info)[0::2] == ("InvalidParameterValueException", 400)


# --- ListJobs (spec 2.28, 8.4) -------------------------------------------------------------


def test_list_jobs_paginator_over_fifty_jobs(server: LiveServer, glacier: Any, vault: str) -> None:
    archive_id = glacier.upload_archive(vaultName=vault, body=b"list me")["archiveId"]
    ids = {start(glacier, vault, Type="archive-retrieval", ArchiveId=archive_id) for _ in range(55)}
    run_jobs(server)
    paginator = glacier.get_paginator("list_jobs")

    pages = list(paginator.paginate(vaultName=vault))
    listed = [j["JobId"] for p in pages for j in p["JobList"]]
    assert len(listed) == len(set(listed)) == 55  # no repeats
    assert set(listed) == ids
    assert [len(p["JobList"]) for p in pages] == [50, 5]  # default limit 50
    assert "Marker" not in pages[-1]  # JSON null ends the listing

    small = list(paginator.paginate(vaultName=vault, PaginationConfig={"PageSize": 20}))
    assert [len(p["JobList"]) for p in small] == [20, 20, 15]
    assert [j["JobId"] for p in small for j in p["JobList"]] == listed  # one stable order

    first = glacier.list_jobs(vaultName=vault, limit="7")
    assert len(first["JobList"]) == 7
    second = glacier.list_jobs(vaultName=vault, limit="7", marker=first["Marker"])
    assert [j["JobId"] for j in first["JobList"] + second["JobList"]] == listed[:14]

    done = list(paginator.paginate(vaultName=vault, completed="true", statuscode="Succeeded"))
    assert {j["JobId"] for p in done for j in p["JobList"]} == ids
    assert all(j["Completed"] for p in done for j in p["JobList"])
    pending = glacier.list_jobs(vaultName=vault, completed="false")
    assert pending["JobList"] == []


def test_list_jobs_filters_and_resource_collections(aws_server: LiveServer) -> None:
    glacier = aws_server.client()
    vault = new_vault(glacier, "filters")
    archive_id = glacier.upload_archive(vaultName=vault, body=b"filter me")["archiveId"]
    succeeded, failed, pending = (
        start(glacier, vault, Type="archive-retrieval", ArchiveId=archive_id) for _ in range(3)
    )
    assert aws_server.admin("POST", f"/jobs/{succeeded}/complete").json() == {"completed": True}
    resp = aws_server.admin("POST", f"/jobs/{failed}/fail", {"message": "Simulated failure"})
    assert resp.json() == {"failed": True}
    assert run_jobs(aws_server) == 0  # a Standard job takes hours on the aws profile

    def listed(**filters: str) -> set[str]:
        pages = glacier.get_paginator("list_jobs").paginate(vaultName=vault, **filters)
        return {j["JobId"] for p in pages for j in p["JobList"]}

    assert listed() == {succeeded, failed, pending}
    assert listed(statuscode="InProgress") == {pending}
    assert listed(statuscode="Succeeded") == {succeeded}
    assert listed(statuscode="Failed") == {failed}
    assert listed(completed="true") == {succeeded, failed}
    assert listed(completed="false") == {pending}
    assert listed(completed="true", statuscode="Failed") == {failed}
    assert listed(completed="false", statuscode="Failed") == set()

    res = aws_server.resource().Vault(ACCOUNT_ID, vault)
    assert {j.id for j in res.jobs.all()} == {succeeded, failed, pending}
    assert {j.id for j in res.completed_jobs.all()} == {succeeded, failed}
    assert {j.id for j in res.succeeded_jobs.all()} == {succeeded}
    assert {j.id for j in res.failed_jobs.all()} == {failed}
    assert {j.id for j in res.jobs_in_progress.all()} == {pending}
    assert {j.status_code for j in res.jobs_in_progress.all()} == {"InProgress"}

    job = glacier.describe_job(vaultName=vault, jobId=failed)
    assert (job["StatusCode"], job["Completed"], job["StatusMessage"]) == (
        "Failed",
        True,
        "Simulated failure",
    )
    assert "CompletionDate" in job


def test_in_progress_job_on_aws_timing(aws_server: LiveServer) -> None:
    glacier = aws_server.client()
    vault = new_vault(glacier, "waiting")
    body = os.urandom(MIB + 5)
    archive_id = glacier.upload_archive(vaultName=vault, body=body)["archiveId"]
    job_id = start(glacier, vault, Type="archive-retrieval", ArchiveId=archive_id, Tier="Bulk")
    run_jobs(aws_server)
    job = glacier.describe_job(vaultName=vault, jobId=job_id)
    assert (job["StatusCode"], job["Completed"]) == ("InProgress", False)
    assert job["StatusMessage"] == "Operation in progress."
    assert "CompletionDate" not in job
    assert job["Tier"] == "Bulk"
    assert job["ArchiveSHA256TreeHash"] == th(body)

    # Spec 2.29: output of an unfinished job is not available yet.
    with pytest.raises(ClientError) as info:
        glacier.get_job_output(vaultName=vault, jobId=job_id)
    assert error(info) == (
        "InvalidParameterValueException",
        f"The job is not currently available for download: {job_id}",
        400,
    )
    resource_job = aws_server.resource().Job(ACCOUNT_ID, vault, job_id)
    assert resource_job.status_code == "InProgress"
    assert aws_server.admin("POST", f"/jobs/{job_id}/complete").json() == {"completed": True}
    resource_job.reload()
    assert (resource_job.status_code, resource_job.completed) == ("Succeeded", True)
    assert resource_job.get_output()["body"].read() == body


def test_failed_job_output_is_not_available(aws_server: LiveServer) -> None:
    glacier = aws_server.client()
    vault = new_vault(glacier, "failing")
    archive_id = glacier.upload_archive(vaultName=vault, body=b"x")["archiveId"]
    job_id = start(glacier, vault, Type="archive-retrieval", ArchiveId=archive_id)
    aws_server.admin("POST", f"/jobs/{job_id}/fail", {"message": "Broken"})
    with pytest.raises(ClientError) as info:
        glacier.get_job_output(vaultName=vault, jobId=job_id)
    assert error(info)[0::2] == ("InvalidParameterValueException", 400)


def test_inventory_job_needs_a_first_inventory(aws_server: LiveServer) -> None:
    # The aws profile takes inventories daily; before the vault's first one an
    # inventory job is refused (spec 2.26 / 9 #15 [R], as the project pins it).
    glacier = aws_server.client()
    vault = new_vault(glacier, "no-inventory-yet")
    glacier.upload_archive(vaultName=vault, body=b"not inventoried yet")
    with pytest.raises(ClientError) as info:
        glacier.initiate_job(vaultName=vault, jobParameters={"Type": "inventory-retrieval"})
    assert error(info) == (
        "ResourceNotFoundException",
        f"Inventory not yet generated for vault: {arn(vault)}",
        404,
    )
    forced = aws_server.admin("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": vault})
    assert forced.json()["NumberOfArchives"] == 1
    job_id = start(glacier, vault, Type="inventory-retrieval")
    job = glacier.describe_job(vaultName=vault, jobId=job_id)
    assert (job["StatusCode"], job["InventoryRetrievalParameters"]) == (
        "InProgress",
        {"Format": "JSON"},
    )
    assert "InventorySizeInBytes" not in job  # null until the job succeeds
    with pytest.raises(ClientError) as info:
        glacier.get_job_output(vaultName=vault, jobId=job_id)
    assert error(info)[0::2] == ("InvalidParameterValueException", 400)


# --- errors ---------------------------------------------------------------------------------


def test_job_errors(retrieved: dict[str, Any], glacier: Any, vault: str) -> None:
    own = retrieved["vault"]
    for call in (glacier.describe_job, glacier.get_job_output):
        with pytest.raises(ClientError) as info:
            call(vaultName=own, jobId=NO_JOB)
        assert error(info) == (
            "ResourceNotFoundException",
            f"The job ID was not found: {NO_JOB}",
            404,
        )
    # A real job ID of another vault is not found there either.
    with pytest.raises(ClientError) as info:
        glacier.describe_job(vaultName=vault, jobId=retrieved["job_id"])
    assert error(info)[0::2] == ("ResourceNotFoundException", 404)

    with pytest.raises(ClientError) as info:
        glacier.list_jobs(vaultName=own, statuscode="Done")
    assert error(info) == (
        "InvalidParameterValueException",
        "The job status code is not valid: Done",
        400,
    )
    with pytest.raises(ClientError) as info:
        glacier.list_jobs(vaultName=own, completed="maybe")
    assert error(info)[0::2] == ("InvalidParameterValueException", 400)

    missing = "a" * 138
    with pytest.raises(ClientError) as info:
        glacier.initiate_job(
            vaultName=own, jobParameters={"Type": "archive-retrieval", "ArchiveId": missing}
        )
    assert error(info) == (
        "ResourceNotFoundException",
        f"The archive ID was not found: {missing}",
        404,
    )
    with pytest.raises(ClientError) as info:
        glacier.initiate_job(
            vaultName=vault,
            jobParameters={"Type": "archive-retrieval", "ArchiveId": retrieved["archive_id"]},
        )
    assert error(info) == (
        "InvalidParameterValueException",
        f"Invalid vault name: {arn(vault)}",
        400,
    )
    with pytest.raises(ClientError) as info:
        glacier.describe_job(vaultName="no-such-vault", jobId=NO_JOB)
    assert error(info) == (
        "ResourceNotFoundException",
        f"Vault not found for ARN: {arn('no-such-vault')}",
        404,
    )


# --- inventory retrieval (spec 4.5, 4.6) -----------------------------------------------------


@pytest.fixture(scope="module")
def inventoried(server: LiveServer) -> dict[str, Any]:
    glacier = server.client()
    vault = new_vault(glacier, "inventory")
    archives = {}
    for description, body in (
        ("plain", b"first archive"),
        ('comma, and "quote"', os.urandom(1000)),
    ):
        up = glacier.upload_archive(vaultName=vault, archiveDescription=description, body=body)
        archives[up["archiveId"]] = (description, body)
    data = os.urandom(2 * MIB + 3)
    archives[multipart_upload(glacier, vault, data)["archiveId"]] = ("", data)
    return {"vault": vault, "archives": archives}


def test_inventory_retrieval_json(
    server: LiveServer, inventoried: dict[str, Any], glacier: Any
) -> None:
    vault, archives = inventoried["vault"], inventoried["archives"]
    job_id = start(glacier, vault, Type="inventory-retrieval", Description="inv")
    run_jobs(server)
    job = glacier.describe_job(vaultName=vault, jobId=job_id)
    assert (job["Action"], job["StatusCode"], job["Completed"]) == (
        "InventoryRetrieval",
        "Succeeded",
        True,
    )
    assert job["InventoryRetrievalParameters"] == {"Format": "JSON"}
    for absent in ("ArchiveId", "SHA256TreeHash", "ArchiveSHA256TreeHash", "RetrievalByteRange"):
        assert absent not in job

    resp, body = output(glacier, vault, job_id)
    assert resp["status"] == 200
    assert resp["contentType"] == "application/json"
    assert "checksum" not in resp  # never for inventories (spec 3.6)
    assert job["InventorySizeInBytes"] == len(body)
    doc = json.loads(body)
    assert doc["VaultARN"] == arn(vault)
    assert doc["InventoryDate"].endswith("Z")
    got = {a["ArchiveId"]: a for a in doc["ArchiveList"]}
    assert set(got) == set(archives)
    for archive_id, (description, data) in archives.items():
        assert got[archive_id]["ArchiveDescription"] == description
        assert got[archive_id]["Size"] == len(data)
        assert got[archive_id]["SHA256TreeHash"] == th(data)

    resp, head = output(glacier, vault, job_id, range="bytes=0-9")
    assert (resp["status"], head, resp["contentRange"]) == (
        206,
        body[:10],
        f"bytes 0-9/{len(body)}",
    )
    assert "checksum" not in resp


def test_inventory_retrieval_csv(
    server: LiveServer, inventoried: dict[str, Any], glacier: Any
) -> None:
    vault, archives = inventoried["vault"], inventoried["archives"]
    job_id = start(glacier, vault, Type="inventory-retrieval", Format="CSV")
    run_jobs(server)
    job = glacier.describe_job(vaultName=vault, jobId=job_id)
    assert job["InventoryRetrievalParameters"]["Format"] == "CSV"
    resp, body = output(glacier, vault, job_id)
    assert resp["contentType"] == "text/csv"
    assert "checksum" not in resp
    assert job["InventorySizeInBytes"] == len(body)
    lines = body.decode().splitlines()
    assert lines[0] == "ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash"
    rows = {line.split(",", 1)[0]: line for line in lines[1:]}
    assert set(rows) == set(archives)
    for archive_id, (_, data) in archives.items():
        assert rows[archive_id].endswith(f",{len(data)},{th(data)}")
    quoted = next(a for a, (d, _) in archives.items() if d.startswith("comma"))
    # Spec 4.6: quoted, with a backslash before each double quote.
    assert '"comma, and \\"quote\\""' in rows[quoted]


def test_csv_inventory_content_type_is_exactly_text_csv(
    server: LiveServer, inventoried: dict[str, Any], glacier: Any
) -> None:
    job_id = start(glacier, inventoried["vault"], Type="inventory-retrieval", Format="CSV")
    run_jobs(server)
    resp, _ = output(glacier, inventoried["vault"], job_id)
    assert resp["contentType"] == "text/csv"


# --- resource API (spec 8.4) ------------------------------------------------------------------


def test_resource_api_retrieval_flow(server: LiveServer) -> None:
    resource = server.resource()
    vault = resource.Account(ACCOUNT_ID).create_vault(vaultName="resources")
    data = os.urandom(MIB + MIB // 2)
    archive = vault.upload_archive(archiveDescription="via resource", body=data)
    job = archive.initiate_archive_retrieval()
    inventory = vault.initiate_inventory_retrieval()
    assert len(job.id) == len(inventory.id) == 92
    run_jobs(server)

    job.reload()
    assert (job.status_code, job.completed, job.action) == ("Succeeded", True, "ArchiveRetrieval")
    assert job.archive_id == archive.id
    assert job.archive_size_in_bytes == len(data)
    assert job.sha256_tree_hash == job.archive_sha256_tree_hash == th(data)
    assert job.retrieval_byte_range == f"0-{len(data) - 1}"
    out = job.get_output()
    assert out["body"].read() == data
    assert out["checksum"] == th(data)
    part = job.get_output(range=f"bytes={MIB}-")
    assert (part["status"], part["body"].read()) == (206, data[MIB:])
    assert part["checksum"] == th(data[MIB:])

    inventory.reload()
    assert (inventory.action, inventory.status_code) == ("InventoryRetrieval", "Succeeded")
    doc = json.loads(inventory.get_output()["body"].read())
    assert [a["ArchiveId"] for a in doc["ArchiveList"]] == [archive.id]

    assert {j.id for j in vault.jobs.all()} == {job.id, inventory.id}
    assert {j.id for j in vault.completed_jobs.all()} == {job.id, inventory.id}
    assert {j.id for j in vault.succeeded_jobs.all()} == {job.id, inventory.id}
    assert list(vault.jobs_in_progress.all()) == []
    assert list(vault.failed_jobs.all()) == []
    assert {j.status_code for j in vault.succeeded_jobs.all()} == {"Succeeded"}


# --- notifications (spec 2.5-2.7, 4.7) --------------------------------------------------------


def test_vault_notifications_client_and_resource(server: LiveServer, glacier: Any) -> None:
    vault = new_vault(glacier, "notify")
    with pytest.raises(ClientError) as info:
        glacier.get_vault_notifications(vaultName=vault)
    assert error(info)[0::2] == ("ResourceNotFoundException", 404)

    config = {"SNSTopic": TOPIC, "Events": ["ArchiveRetrievalCompleted"]}
    resp = glacier.set_vault_notifications(vaultName=vault, vaultNotificationConfig=config)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = glacier.get_vault_notifications(vaultName=vault)
    assert got["vaultNotificationConfig"] == config

    # A completed job notifies the job's topic and the vault's (spec 4.7).
    archive_id = glacier.upload_archive(vaultName=vault, body=b"tell me")["archiveId"]
    job_id = start(
        glacier, vault, Type="archive-retrieval", ArchiveId=archive_id, SNSTopic=JOB_TOPIC
    )
    run_jobs(server)
    described = glacier.describe_job(vaultName=vault, jobId=job_id)
    assert described["SNSTopic"] == JOB_TOPIC
    outbox = server.admin("GET", "/notifications?limit=100000").json()["notifications"]
    mine = [n for n in outbox if job_id in n["message"]]
    assert sorted(n["topic"] for n in mine) == [JOB_TOPIC, TOPIC]
    for n in mine:
        message = json.loads(n["message"])
        assert (message["JobId"], message["StatusCode"]) == (job_id, "Succeeded")
        assert message["SHA256TreeHash"] == described["SHA256TreeHash"]

    notification = server.resource().Notification(ACCOUNT_ID, vault)
    assert notification.sns_topic == TOPIC
    assert notification.events == ["ArchiveRetrievalCompleted"]
    events = ["ArchiveRetrievalCompleted", "InventoryRetrievalCompleted"]
    notification.set(vaultNotificationConfig={"SNSTopic": JOB_TOPIC, "Events": events})
    notification.reload()
    assert (notification.sns_topic, notification.events) == (JOB_TOPIC, events)
    notification.delete()
    with pytest.raises(ClientError) as info:
        glacier.get_vault_notifications(vaultName=vault)
    assert error(info)[0::2] == ("ResourceNotFoundException", 404)
    # Deleting what is not there is still 204 (spec 2.7 [R]).
    resp = glacier.delete_vault_notifications(vaultName=vault)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204

    with pytest.raises(ClientError) as info:
        glacier.set_vault_notifications(
            vaultName=vault, vaultNotificationConfig={"SNSTopic": TOPIC, "Events": ["Nope"]}
        )
    assert error(info)[0::2] == ("InvalidParameterValueException", 400)
