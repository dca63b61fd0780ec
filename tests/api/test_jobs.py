"""Jobs through the in-process API (spec 2.26-2.29, 4): validation with exact errors,
the lifecycle on a manual clock, output, expiry, and pinning against DeleteArchive."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from openglacier.domain.jobs.reads import FIRST_WINDOW, READ_WINDOW
from openglacier.server import Runtime
from openglacier.storage.blobs.format import HEADER_LEN
from openglacier.storage.metadata.store import SqlMetadataStore
from openglacier.treehash import MIB, tree_hash
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, Api
from support.jobs import (
    advance,
    describe,
    force_inventory,
    initiate,
    output,
    run_jobs,
    start_job,
    upload,
)
from support.signing import Signer

V = "v"
ARN = f"arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/{V}"
HOUR = 3600

DESCRIPTION_KEYS = {
    "JobId",
    "JobDescription",
    "Action",
    "ArchiveId",
    "VaultARN",
    "CreationDate",
    "Completed",
    "StatusCode",
    "StatusMessage",
    "ArchiveSizeInBytes",
    "InventorySizeInBytes",
    "SNSTopic",
    "CompletionDate",
    "SHA256TreeHash",
    "ArchiveSHA256TreeHash",
    "RetrievalByteRange",
    "Tier",
    "InventoryRetrievalParameters",
    "JobOutputPath",
    "SelectParameters",
    "OutputLocation",
}


@pytest.fixture
def timing() -> str:
    return "aws"  # nothing completes until the test moves the manual clock


@pytest.fixture(autouse=True)
def vault(api: Api) -> None:
    assert api("PUT", f"/-/vaults/{V}").status_code == 201


def job_count(api: Api) -> int:
    resp = api("GET", f"/-/vaults/{V}/jobs")
    assert resp.status_code == 200
    return len(resp.json()["JobList"])


# --- InitiateJob validation -------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "code", "message"),
    [
        ({}, 400, "MissingParameterValueException", "Required parameter missing: Type"),
        ({"Type": "restore"}, 400, "InvalidParameterValueException", None),
        (
            {"Type": "archive-retrieval"},
            400,
            "MissingParameterValueException",
            "Required parameter missing: ArchiveId",
        ),
        ({"Type": "select"}, 400, "MissingParameterValueException", None),
        (
            {"Type": "inventory-retrieval", "ArchiveId": "x"},
            400,
            "InvalidParameterValueException",
            None,
        ),
        (
            {"Type": "inventory-retrieval", "RetrievalByteRange": "0-1048575"},
            400,
            "InvalidParameterValueException",
            None,
        ),
        ({"Type": 7}, 400, "SerializationException", None),
        (
            {"Type": "archive-retrieval", "ArchiveId": "a" * 138},
            404,
            "ResourceNotFoundException",
            f"The archive ID was not found: {'a' * 138}",
        ),
        (
            {"Type": "inventory-retrieval"},
            404,
            "ResourceNotFoundException",
            f"Inventory not yet generated for vault: {ARN}",
        ),
        (
            {"Type": "inventory-retrieval", "Format": "XML"},
            400,
            "InvalidParameterValueException",
            None,
        ),
        (
            {"Type": "inventory-retrieval", "Description": "x" * 1025},
            400,
            "InvalidParameterValueException",
            None,
        ),
    ],
)
def test_initiate_rejections(
    api: Api, params: dict[str, object], status: int, code: str, message: str | None
) -> None:
    assert_error(initiate(api, V, params), status, code, message)
    assert job_count(api) == 0


def test_initiate_archive_rejections(api: Api) -> None:
    body = os.urandom(3 * MIB + 100)
    archive_id = upload(api, V, body)
    for params in (
        {"Tier": "Slow"},
        {"RetrievalByteRange": "1-1048576"},  # not megabyte aligned
        {"RetrievalByteRange": "0-1048574"},
        {"RetrievalByteRange": f"0-{len(body)}"},  # past the end
        {"RetrievalByteRange": "1048576-0"},
        {"RetrievalByteRange": "zero-one"},
        {"Description": "tab\tnot allowed"},
    ):
        resp = initiate(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id, **params})
        assert_error(resp, 400, "InvalidParameterValueException")
    assert api("PUT", "/-/vaults/other").status_code == 201
    resp = initiate(api, "other", {"Type": "archive-retrieval", "ArchiveId": archive_id})
    other_arn = f"arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/other"
    assert_error(resp, 400, "InvalidParameterValueException", f"Invalid vault name: {other_arn}")
    assert api("DELETE", f"/-/vaults/{V}/archives/{archive_id}").status_code == 204
    resp = initiate(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    assert_error(
        resp, 404, "ResourceNotFoundException", f"The archive ID was not found: {archive_id}"
    )
    assert job_count(api) == 0


def test_initiate_on_missing_vault(api: Api) -> None:
    resp = initiate(api, "nope", {"Type": "inventory-retrieval"})
    arn = f"arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/nope"
    assert_error(resp, 404, "ResourceNotFoundException", f"Vault not found for ARN: {arn}")


def test_malformed_json_body(api: Api) -> None:
    resp = api("POST", f"/-/vaults/{V}/jobs", body=b"{not json")
    assert_error(resp, 400, "SerializationException")


def test_wrapped_body_and_null_members_are_accepted(api: Api) -> None:
    archive_id = upload(api, V, b"hello")
    wrapped = {
        "jobParameters": {
            "Type": "archive-retrieval",
            "ArchiveId": archive_id,
            "Description": None,
            "RetrievalByteRange": None,
            "SNSTopic": None,
        }
    }
    job_id = start_job(api, V, wrapped)
    job = describe(api, V, job_id)
    assert job["Action"] == "ArchiveRetrieval"
    assert job["RetrievalByteRange"] == "0-4"
    assert job["Tier"] == "Standard"


# --- lifecycle ----------------------------------------------------------------------


def test_archive_job_lifecycle(api: Api) -> None:
    body = os.urandom(2 * MIB + 12345)
    archive_id = upload(api, V, body, "my backup")
    resp = initiate(
        api,
        V,
        {"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": "Bulk", "Description": "d"},
    )
    assert resp.status_code == 202
    job_id = resp.headers["x-amz-job-id"]
    assert resp.headers["location"] == f"/{ACCOUNT_ID}/vaults/{V}/jobs/{job_id}"
    assert resp.headers["content-length"] == "0"
    assert "x-amz-job-output-path" not in resp.headers

    job = describe(api, V, job_id)
    assert set(job) == DESCRIPTION_KEYS
    assert job["StatusCode"] == "InProgress"
    assert job["Completed"] is False
    assert job["StatusMessage"] == "Operation in progress."
    assert job["CompletionDate"] is None
    assert job["ArchiveSizeInBytes"] == len(body)
    assert job["SHA256TreeHash"] == job["ArchiveSHA256TreeHash"] == tree_hash(body)
    assert job["RetrievalByteRange"] == f"0-{len(body) - 1}"
    assert job["Tier"] == "Bulk"
    assert job["JobDescription"] == "d"
    assert job["InventorySizeInBytes"] is None
    assert job["InventoryRetrievalParameters"] is None
    assert job["VaultARN"] == ARN

    assert_error(
        output(api, V, job_id),
        400,
        "InvalidParameterValueException",
        f"The job is not currently available for download: {job_id}",
    )
    advance(api, 8 * HOUR - 1)  # Bulk takes 8 h on the aws profile
    assert run_jobs(api) == 0
    assert describe(api, V, job_id)["StatusCode"] == "InProgress"
    advance(api, 1)
    assert run_jobs(api) == 1
    job = describe(api, V, job_id)
    assert job["StatusCode"] == "Succeeded"
    assert job["Completed"] is True
    assert job["StatusMessage"] == "Succeeded"
    assert job["CompletionDate"] is not None

    resp = output(api, V, job_id)
    assert resp.status_code == 200
    assert resp.content == body
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.headers["x-amz-sha256-tree-hash"] == tree_hash(body)
    assert resp.headers["x-amz-archive-description"] == "my backup"
    assert "content-range" not in resp.headers

    resp = output(api, V, job_id, f"bytes={MIB}-{2 * MIB - 1}")
    assert resp.status_code == 206
    assert resp.content == body[MIB : 2 * MIB]
    assert resp.headers["content-range"] == f"bytes {MIB}-{2 * MIB - 1}/{len(body)}"
    assert resp.headers["x-amz-sha256-tree-hash"] == tree_hash(body[MIB : 2 * MIB])

    resp = output(api, V, job_id, "bytes=100-199")  # not tree-hash aligned: no checksum
    assert resp.status_code == 206
    assert resp.content == body[100:200]
    assert "x-amz-sha256-tree-hash" not in resp.headers

    resp = output(api, V, job_id, f"bytes={len(body)}-")
    assert_error(resp, 400, "InvalidParameterValueException")


def test_ranged_retrieval_job(api: Api) -> None:
    body = os.urandom(6 * MIB + MIB // 2)
    archive_id = upload(api, V, body)
    job_id = start_job(
        api,
        V,
        {
            "Type": "archive-retrieval",
            "ArchiveId": archive_id,
            "RetrievalByteRange": f"{2 * MIB}-{4 * MIB - 1}",
            "Tier": "Expedited",
        },
    )
    advance(api, 60)
    assert run_jobs(api) == 1
    job = describe(api, V, job_id)
    assert job["RetrievalByteRange"] == f"{2 * MIB}-{4 * MIB - 1}"
    assert job["ArchiveSizeInBytes"] == len(body)
    assert job["SHA256TreeHash"] == tree_hash(body[2 * MIB : 4 * MIB])
    resp = output(api, V, job_id)
    assert resp.content == body[2 * MIB : 4 * MIB]
    assert resp.headers["x-amz-sha256-tree-hash"] == tree_hash(body[2 * MIB : 4 * MIB])
    resp = output(api, V, job_id, "bytes=0-1048575")
    assert resp.content == body[2 * MIB : 3 * MIB]
    assert resp.headers["content-range"] == f"bytes 0-1048575/{2 * MIB}"


def test_unaligned_retrieval_range_has_no_checksums(api: Api) -> None:
    body = os.urandom(6 * MIB + MIB // 2)
    archive_id = upload(api, V, body)
    job_id = start_job(
        api,
        V,
        {
            "Type": "archive-retrieval",
            "ArchiveId": archive_id,
            "RetrievalByteRange": f"{MIB}-{3 * MIB - 1}",  # megabyte aligned only
            "Tier": "Expedited",
        },
    )
    assert describe(api, V, job_id)["SHA256TreeHash"] is None
    advance(api, 60)
    run_jobs(api)
    resp = output(api, V, job_id)
    assert resp.content == body[MIB : 3 * MIB]
    assert "x-amz-sha256-tree-hash" not in resp.headers


def test_output_survives_archive_deletion_until_expiry(api: Api) -> None:
    body = os.urandom(MIB + 7)
    archive_id = upload(api, V, body)
    job_id = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    advance(api, 4 * HOUR)
    assert run_jobs(api) == 1
    assert api("DELETE", f"/-/vaults/{V}/archives/{archive_id}").status_code == 204
    assert api.admin("POST", "/maintenance").status_code == 200  # blob collection runs
    assert output(api, V, job_id).content == body
    audit_before = api.admin("POST", "/audit").json()

    advance(api, 24 * HOUR)
    assert_error(
        api("GET", f"/-/vaults/{V}/jobs/{job_id}"),
        404,
        "ResourceNotFoundException",
        f"The job ID was not found: {job_id}",
    )
    assert_error(output(api, V, job_id), 404, "ResourceNotFoundException")
    report = api.admin("POST", "/maintenance").json()
    assert report["jobs_expired"] == 1
    assert report["blobs_deleted"] >= 1
    assert audit_before is not None


def test_archive_deleted_before_completion_fails_the_job(api: Api) -> None:
    archive_id = upload(api, V, b"short-lived")
    job_id = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    assert api("DELETE", f"/-/vaults/{V}/archives/{archive_id}").status_code == 204
    advance(api, 4 * HOUR)
    assert run_jobs(api) == 1
    job = describe(api, V, job_id)
    assert job["StatusCode"] == "Failed"
    assert job["Completed"] is True
    assert "deleted" in job["StatusMessage"]
    assert_error(
        output(api, V, job_id),
        400,
        "InvalidParameterValueException",
        f"The job is not currently available for download: {job_id}",
    )


def test_admin_complete_and_fail_hooks(api: Api) -> None:
    archive_id = upload(api, V, b"data")
    first = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    second = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    assert api.admin("POST", f"/jobs/{first}/complete").json() == {"completed": True}
    assert describe(api, V, first)["StatusCode"] == "Succeeded"
    assert output(api, V, first).content == b"data"
    resp = api.admin("POST", f"/jobs/{second}/fail", {"message": "Simulated outage"})
    assert resp.json() == {"failed": True}
    job = describe(api, V, second)
    assert (job["StatusCode"], job["StatusMessage"]) == ("Failed", "Simulated outage")
    # Finished jobs cannot be completed or failed again.
    assert api.admin("POST", f"/jobs/{second}/complete").status_code == 409
    assert api.admin("POST", f"/jobs/{first}/fail").status_code == 409


def test_tiers_take_their_profile_time(api: Api) -> None:
    archive_id = upload(api, V, b"tiers")
    ids = {
        tier: start_job(
            api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": tier}
        )
        for tier in ("Expedited", "Standard", "Bulk")
    }
    advance(api, 60)
    run_jobs(api)
    states = {tier: describe(api, V, job_id)["StatusCode"] for tier, job_id in ids.items()}
    assert states == {"Expedited": "Succeeded", "Standard": "InProgress", "Bulk": "InProgress"}
    advance(api, 4 * HOUR)
    run_jobs(api)
    assert describe(api, V, ids["Standard"])["StatusCode"] == "Succeeded"
    assert describe(api, V, ids["Bulk"])["StatusCode"] == "InProgress"


def test_unknown_and_foreign_job_ids(api: Api) -> None:
    archive_id = upload(api, V, b"x")
    job_id = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    assert api("PUT", "/-/vaults/other").status_code == 201
    for vault, jid in (("other", job_id), (V, "J" * 92)):
        resp = api("GET", f"/-/vaults/{vault}/jobs/{jid}")
        assert_error(resp, 404, "ResourceNotFoundException", f"The job ID was not found: {jid}")


# --- inventory jobs ---------------------------------------------------------------------


def test_inventory_job_outputs_last_snapshot(api: Api) -> None:
    ids = [upload(api, V, os.urandom(100 + i), f"archive {i}") for i in range(3)]
    force_inventory(api, ACCOUNT_ID, V)
    upload(api, V, b"after the inventory")  # not in the snapshot
    job_id = start_job(api, V, {"Type": "inventory-retrieval"})
    job = describe(api, V, job_id)
    assert job["Tier"] is None
    assert job["ArchiveId"] is None
    assert job["InventoryRetrievalParameters"] == {
        "Format": "JSON",
        "StartDate": None,
        "EndDate": None,
        "Limit": None,
        "Marker": None,
    }
    advance(api, 4 * HOUR)
    assert run_jobs(api) == 1
    job = describe(api, V, job_id)
    resp = output(api, V, job_id)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert "x-amz-sha256-tree-hash" not in resp.headers
    assert job["InventorySizeInBytes"] == len(resp.content)
    doc = resp.json()
    assert doc["VaultARN"] == ARN
    assert sorted(a["ArchiveId"] for a in doc["ArchiveList"]) == sorted(ids)


def test_csv_inventory_job(api: Api) -> None:
    upload(api, V, b"abc", 'quote " and, comma')
    force_inventory(api, ACCOUNT_ID, V)
    job_id = start_job(api, V, {"Type": "inventory-retrieval", "Format": "CSV"})
    advance(api, 4 * HOUR)
    run_jobs(api)
    resp = output(api, V, job_id)
    assert resp.headers["content-type"] == "text/csv"
    lines = resp.text.splitlines()
    assert lines[0] == "ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash"
    assert '"quote \\" and, comma"' in lines[1]


# --- ListJobs -------------------------------------------------------------------------


def test_list_jobs_paging_and_filters(api: Api) -> None:
    archive_id = upload(api, V, b"list me")
    ids = []
    for _ in range(7):
        ids.append(start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id}))
        advance(api, 1)  # distinct creation times: ascending order is observable
    api.admin("POST", f"/jobs/{ids[1]}/complete")
    api.admin("POST", f"/jobs/{ids[2]}/fail", {"message": "no"})

    seen: list[str] = []
    marker = None
    while True:
        query = "?limit=3" + (f"&marker={marker}" if marker else "")
        page = api("GET", f"/-/vaults/{V}/jobs{query}").json()
        assert len(page["JobList"]) <= 3
        seen += [j["JobId"] for j in page["JobList"]]
        marker = page["Marker"]
        if marker is None:
            break
    assert seen == ids

    def listed(query: str) -> list[str]:
        resp = api("GET", f"/-/vaults/{V}/jobs?{query}")
        assert resp.status_code == 200, resp.text
        return [j["JobId"] for j in resp.json()["JobList"]]

    assert listed("statuscode=Succeeded") == [ids[1]]
    assert listed("statuscode=Failed") == [ids[2]]
    assert listed("completed=true") == [ids[1], ids[2]]
    assert listed("completed=FALSE") == [i for i in ids if i not in (ids[1], ids[2])]
    assert listed("completed=true&statuscode=Failed") == [ids[2]]
    assert listed("limit=1000") == ids  # clamped to 50, all fit
    assert_error(
        api("GET", f"/-/vaults/{V}/jobs?statuscode=Done"),
        400,
        "InvalidParameterValueException",
        "The job status code is not valid: Done",
    )
    assert_error(
        api("GET", f"/-/vaults/{V}/jobs?completed=yes"), 400, "InvalidParameterValueException"
    )
    assert_error(api("GET", f"/-/vaults/{V}/jobs?limit=0"), 400, "InvalidParameterValueException")
    assert_error(
        api("GET", f"/-/vaults/{V}/jobs?marker=bm90LWEtbWFya2Vy"),
        400,
        "InvalidParameterValueException",
    )


# --- notifications ----------------------------------------------------------------------

TOPIC = "arn:aws:sns:us-east-1:111122223333:vault-topic"
JOB_TOPIC = "arn:aws:sns:us-east-1:111122223333:job-topic"


def test_vault_notification_configuration(api: Api) -> None:
    path = f"/-/vaults/{V}/notification-configuration"
    assert_error(api("GET", path), 404, "ResourceNotFoundException")
    assert api("DELETE", path).status_code == 204  # nothing configured: still 204
    for bad, code in (
        ({"Events": ["ArchiveRetrievalCompleted"]}, "MissingParameterValueException"),
        ({"SNSTopic": TOPIC}, "MissingParameterValueException"),
        ({"SNSTopic": TOPIC, "Events": []}, "MissingParameterValueException"),
        ({"SNSTopic": TOPIC, "Events": ["Nope"]}, "InvalidParameterValueException"),
        (
            {"SNSTopic": "not-an-arn", "Events": ["ArchiveRetrievalCompleted"]},
            "InvalidParameterValueException",
        ),
        ({"SNSTopic": TOPIC, "Events": "ArchiveRetrievalCompleted"}, "SerializationException"),
    ):
        assert_error(api("PUT", path, body=json_bytes(bad)), 400, code)
    assert_error(api("GET", path), 404, "ResourceNotFoundException")
    config = {
        "SNSTopic": TOPIC,
        "Events": ["InventoryRetrievalCompleted", "ArchiveRetrievalCompleted"],
    }
    resp = api("PUT", path, body=json_bytes(config))
    assert resp.status_code == 204
    assert api("GET", path).json() == config
    replaced = {"SNSTopic": JOB_TOPIC, "Events": ["ArchiveRetrievalCompleted"]}
    assert api("PUT", path, body=json_bytes(replaced)).status_code == 204
    assert api("GET", path).json() == replaced
    assert api("DELETE", path).status_code == 204
    assert_error(api("GET", path), 404, "ResourceNotFoundException")


def json_bytes(value: object) -> bytes:
    return json.dumps(value).encode()


def test_completion_queues_notifications_for_job_and_vault_topics(api: Api) -> None:
    path = f"/-/vaults/{V}/notification-configuration"
    config = {"SNSTopic": TOPIC, "Events": ["ArchiveRetrievalCompleted"]}
    assert api("PUT", path, body=json_bytes(config)).status_code == 204
    archive_id = upload(api, V, b"notify me")
    job_id = start_job(
        api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id, "SNSTopic": JOB_TOPIC}
    )
    force_inventory(api, ACCOUNT_ID, V)
    inventory_job = start_job(api, V, {"Type": "inventory-retrieval"})  # event not configured
    advance(api, 4 * HOUR)
    assert run_jobs(api) == 2
    queued = api.admin("GET", "/notifications").json()["notifications"]
    assert sorted(n["topic"] for n in queued) == [JOB_TOPIC, TOPIC]
    described = describe(api, V, job_id)
    for n in queued:
        assert json.loads(n["message"]) == described
    assert inventory_job not in "".join(n["message"] for n in queued)
    report = api.admin("POST", "/notifications/deliver").json()
    assert report["delivered"] == 2  # default target: the log
    states = {n["state"] for n in api.admin("GET", "/notifications").json()["notifications"]}
    assert states == {"delivered"}
    advance(api, 24 * HOUR)  # delivered messages are kept as long as jobs, then purged
    assert api.admin("POST", "/maintenance").status_code == 200
    assert api.admin("GET", "/notifications").json()["notifications"] == []


# --- verified output: damage on disk never reaches a client -------------------


def _flip_archive_byte(runtime: Runtime, size: int, offset: int) -> None:
    """Flip one payload byte of the only stored blob holding `size` bytes."""
    root = runtime.settings.data_dir
    (path,) = [p for p in root.rglob("*") if p.is_file() and p.stat().st_size > size]
    with path.open("r+b") as f:
        f.seek(HEADER_LEN + offset)
        byte = f.read(1)
        f.seek(HEADER_LEN + offset)
        f.write(bytes([byte[0] ^ 0x01]))


def _completed_retrieval(api: Api, body: bytes) -> str:
    archive_id = upload(api, V, body)
    job_id = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    advance(api, 4 * HOUR)
    assert run_jobs(api) == 1
    return job_id


def test_output_damaged_at_the_start_is_an_error_response(api: Api, runtime: Runtime) -> None:
    body = os.urandom(9 * MIB)
    job_id = _completed_retrieval(api, body)
    _flip_archive_byte(runtime, len(body), FIRST_WINDOW - MIB + 5)  # in the first window
    resp = output(api, V, job_id)
    assert_error(resp, 500, "ServiceUnavailableException")
    assert f"leaf {FIRST_WINDOW // MIB - 1} " in resp.json()["message"]
    # The read recorded the damage and the archive is quarantined (domain/damage.py):
    # even a range that avoids the damaged leaf's window is no longer served.
    resp = output(api, V, job_id, f"bytes={READ_WINDOW}-")
    assert_error(resp, 500, "ServiceUnavailableException")
    assert "quarantined" in resp.json()["message"]


def test_output_damaged_later_cuts_the_body_short(
    api: Api, runtime: Runtime, signer: Signer
) -> None:
    body = os.urandom(9 * MIB)
    job_id = _completed_retrieval(api, body)
    damaged_at = READ_WINDOW + 2 * MIB + 77  # in the second window
    _flip_archive_byte(runtime, len(body), damaged_at)
    with TestClient(runtime.app, base_url="http://testserver", raise_server_exceptions=False) as c:
        resp = Api(c, signer)("GET", f"/-/vaults/{V}/jobs/{job_id}/output")
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == str(len(body))
    # The status line was out; the body stops before the damaged leaf's window.
    assert len(resp.content) <= damaged_at - damaged_at % MIB
    assert resp.content == body[: len(resp.content)]


def test_job_reads_take_the_vault_from_the_policy_check(api: Api, runtime: Runtime) -> None:
    """DescribeJob, ListJobs and GetJobOutput read the vault once per request:
    the policy check's row is reused (JobService._vault), not read again."""
    archive_id = upload(api, V, b"x" * 100)
    job_id = start_job(
        api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": "Expedited"}
    )
    advance(api, 5 * 60)  # Expedited takes 5 min on the aws profile
    assert run_jobs(api) == 1
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    store = runtime.services.deps.store
    assert isinstance(store, SqlMetadataStore)
    engine = store.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for path in (f"jobs/{job_id}", "jobs", f"jobs/{job_id}/output", f"jobs/{job_id}/output"):
            statements.clear()
            assert api("GET", f"/-/vaults/{V}/{path}").status_code == 200
            vault_reads = [s for s in statements if "FROM vaults" in s]
            assert len(vault_reads) == 1, (path, vault_reads)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # A vault that does not exist is still the spec's 404, from the handler.
    resp = api("GET", f"/-/vaults/nope/jobs/{job_id}")
    assert_error(resp, 404, "ResourceNotFoundException", f"Vault not found for ARN: {ARN[:-1]}nope")
