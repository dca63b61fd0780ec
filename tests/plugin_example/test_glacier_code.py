"""A user's project: tests of "their" Glacier code with only the documented fixtures.

Run by tests/functional/test_pytest_plugin.py in a pytest subprocess, outside
this repository's conftest files (tests/conftest.py ignores this directory).
"""

import json
import tempfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

# --- "the user's code" -----------------------------------------------------------------------


def backup(client, vault: str, data: bytes, name: str) -> str:
    client.create_vault(vaultName=vault)
    answer = client.upload_archive(vaultName=vault, archiveDescription=name, body=data)
    return answer["archiveId"]


def request_restore(client, vault: str, archive_id: str) -> str:
    params = {"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": "Standard"}
    return client.initiate_job(vaultName=vault, jobParameters=params)["jobId"]


def fetch_if_ready(client, vault: str, job_id: str) -> bytes | None:
    if not client.describe_job(vaultName=vault, jobId=job_id)["Completed"]:
        return None
    return client.get_job_output(vaultName=vault, jobId=job_id)["body"].read()


# --- tests -----------------------------------------------------------------------------------


def test_restore_waits_for_the_job_then_returns_the_bytes(glacier_server, glacier_client):
    data = b"precious" * 1000
    archive_id = backup(glacier_client, "photos", data, "photos.tar")
    job_id = request_restore(glacier_client, "photos", archive_id)

    assert fetch_if_ready(glacier_client, "photos", job_id) is None  # Standard: 4 h
    glacier_server.advance(hours=4)
    assert glacier_server.run_jobs() == 1
    assert fetch_if_ready(glacier_client, "photos", job_id) == data


def test_complete_and_fail_jobs_on_demand(glacier_server, glacier_client):
    archive_id = backup(glacier_client, "v", b"x" * 10, "x")
    ok, bad = (
        request_restore(glacier_client, "v", archive_id),
        request_restore(glacier_client, "v", archive_id),
    )
    glacier_server.complete_job(ok)
    glacier_server.fail_job(bad, "disk on fire")
    assert fetch_if_ready(glacier_client, "v", ok) == b"x" * 10
    failed = glacier_client.describe_job(vaultName="v", jobId=bad)
    assert (failed["StatusCode"], failed["StatusMessage"]) == ("Failed", "disk on fire")


def test_wrong_tree_hash_is_refused(glacier_client):
    glacier_client.create_vault(vaultName="v")
    with pytest.raises(ClientError) as caught:
        glacier_client.upload_archive(vaultName="v", body=b"abc", checksum="0" * 64)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_forced_inventory_lists_the_archive(glacier_server, glacier_client):
    archive_id = backup(glacier_client, "v", b"inventory me", "one")
    assert glacier_server.inventory("v")["NumberOfArchives"] == 1
    job_id = glacier_client.initiate_job(
        vaultName="v", jobParameters={"Type": "inventory-retrieval"}
    )["jobId"]
    glacier_server.advance(hours=4)
    glacier_server.run_jobs()
    listing = json.loads(fetch_if_ready(glacier_client, "v", job_id))
    assert [a["ArchiveId"] for a in listing["ArchiveList"]] == [archive_id]


def test_job_notification_is_recorded(glacier_server, glacier_client):
    topic = "arn:aws:sns:us-east-1:123456789012:restores"
    archive_id = backup(glacier_client, "v", b"n", "n")
    glacier_client.set_vault_notifications(
        vaultName="v",
        vaultNotificationConfig={"SNSTopic": topic, "Events": ["ArchiveRetrievalCompleted"]},
    )
    job_id = request_restore(glacier_client, "v", archive_id)
    glacier_server.complete_job(job_id)
    [note] = glacier_server.notifications()
    assert note["topic"] == topic
    assert note["message"]["JobId"] == job_id
    assert note["message"]["StatusCode"] == "Succeeded"


def test_each_test_gets_a_fresh_server(glacier_client):
    glacier_client.create_vault(vaultName="photos")  # made by the first test too
    assert [v["VaultName"] for v in glacier_client.list_vaults()["VaultList"]] == ["photos"]


def test_session_server_is_shared(glacier_server_session, glacier_client_session):
    glacier_client_session.create_vault(vaultName="shared")
    names = [v["VaultName"] for v in glacier_client_session.list_vaults()["VaultList"]]
    assert names == ["shared"]  # once per run: the next test sees it too
    assert glacier_server_session.endpoint.startswith("http://127.0.0.1:")


def test_session_server_kept_the_vault(glacier_client_session):
    names = [v["VaultName"] for v in glacier_client_session.list_vaults()["VaultList"]]
    assert "shared" in names


def test_server_files_live_in_the_temp_dir(glacier_server):
    assert glacier_server.data_dir.is_relative_to(Path(tempfile.gettempdir()))
    assert (glacier_server.data_dir / "metadata.db").exists()
