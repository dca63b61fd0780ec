"""The retrieval flow through the AWS SDK for JavaScript v3 against a live server.

`js/retrieval-flow.mjs` creates a vault, uploads, retrieves (whole and ranged),
lists, takes an inventory and sets notifications with `@aws-sdk/client-glacier`,
then prints a JSON summary. That SDK sends `x-amz-content-sha256` and
`x-amz-sha256-tree-hash` on every request with a body, JSON ones included
(spec 1.5, 8.6), so the flow also proves the server tolerates them there.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from openglacier.treehash import MIB, tree_hash
from support.node import require_node, run_script
from support.server import ACCESS_KEY, ACCOUNT_ID, ADMIN_TOKEN, REGION, SECRET_KEY, LiveServer

VAULT = "js-vault"
ARN = f"arn:aws:glacier:{REGION}:{ACCOUNT_ID}:vaults/{VAULT}"


@pytest.fixture(scope="session")
def node() -> str:
    return require_node()


@pytest.fixture(scope="module")
def flow(node: str, server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("js")
    data = os.urandom(3 * MIB + 4321)
    (work / "archive.bin").write_bytes(data)
    env = dict(os.environ)
    env.update(
        OG_ENDPOINT=server.endpoint,
        OG_ACCESS_KEY=ACCESS_KEY,
        OG_SECRET_KEY=SECRET_KEY,
        OG_REGION=REGION,
        OG_VAULT=VAULT,
        OG_ADMIN_TOKEN=ADMIN_TOKEN,
        OG_ARCHIVE_FILE=str(work / "archive.bin"),
        OG_OUTPUT_FILE=str(work / "output.bin"),
        # The SDK must not find real credentials or config on the machine.
        AWS_CONFIG_FILE=str(work / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(work / "none"),
    )
    summary = run_script(node, "retrieval-flow.mjs", env)
    return summary, data, (work / "output.bin").read_bytes()


def test_js_upload_and_initiate(flow: Any) -> None:
    summary, data, _ = flow
    assert summary["createVault"] == f"/{ACCOUNT_ID}/vaults/{VAULT}"
    archive_id = summary["upload"]["archiveId"]
    assert len(archive_id) == 138
    assert summary["upload"]["checksum"] == tree_hash(data)
    job_id = summary["initiateJob"]["jobId"]
    assert len(job_id) == 92
    assert summary["initiateJob"]["location"] == f"/{ACCOUNT_ID}/vaults/{VAULT}/jobs/{job_id}"
    assert summary["ranJobs"] >= 0  # the runner may have finished it before the hook


def test_js_sdk_sends_hash_headers_on_json_requests(flow: Any) -> None:
    sent = flow[0]["sentHeaders"]
    # These succeeded although the SDK sent both hash headers with a JSON body.
    for command in ("InitiateJobCommand", "SetVaultNotificationsCommand"):
        assert sent[command] == {"contentSha256": True, "treeHash": True}, command
    assert sent["UploadArchiveCommand"] == {"contentSha256": True, "treeHash": True}


def test_js_describe_job(flow: Any) -> None:
    summary, data, _ = flow
    job = summary["describeJob"]
    assert job["JobId"] == summary["initiateJob"]["jobId"]
    assert job["Action"] == "ArchiveRetrieval"
    assert job["ArchiveId"] == summary["upload"]["archiveId"]
    assert job["VaultARN"] == ARN
    assert job["StatusCode"] == "Succeeded"
    assert job["Completed"] is True
    assert job["StatusMessage"] == "Succeeded"
    assert job["JobDescription"] == "js retrieval"
    assert job["Tier"] == "Expedited"
    assert job["ArchiveSizeInBytes"] == len(data)
    assert job["RetrievalByteRange"] == f"0-{len(data) - 1}"
    assert job["SHA256TreeHash"] == job["ArchiveSHA256TreeHash"] == tree_hash(data)
    assert job["CreationDate"] <= job["CompletionDate"]
    assert "InventorySizeInBytes" not in job  # null on the wire, dropped by the SDK


def test_js_get_job_output(flow: Any) -> None:
    summary, data, written = flow
    out = summary["output"]
    assert written == data
    assert out["bytesEqual"] is True
    assert out["length"] == len(data)
    assert out["status"] == 200
    assert out["checksum"] == tree_hash(data)
    assert out["checksumEqualsUpload"] is True
    assert out["contentType"] == "application/octet-stream"
    assert out["acceptRanges"] == "bytes"
    assert out["archiveDescription"] == "from js"
    assert "contentRange" not in out


def test_js_ranged_get_job_output(flow: Any) -> None:
    summary, data, _ = flow
    ranged = summary["rangedOutput"]
    assert ranged["status"] == 206
    assert ranged["bytesEqual"] is True
    assert ranged["length"] == MIB
    assert ranged["contentRange"] == f"bytes {MIB}-{2 * MIB - 1}/{len(data)}"
    assert ranged["checksum"] == tree_hash(data[MIB : 2 * MIB])  # one aligned MiB


def test_js_list_jobs(flow: Any) -> None:
    listed = flow[0]["listJobs"]
    assert listed["jobIds"] == [flow[0]["initiateJob"]["jobId"]]
    assert listed["statusCodes"] == ["Succeeded"]
    assert listed["marker"] is None


def test_js_inventory_job(flow: Any) -> None:
    summary, data, _ = flow
    inventory = summary["inventory"]
    assert inventory["action"] == "InventoryRetrieval"
    assert inventory["statusCode"] == "Succeeded"
    assert inventory["contentType"] == "application/json"
    assert inventory["checksum"] is None
    assert inventory["inventorySizeInBytes"] == inventory["length"]
    doc = inventory["document"]
    assert doc["VaultARN"] == ARN
    assert [(a["ArchiveId"], a["Size"], a["SHA256TreeHash"]) for a in doc["ArchiveList"]] == [
        (summary["upload"]["archiveId"], len(data), tree_hash(data))
    ]
    assert doc["ArchiveList"][0]["ArchiveDescription"] == "from js"


def test_js_notifications_and_errors(flow: Any) -> None:
    summary = flow[0]
    assert summary["notifications"] == {
        "SNSTopic": "arn:aws:sns:us-east-1:123456789012:js-topic",
        "Events": ["ArchiveRetrievalCompleted", "InventoryRetrievalCompleted"],
    }
    assert summary["notificationsAfterDelete"]["name"] == "ResourceNotFoundException"
    assert summary["notificationsAfterDelete"]["status"] == 404
    unknown = summary["unknownJob"]
    assert (unknown["name"], unknown["status"]) == ("ResourceNotFoundException", 404)
    assert unknown["message"] == f"The job ID was not found: {'J' * 92}"
    bad = summary["badStatusCode"]
    assert (bad["name"], bad["status"]) == ("InvalidParameterValueException", 400)
    assert bad["message"] == "The job status code is not valid: Done"
