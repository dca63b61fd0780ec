"""`openglacier serve --processes N`: several API processes on one port, one store.

The processes share nothing in memory: archives written through one are read
through the other, and concurrent writers of both queue on the SQLite writer
lock file rather than failing with "database is locked".
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from support.server import LiveServer

VAULTS = [f"proc-{i}" for i in range(8)]
ARCHIVES_PER_VAULT = 4


def _api_processes(parent: int) -> list[int]:
    """Children of the supervisor running uvicorn workers (not resource trackers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid"))
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _fill(server: LiveServer, vault: str) -> list[str]:
    client = server.client()
    client.create_vault(vaultName=vault)
    hashes = []
    for n in range(ARCHIVES_PER_VAULT):
        body = os.urandom(1000 + n) + vault.encode()
        client.upload_archive(vaultName=vault, body=body)
        hashes.append(hashlib.sha256(body).hexdigest())
    return hashes


def test_two_processes_share_one_store(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_PROCESSES": "2"}).start()
    try:
        assert server.process is not None
        deadline = time.monotonic() + 30
        while len(_api_processes(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling process start-up
        assert len(_api_processes(server.process.pid)) == 2

        with ThreadPoolExecutor(len(VAULTS)) as pool:
            list(pool.map(lambda vault: _fill(server, vault), VAULTS))

        client = server.client()
        listed = client.list_vaults()["VaultList"]
        assert sorted(v["VaultName"] for v in listed) == VAULTS
        # Instant profile: inventory follows every write, in whichever process.
        for vault in VAULTS:
            assert client.describe_vault(vaultName=vault)["NumberOfArchives"] == ARCHIVES_PER_VAULT

        body = b"read back through any process"
        archive_id = client.upload_archive(vaultName=VAULTS[0], body=body)["archiveId"]
        for _ in range(6):  # new connections land on either process
            job = client.initiate_job(
                vaultName=VAULTS[0],
                jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id},
            )
            # Whichever process answers drains every due job, its own runner's or not.
            assert server.admin("POST", "/jobs/run").status_code == 200
            described = client.describe_job(vaultName=VAULTS[0], jobId=job["jobId"])
            assert described["StatusCode"] == "Succeeded"
            out = client.get_job_output(vaultName=VAULTS[0], jobId=job["jobId"])
            assert out["body"].read() == body
    finally:
        server.stop()
    assert "Traceback" not in server.log()
    assert "database is locked" not in server.log()


def test_manual_clock_refuses_several_processes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "openglacier", "serve", "--processes", "2", "--clock", "manual"],
        env={**os.environ, "OPENGLACIER_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "clock 'manual' needs processes = 1" in result.stderr
