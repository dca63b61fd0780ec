"""Driving the transfer client (`openglacier vault|archive ...`) against a live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.server import ACCESS_KEY, ACCOUNT_ID, REGION, SECRET_KEY, LiveServer


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def client_env(endpoint: str, tmp_path: Path) -> dict[str, str]:
    """The environment a user would have: AWS credentials, the endpoint, and a
    catalogue in the test's own directory (never the user's)."""
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        OPENGLACIER_ENDPOINT_URL=endpoint,
        OPENGLACIER_CATALOGUE=str(tmp_path / "catalogue.db"),
    )
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "openglacier", *args]


def run(env: dict[str, str], *args: str, timeout: float = 120) -> Run:
    done = subprocess.run(
        command(*args), env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(done.returncode, done.stdout, done.stderr)


def retrieve(server: LiveServer, glacier: Any, vault: str, archive_id: str) -> tuple[bytes, str]:
    """The archive's bytes and the tree hash the server sends with them, through a
    real retrieval job (the instant profile: due at once, run by the admin hook)."""
    job_id = glacier.initiate_job(
        vaultName=vault, jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id}
    )["jobId"]
    assert server.admin("POST", "/jobs/run").status_code == 200
    answer = glacier.get_job_output(vaultName=vault, jobId=job_id)
    return answer["body"].read(), str(answer["checksum"])


def server_archives(server: LiveServer, vault: str) -> dict[str, dict[str, Any]]:
    """The vault's live archives as the server holds them (not waiting for an inventory)."""
    resp = server.admin("GET", f"/vaults/{ACCOUNT_ID}/{vault}/archives")
    assert resp.status_code == 200, resp.text
    return {a["ArchiveId"]: a for a in resp.json()["archives"]}


def parts_on_server(
    glacier: Any, vault: str, count: int, timeout: float = 60
) -> tuple[str, list[str]]:
    """(upload id, ranges) of the vault's one multipart upload once the server has
    accepted `count` parts of it. Polls: the client's requests are in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        uploads = glacier.list_multipart_uploads(vaultName=vault)["UploadsList"]
        if uploads:
            upload_id = uploads[0]["MultipartUploadId"]
            parts = glacier.list_parts(vaultName=vault, uploadId=upload_id)["Parts"]
            if len(parts) >= count:
                return upload_id, sorted(p["RangeInBytes"] for p in parts)
        time.sleep(0.02)  # polling a client's requests in flight, not waiting for a job
    raise AssertionError(f"the server never had {count} parts")
