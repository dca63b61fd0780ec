"""boto3 (client and resource API, paginators, waiters) against a live server."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from botocore.exceptions import ClientError
from botocore.utils import calculate_tree_hash

from openglacier.treehash import MIB, combine, tree_hash
from support.server import ACCOUNT_ID, LiveServer


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_vault_lifecycle_with_waiters(glacier) -> None:  # type: ignore[no-untyped-def]
    created = glacier.create_vault(vaultName="life")
    assert created["location"] == f"/{ACCOUNT_ID}/vaults/life"
    glacier.get_waiter("vault_exists").wait(vaultName="life")
    described = glacier.describe_vault(vaultName="life")
    assert described["VaultARN"] == f"arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/life"
    assert described["NumberOfArchives"] == 0
    assert described["SizeInBytes"] == 0
    assert "LastInventoryDate" not in described  # null is dropped by botocore
    glacier.delete_vault(vaultName="life")
    glacier.get_waiter("vault_not_exists").wait(vaultName="life")
    with pytest.raises(ClientError) as info:
        glacier.describe_vault(vaultName="life")
    assert error_code(info) == "ResourceNotFoundException"


def test_list_vaults_paginates_in_ascii_order(server: LiveServer) -> None:
    glacier = server.client()
    names = [
        "pg-B",
        "pg-a",
        "pg-_",
        "pg-A",
        "pg-0",
        "pg-z",
        "pg-.",
        "pg--",
        "pg-b",
        "pg-Z",
        "pg-9",
        "pg-y",
    ]
    for name in names:
        glacier.create_vault(vaultName=name)
    pages = list(glacier.get_paginator("list_vaults").paginate(PaginationConfig={"PageSize": 5}))
    seen = [v["VaultName"] for p in pages for v in p["VaultList"]]
    mine = [n for n in seen if n.startswith("pg-")]
    assert mine == sorted(names, key=lambda n: n.encode())
    assert all(len(p["VaultList"]) <= 5 for p in pages)
    assert len(pages) >= 3


def test_upload_archive_counts_and_delete(glacier, vault: str) -> None:  # type: ignore[no-untyped-def]
    body = os.urandom(3 * MIB + 17)
    resp = glacier.upload_archive(vaultName=vault, archiveDescription="three", body=body)
    assert resp["checksum"] == calculate_tree_hash(io.BytesIO(body))
    assert len(resp["archiveId"]) == 138
    assert resp["location"] == f"/{ACCOUNT_ID}/vaults/{vault}/archives/{resp['archiveId']}"
    described = glacier.describe_vault(vaultName=vault)
    # instant profile: an inventory follows every write; 32 KiB overhead per archive.
    assert described["NumberOfArchives"] == 1
    assert described["SizeInBytes"] == len(body) + 32768
    assert "LastInventoryDate" in described
    glacier.delete_archive(vaultName=vault, archiveId=resp["archiveId"])
    glacier.delete_archive(vaultName=vault, archiveId=resp["archiveId"])  # idempotent
    assert glacier.describe_vault(vaultName=vault)["NumberOfArchives"] == 0
    glacier.delete_vault(vaultName=vault)


def test_multipart_upload_end_to_end(glacier, vault: str) -> None:  # type: ignore[no-untyped-def]
    data = bytes(i % 251 for i in range(6815744))  # spec 3.2 multipart vector
    part = 2 * MIB
    init = glacier.initiate_multipart_upload(
        vaultName=vault, partSize=str(part), archiveDescription="vector"
    )
    upload_id = init["uploadId"]
    assert len(upload_id) == 92
    hashes = []
    for first in reversed(range(0, len(data), part)):  # any order
        chunk = data[first : first + part]
        r = glacier.upload_multipart_part(
            vaultName=vault,
            uploadId=upload_id,
            range=f"bytes {first}-{first + len(chunk) - 1}/*",
            body=chunk,
        )
        hashes.append(r["checksum"])
    assert hashes[::-1] == [
        "bf4dff263ae686b64403208c35a3767e38453d6477e841947588d13d04e1d816",
        "9e217b1ceb8db81071f9c6e4a2bf0401a83491d10751ce858a2628f5d699dbdb",
        "3f1cd462b63cf286198c3f2ee91cf116dfed51d327686dca0fb06ba94a4ae759",
        "c9fed994db0d8e2e5b7d603f40c18613d1f545288928a52ee9d2b2e2375f7160",
    ]
    parts = glacier.list_parts(vaultName=vault, uploadId=upload_id)
    assert [p["RangeInBytes"] for p in parts["Parts"]] == [
        "0-2097151",
        "2097152-4194303",
        "4194304-6291455",
        "6291456-6815743",
    ]
    assert parts["ArchiveDescription"] == "vector"
    assert parts["PartSizeInBytes"] == part
    uploads = glacier.list_multipart_uploads(vaultName=vault)["UploadsList"]
    assert [u["MultipartUploadId"] for u in uploads] == [upload_id]
    checksum = combine(hashes[::-1])
    assert checksum == "8bcaa7b4b8f991ca140f306627f2c4e84601364cde8e054b6e0924433ca7482f"
    done = glacier.complete_multipart_upload(
        vaultName=vault, uploadId=upload_id, archiveSize=str(len(data)), checksum=checksum
    )
    again = glacier.complete_multipart_upload(
        vaultName=vault, uploadId=upload_id, archiveSize=str(len(data)), checksum=checksum
    )
    assert again["archiveId"] == done["archiveId"]
    assert done["checksum"] == checksum
    assert glacier.describe_vault(vaultName=vault)["NumberOfArchives"] == 1
    assert glacier.list_multipart_uploads(vaultName=vault)["UploadsList"] == []
    with pytest.raises(ClientError) as info:
        glacier.list_parts(vaultName=vault, uploadId=upload_id)
    assert error_code(info) == "ResourceNotFoundException"


def test_multipart_pagination_and_abort(glacier, vault: str) -> None:  # type: ignore[no-untyped-def]
    ids = [
        glacier.initiate_multipart_upload(vaultName=vault, partSize=str(MIB))["uploadId"]
        for _ in range(7)
    ]
    pages = list(
        glacier.get_paginator("list_multipart_uploads").paginate(
            vaultName=vault, PaginationConfig={"PageSize": 3}
        )
    )
    listed = [u["MultipartUploadId"] for p in pages for u in p["UploadsList"]]
    assert sorted(listed) == sorted(ids)
    assert len(pages) == 3
    target = ids[0]
    for first in range(0, 5 * MIB, MIB):
        glacier.upload_multipart_part(
            vaultName=vault,
            uploadId=target,
            range=f"bytes {first}-{first + MIB - 1}/*",
            body=b"x" * MIB,
        )
    part_pages = list(
        glacier.get_paginator("list_parts").paginate(
            vaultName=vault, uploadId=target, PaginationConfig={"PageSize": 2}
        )
    )
    ranges = [p["RangeInBytes"] for page in part_pages for p in page["Parts"]]
    assert ranges == [f"{i * MIB}-{(i + 1) * MIB - 1}" for i in range(5)]
    glacier.abort_multipart_upload(vaultName=vault, uploadId=target)
    glacier.abort_multipart_upload(vaultName=vault, uploadId=target)  # aborted again: 204
    with pytest.raises(ClientError) as info:
        glacier.upload_multipart_part(
            vaultName=vault, uploadId=target, range=f"bytes 0-{MIB - 1}/*", body=b"x" * MIB
        )
    assert error_code(info) == "ResourceNotFoundException"


def test_tags(glacier, vault: str) -> None:  # type: ignore[no-untyped-def]
    glacier.add_tags_to_vault(vaultName=vault, Tags={"team": "ops", "empty": ""})
    glacier.add_tags_to_vault(vaultName=vault, Tags={"team": "dev"})
    assert glacier.list_tags_for_vault(vaultName=vault)["Tags"] == {"team": "dev", "empty": ""}
    glacier.remove_tags_from_vault(vaultName=vault, TagKeys=["team", "absent"])
    assert glacier.list_tags_for_vault(vaultName=vault)["Tags"] == {"empty": ""}
    with pytest.raises(ClientError) as info:
        glacier.add_tags_to_vault(vaultName=vault, Tags={f"k{i}": "v" for i in range(11)})
    assert error_code(info) == "InvalidParameterValueException"
    # "empty" plus 49 more makes exactly 50, the per-vault limit.
    for batch in range(5):
        count = 10 if batch < 4 else 9
        glacier.add_tags_to_vault(
            vaultName=vault, Tags={f"k{batch}-{i}": "v" for i in range(count)}
        )
    assert len(glacier.list_tags_for_vault(vaultName=vault)["Tags"]) == 50
    with pytest.raises(ClientError) as info:
        glacier.add_tags_to_vault(vaultName=vault, Tags={"one-too-many": "v"})
    assert error_code(info) == "LimitExceededException"


def test_resource_api(server: LiveServer) -> None:
    glacier = server.resource()
    vault = glacier.create_vault(vaultName="resource-vault")
    vault.load()
    assert vault.vault_name == "resource-vault"
    archive = vault.upload_archive(archiveDescription="r", body=b"resource bytes")
    assert len(archive.id) == 138
    upload = vault.initiate_multipart_upload(partSize=str(MIB))
    part = upload.upload_part(range="bytes 0-9/*", body=b"0123456789")
    assert part["checksum"] == hashlib.sha256(b"0123456789").hexdigest()
    listed = [u.id for u in vault.multipart_uploads.all()]
    assert listed == [upload.id]
    done = upload.complete(archiveSize="10", checksum=tree_hash(b"0123456789"))
    assert len(done["archiveId"]) == 138
    assert "resource-vault" in [v.name for v in glacier.Account("-").vaults.all()]
    archive.delete()


def test_delete_vault_refused_while_not_empty(glacier, vault: str) -> None:  # type: ignore[no-untyped-def]
    archive = glacier.upload_archive(vaultName=vault, body=b"keep")["archiveId"]
    with pytest.raises(ClientError) as info:
        glacier.delete_vault(vaultName=vault)
    assert error_code(info) == "InvalidParameterValueException"
    assert info.value.response["Error"]["Message"] == (
        f"Vault not empty or recently written to: "
        f"arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/{vault}"
    )
    glacier.delete_archive(vaultName=vault, archiveId=archive)
    glacier.delete_vault(vaultName=vault)
