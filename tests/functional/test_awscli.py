"""The AWS CLI (`aws glacier ... --endpoint-url`) against a live server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from openglacier.treehash import MIB, tree_hash
from support.server import ACCOUNT_ID, LiveServer


def aws(server: LiveServer, env: dict[str, str], *args: str) -> dict:  # type: ignore[type-arg]
    exe = shutil.which("aws", path=os.path.dirname(sys.executable)) or "aws"
    proc = subprocess.run(
        [exe, "glacier", *args, "--endpoint-url", server.endpoint, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def test_cli_vault_archive_multipart(
    server: LiveServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    created = aws(server, cli_env, "create-vault", "--account-id", "-", "--vault-name", "cli")
    assert created["location"] == f"/{ACCOUNT_ID}/vaults/cli"
    aws(server, cli_env, "wait", "vault-exists", "--account-id", "-", "--vault-name", "cli")
    archive_file = tmp_path / "a.bin"
    archive_file.write_bytes(b"cli archive bytes" * 1000)
    up = aws(
        server,
        cli_env,
        "upload-archive",
        "--account-id",
        "-",
        "--vault-name",
        "cli",
        "--archive-description",
        "from cli",
        "--body",
        str(archive_file),
    )
    assert up["checksum"] == tree_hash(archive_file.read_bytes())
    desc = aws(server, cli_env, "describe-vault", "--account-id", "-", "--vault-name", "cli")
    assert desc["NumberOfArchives"] == 1

    init = aws(
        server,
        cli_env,
        "initiate-multipart-upload",
        "--account-id",
        "-",
        "--vault-name",
        "cli",
        "--part-size",
        str(MIB),
    )
    upload_id = init["uploadId"]
    data = os.urandom(MIB + 100)
    hashes = []
    for first in (0, MIB):
        piece = tmp_path / f"part{first}"
        piece.write_bytes(data[first : first + MIB])
        last = first + len(piece.read_bytes()) - 1
        r = aws(
            server,
            cli_env,
            "upload-multipart-part",
            "--account-id",
            "-",
            "--vault-name",
            "cli",
            "--upload-id",
            upload_id,
            "--range",
            f"bytes {first}-{last}/*",
            "--body",
            str(piece),
        )
        hashes.append(r["checksum"])
    listed = aws(
        server,
        cli_env,
        "list-parts",
        "--account-id",
        "-",
        "--vault-name",
        "cli",
        "--upload-id",
        upload_id,
    )
    assert [p["SHA256TreeHash"] for p in listed["Parts"]] == hashes
    done = aws(
        server,
        cli_env,
        "complete-multipart-upload",
        "--account-id",
        "-",
        "--vault-name",
        "cli",
        "--upload-id",
        upload_id,
        "--archive-size",
        str(len(data)),
        "--checksum",
        tree_hash(data),
    )
    assert done["checksum"] == tree_hash(data)

    aws(
        server,
        cli_env,
        "add-tags-to-vault",
        "--account-id",
        "-",
        "--vault-name",
        "cli",
        "--tags",
        "k=v",
    )
    tags = aws(server, cli_env, "list-tags-for-vault", "--account-id", "-", "--vault-name", "cli")
    assert tags["Tags"] == {"k": "v"}
    aws(
        server,
        cli_env,
        "remove-tags-from-vault",
        "--account-id",
        "-",
        "--vault-name",
        "cli",
        "--tag-keys",
        "k",
    )
    vaults = aws(server, cli_env, "list-vaults", "--account-id", ACCOUNT_ID)
    assert "cli" in [v["VaultName"] for v in vaults["VaultList"]]
    for archive_id in (up["archiveId"], done["archiveId"]):
        aws(
            server,
            cli_env,
            "delete-archive",
            "--account-id",
            "-",
            "--vault-name",
            "cli",
            "--archive-id",
            archive_id,
        )
    abort_me = aws(
        server,
        cli_env,
        "initiate-multipart-upload",
        "--account-id",
        "-",
        "--vault-name",
        "cli",
        "--part-size",
        str(MIB),
    )["uploadId"]
    aws(
        server,
        cli_env,
        "abort-multipart-upload",
        "--account-id",
        "-",
        "--vault-name",
        "cli",
        "--upload-id",
        abort_me,
    )
    aws(server, cli_env, "list-multipart-uploads", "--account-id", "-", "--vault-name", "cli")
    aws(server, cli_env, "delete-vault", "--account-id", "-", "--vault-name", "cli")
    aws(server, cli_env, "wait", "vault-not-exists", "--account-id", "-", "--vault-name", "cli")
