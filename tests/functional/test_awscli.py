"""The AWS CLI (`aws glacier ... --endpoint-url`) against a live server."""

from __future__ import annotations

import json
import os
from pathlib import Path

from openglacier.treehash import MIB, tree_hash
from support.awscli import GlacierCli as Cli
from support.server import ACCOUNT_ID, LiveServer


def upload_parts(aws: Cli, upload_id: str, data: bytes, tmp_path: Path) -> list[str]:
    hashes = []
    for first in range(0, len(data), MIB):
        piece = tmp_path / f"part{first}"
        piece.write_bytes(data[first : first + MIB])
        last = first + piece.stat().st_size - 1
        r = aws(
            "upload-multipart-part",
            "--upload-id",
            upload_id,
            "--range",
            f"bytes {first}-{last}/*",
            "--body",
            str(piece),
        )
        hashes.append(r["checksum"])
    return hashes


def test_cli_vault_archive_multipart(
    server: LiveServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    aws = Cli(server, cli_env)
    assert aws("create-vault")["location"] == f"/{ACCOUNT_ID}/vaults/cli"
    aws("wait vault-exists")
    archive_file = tmp_path / "a.bin"
    archive_file.write_bytes(b"cli archive bytes" * 1000)
    up = aws("upload-archive", "--archive-description", "from cli", "--body", str(archive_file))
    assert up["checksum"] == tree_hash(archive_file.read_bytes())
    assert aws("describe-vault")["NumberOfArchives"] == 1

    upload_id = aws("initiate-multipart-upload", "--part-size", str(MIB))["uploadId"]
    data = os.urandom(MIB + 100)
    hashes = upload_parts(aws, upload_id, data, tmp_path)
    listed = aws("list-parts", "--upload-id", upload_id)
    assert [p["SHA256TreeHash"] for p in listed["Parts"]] == hashes
    done = aws(
        "complete-multipart-upload",
        "--upload-id",
        upload_id,
        "--archive-size",
        str(len(data)),
        "--checksum",
        tree_hash(data),
    )
    assert done["checksum"] == tree_hash(data)

    aws("add-tags-to-vault", "--tags", "k=v")
    assert aws("list-tags-for-vault")["Tags"] == {"k": "v"}
    aws("remove-tags-from-vault", "--tag-keys", "k")
    assert aws("list-tags-for-vault").get("Tags", {}) == {}
    vaults = aws("list-vaults", account=ACCOUNT_ID)
    assert "cli" in [v["VaultName"] for v in vaults["VaultList"]]

    abort_me = aws("initiate-multipart-upload", "--part-size", str(MIB))["uploadId"]
    in_progress = aws("list-multipart-uploads")["UploadsList"]
    assert [u["MultipartUploadId"] for u in in_progress] == [abort_me]
    aws("abort-multipart-upload", "--upload-id", abort_me)
    assert aws("list-multipart-uploads").get("UploadsList", []) == []

    for archive_id in (up["archiveId"], done["archiveId"]):
        aws("delete-archive", "--archive-id", archive_id)
    aws("delete-vault")
    aws("wait vault-not-exists")


def test_cli_access_policy_and_vault_lock(server: LiveServer, cli_env: dict[str, str]) -> None:
    aws = Cli(server, cli_env, vault="cli-governance")
    aws("create-vault")
    document = (
        '{"Version":"2012-10-17","Statement":[{"Sid":"no-deletes","Principal":"*",'
        '"Effect":"Deny","Action":"glacier:DeleteArchive","Resource":"*"}]}'
    )
    assert "ResourceNotFoundException" in aws.fails("get-vault-access-policy")
    aws("set-vault-access-policy", "--policy", json.dumps({"Policy": document}))
    assert aws("get-vault-access-policy")["policy"]["Policy"] == document
    aws("delete-vault-access-policy")
    lock_id = aws("initiate-vault-lock", "--policy", json.dumps({"Policy": document}))["lockId"]
    assert aws("get-vault-lock")["State"] == "InProgress"
    aws("complete-vault-lock", "--lock-id", lock_id)
    lock = aws("get-vault-lock")
    assert (lock["State"], lock["Policy"]) == ("Locked", document)
    assert "AccessDeniedException" in aws.fails("abort-vault-lock")
