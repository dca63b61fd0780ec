"""Issue 4 acceptance scenarios through real boto3 against a live server (spec 2.8-2.14, 6).

The server runs with a manual clock, so "a year later" and "24 hours later" are
admin calls, not sleeps. A second tenant account is created with the operator
command `openglacier accounts create` against the server's own data directory.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.utils import calculate_tree_hash

from support.server import ACCOUNT_ID, REGION, LiveServer

DAY = 86_400
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("gov") / "data",
        extra_env={"OPENGLACIER_CLOCK": "manual", "OPENGLACIER_TIMING": "instant"},
    ).start()
    yield live
    live.stop()


def openglacier(server: LiveServer, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "openglacier", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def tenant_b(server: LiveServer) -> dict[str, str]:
    out = openglacier(server, "accounts", "create", "--description", "tenant B")
    fields = dict(re.findall(r"^(account id|access key id|secret access key)\s+(\S+)$", out, re.M))
    assert len(fields["account id"]) == 12
    assert fields["account id"] != ACCOUNT_ID
    listed = openglacier(server, "accounts", "list")
    assert ACCOUNT_ID in listed
    assert fields["account id"] in listed
    return fields


@pytest.fixture(scope="module")
def glacier_b(server: LiveServer, tenant_b: dict[str, str]) -> Any:
    return boto3.client(
        "glacier",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=tenant_b["access key id"],
        aws_secret_access_key=tenant_b["secret access key"],
        config=Config(retries={"max_attempts": 1}),
    )


def advance(server: LiveServer, seconds: float) -> None:
    assert server.admin("POST", "/clock/advance", {"seconds": seconds}).status_code == 200


def arn(vault: str, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:glacier:{REGION}:{account}:vaults/{vault}"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response: dict[str, Any] = info.value.response
    return {"status": response["ResponseMetadata"]["HTTPStatusCode"], **response["Error"]}


def upload(client: Any, vault: str, body: bytes = b"archive bytes", account: str = "-") -> str:
    return str(client.upload_archive(vaultName=vault, accountId=account, body=body)["archiveId"])


def explicit_deny(action: str, vault: str, account: str = ACCOUNT_ID) -> str:
    return (
        f"User: arn:aws:iam::{account}:root is not authorized to perform: glacier:{action} "
        f"on resource: {arn(vault)} with an explicit deny"
    )


RETENTION = {
    "Sid": "one-year-retention",
    "Principal": "*",
    "Effect": "Deny",
    "Action": "glacier:DeleteArchive",
    "Resource": "*",
    "Condition": {"NumericLessThan": {"glacier:ArchiveAgeInDays": "365"}},
}


def test_one_year_retention_lock(glacier: Any, vault: str, server: LiveServer) -> None:
    lock_id = glacier.initiate_vault_lock(vaultName=vault, policy={"Policy": policy(RETENTION)})[
        "lockId"
    ]
    glacier.complete_vault_lock(vaultName=vault, lockId=lock_id)
    lock = glacier.get_vault_lock(vaultName=vault)
    assert (lock["State"], lock.get("ExpirationDate")) == ("Locked", None)  # null: dropped
    old = upload(glacier, vault, b"old")
    advance(server, 200 * DAY)
    young = upload(glacier, vault, b"young")
    denied = error_of(glacier.delete_archive, vaultName=vault, archiveId=old)
    assert denied == {
        "status": 403,
        "Code": "AccessDeniedException",
        "Message": explicit_deny("DeleteArchive", vault),
    }
    advance(server, 165 * DAY)  # old is now 365 days old, young 165
    glacier.delete_archive(vaultName=vault, archiveId=old)
    assert error_of(glacier.delete_archive, vaultName=vault, archiveId=young)["status"] == 403
    # Nothing can change a Locked policy.
    for call, kwargs in [
        (glacier.abort_vault_lock, {}),
        (glacier.initiate_vault_lock, {"policy": {"Policy": policy({**RETENTION, "Sid": "x"})}}),
        (glacier.complete_vault_lock, {"lockId": "A" * 24}),
    ]:
        assert error_of(call, vaultName=vault, **kwargs)["Code"] == "AccessDeniedException"
    assert glacier.get_vault_lock(vaultName=vault)["Policy"] == policy(RETENTION)
    glacier.complete_vault_lock(vaultName=vault, lockId=lock_id)  # the locking id: idempotent


LEGAL_HOLD = policy(
    {
        "Sid": "legal-hold",
        "Principal": "*",
        "Effect": "Deny",
        "Action": "glacier:DeleteArchive",
        "Resource": "*",
        "Condition": {"StringLike": {"glacier:ResourceTag/LegalHold": ["true", ""]}},
    }
)


def test_legal_hold_tag_blocks_deletes_until_removed(glacier: Any, vault: str) -> None:
    glacier.set_vault_access_policy(vaultName=vault, policy={"Policy": LEGAL_HOLD})
    assert glacier.get_vault_access_policy(vaultName=vault)["policy"]["Policy"] == LEGAL_HOLD
    first, second = upload(glacier, vault, b"1"), upload(glacier, vault, b"2")
    glacier.delete_archive(vaultName=vault, archiveId=first)  # no tag: no hold
    glacier.add_tags_to_vault(vaultName=vault, Tags={"LegalHold": "true"})
    denied = error_of(glacier.delete_archive, vaultName=vault, archiveId=second)
    assert (denied["status"], denied["Message"]) == (403, explicit_deny("DeleteArchive", vault))
    glacier.remove_tags_from_vault(vaultName=vault, TagKeys=["LegalHold"])
    glacier.delete_archive(vaultName=vault, archiveId=second)


def test_in_progress_lock_is_enforced_then_expires(
    glacier: Any, vault: str, server: LiveServer
) -> None:
    deny_all_deletes = policy(_no_condition())
    glacier.initiate_vault_lock(vaultName=vault, policy={"Policy": deny_all_deletes})
    archive = upload(glacier, vault)
    assert error_of(glacier.delete_archive, vaultName=vault, archiveId=archive)["status"] == 403
    advance(server, DAY - 1)
    assert glacier.get_vault_lock(vaultName=vault)["State"] == "InProgress"
    assert error_of(glacier.delete_archive, vaultName=vault, archiveId=archive)["status"] == 403
    advance(server, 1)
    assert error_of(glacier.get_vault_lock, vaultName=vault)["Code"] == (
        "ResourceNotFoundException"
    )
    glacier.delete_archive(vaultName=vault, archiveId=archive)
    report = server.admin("POST", "/maintenance").json()
    assert report["locks_expired"] >= 1


def _no_condition() -> dict[str, Any]:
    return {key: value for key, value in RETENTION.items() if key != "Condition"}


def grant_uploads_to(account: str, vault: str) -> str:
    return policy(
        {
            "Sid": "tenant-b-may-upload",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Effect": "Allow",
            "Action": [
                "glacier:UploadArchive",
                "glacier:InitiateMultipartUpload",
                "glacier:UploadMultipartPart",
                "glacier:CompleteMultipartUpload",
            ],
            "Resource": arn(vault),
        }
    )


def test_account_b_uploads_only_while_granted(
    glacier: Any, glacier_b: Any, tenant_b: dict[str, str], vault: str, server: LiveServer
) -> None:
    b = tenant_b["account id"]
    implicit = error_of(glacier_b.upload_archive, vaultName=vault, accountId=ACCOUNT_ID, body=b"x")
    assert implicit == {
        "status": 403,
        "Code": "AccessDeniedException",
        "Message": f"User: arn:aws:iam::{b}:root is not authorized to perform: "
        f"glacier:UploadArchive on resource: {arn(vault)}",
    }
    glacier.set_vault_access_policy(vaultName=vault, policy={"Policy": grant_uploads_to(b, vault)})
    data = bytes(range(256)) * 4096 * 3  # 3 MiB
    single = glacier_b.upload_archive(vaultName=vault, accountId=ACCOUNT_ID, body=data)
    assert single["location"] == f"/{ACCOUNT_ID}/vaults/{vault}/archives/{single['archiveId']}"
    multipart = multipart_upload(glacier_b, vault, data)
    # Outside the grant: reading, listing, retrieving, changing the policy, other vaults.
    refused = [
        (glacier_b.describe_vault, {"vaultName": vault}),
        (glacier_b.list_jobs, {"vaultName": vault}),
        (glacier_b.list_multipart_uploads, {"vaultName": vault}),
        (glacier_b.get_vault_access_policy, {"vaultName": vault}),
        (glacier_b.delete_vault_access_policy, {"vaultName": vault}),
        (glacier_b.delete_archive, {"vaultName": vault, "archiveId": single["archiveId"]}),
        (
            glacier_b.initiate_job,
            {
                "vaultName": vault,
                "jobParameters": {"Type": "archive-retrieval", "ArchiveId": single["archiveId"]},
            },
        ),
        (glacier_b.list_vaults, {}),
        (glacier_b.get_data_retrieval_policy, {}),
        (glacier_b.upload_archive, {"vaultName": "not-" + vault, "body": b"x"}),
    ]
    for call, kwargs in refused:
        denied = error_of(call, accountId=ACCOUNT_ID, **kwargs)
        assert (denied["status"], denied["Code"]) == (403, "AccessDeniedException"), call
    # The archives are A's: A retrieves both and gets B's bytes back.
    for archive_id in (single["archiveId"], multipart):
        assert retrieve(glacier, server, vault, archive_id) == data
    glacier.delete_vault_access_policy(vaultName=vault)
    revoked = error_of(glacier_b.upload_archive, vaultName=vault, accountId=ACCOUNT_ID, body=b"x")
    assert revoked["status"] == 403
    # B's own account is unaffected, and A cannot act in it either.
    glacier_b.create_vault(vaultName=vault)
    assert upload(glacier_b, vault)
    assert error_of(glacier.describe_vault, vaultName=vault, accountId=b)["status"] == 403


def test_explicit_deny_wins_over_a_grant(
    glacier: Any, glacier_b: Any, tenant_b: dict[str, str], vault: str
) -> None:
    b = tenant_b["account id"]
    grant = json.loads(grant_uploads_to(b, vault))
    grant["Statement"].append(
        {
            "Sid": "but-not-from-loopback",
            "Principal": "*",
            "Effect": "Deny",
            "Action": "glacier:UploadArchive",
            "Resource": arn(vault),
            "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
        }
    )
    glacier.set_vault_access_policy(vaultName=vault, policy={"Policy": json.dumps(grant)})
    denied = error_of(glacier_b.upload_archive, vaultName=vault, accountId=ACCOUNT_ID, body=b"x")
    assert denied["Message"].endswith("with an explicit deny")
    # The Deny names every principal, the owner included.
    assert error_of(glacier.upload_archive, vaultName=vault, body=b"x")["status"] == 403
    # Multipart was granted and not denied.
    assert multipart_upload(glacier_b, vault, b"m" * MIB)


def test_owner_only_conditions_on_transport_and_mfa(glacier: Any, vault: str) -> None:
    guarded = policy(
        {
            "Sid": "tls-only",
            "Principal": "*",
            "Effect": "Deny",
            "Action": "glacier:DescribeVault",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "mfa-deletes",
            "Principal": "*",
            "Effect": "Deny",
            "Action": "glacier:DeleteArchive",
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        },
    )
    glacier.set_vault_access_policy(vaultName=vault, policy={"Policy": guarded})
    archive = upload(glacier, vault)
    assert error_of(glacier.describe_vault, vaultName=vault)["status"] == 403  # plain http
    assert error_of(glacier.delete_archive, vaultName=vault, archiveId=archive)["status"] == 403
    glacier.list_jobs(vaultName=vault)  # not named by either statement


def test_terraform_style_reads_of_absent_documents(glacier: Any, vault: str) -> None:
    for call in (
        glacier.get_vault_access_policy,
        glacier.get_vault_lock,
        glacier.get_vault_notifications,
    ):
        missing = error_of(call, vaultName=vault)
        assert (missing["status"], missing["Code"]) == (404, "ResourceNotFoundException")
    assert glacier.list_tags_for_vault(vaultName=vault)["Tags"] == {}
    glacier.delete_vault_access_policy(vaultName=vault)  # idempotent
    glacier.abort_vault_lock(vaultName=vault)  # idempotent


def test_operator_lists_policies_and_locks(glacier: Any, vault: str, server: LiveServer) -> None:
    glacier.set_vault_access_policy(vaultName=vault, policy={"Policy": LEGAL_HOLD})
    lock_id = glacier.initiate_vault_lock(vaultName=vault, policy={"Policy": policy(RETENTION)})[
        "lockId"
    ]
    rows = [
        json.loads(line)
        for line in openglacier(server, "policies", "list", "--json").splitlines()
        if line.strip()
    ]
    mine = [row for row in rows if row["VaultName"] == vault]
    assert len(mine) == 1
    assert mine[0]["AccessPolicy"] == LEGAL_HOLD
    assert mine[0]["Lock"]["Policy"] == policy(RETENTION)
    assert mine[0]["Lock"]["State"] in ("InProgress", "InProgress (expired)")
    table = openglacier(server, "policies", "list")
    assert vault[:10] in table
    glacier.complete_vault_lock(vaultName=vault, lockId=lock_id)
    assert "Locked" in openglacier(server, "policies", "list", "--account-id", ACCOUNT_ID)


def multipart_upload(client: Any, vault: str, data: bytes) -> str:
    upload_id = client.initiate_multipart_upload(
        vaultName=vault, accountId=ACCOUNT_ID, partSize=str(MIB)
    )["uploadId"]
    for start in range(0, len(data), MIB):
        chunk = data[start : start + MIB]
        client.upload_multipart_part(
            vaultName=vault,
            accountId=ACCOUNT_ID,
            uploadId=upload_id,
            range=f"bytes {start}-{start + len(chunk) - 1}/*",
            body=chunk,
        )
    done = client.complete_multipart_upload(
        vaultName=vault,
        accountId=ACCOUNT_ID,
        uploadId=upload_id,
        archiveSize=str(len(data)),
        checksum=calculate_tree_hash(io.BytesIO(data)),
    )
    return str(done["archiveId"])


def retrieve(glacier: Any, server: LiveServer, vault: str, archive_id: str) -> bytes:
    job = glacier.initiate_job(
        vaultName=vault, jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id}
    )["jobId"]
    assert server.admin("POST", "/jobs/run").status_code == 200
    return bytes(glacier.get_job_output(vaultName=vault, jobId=job)["body"].read())
