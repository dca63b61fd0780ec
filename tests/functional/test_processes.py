"""`openglacier serve --processes N`: several API processes on one port, one store.

The processes share nothing in memory: archives written through one are read
through the other, and concurrent writers of both queue on the SQLite writer
lock file rather than failing with "database is locked".
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openglacier.cli.processes import MIN_UPTIME
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


def _wait_for_api_processes(
    parent: int, count: int, exclude: frozenset[int] = frozenset()
) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [pid for pid in _api_processes(parent) if pid not in exclude]
        if len(found) >= count:
            return found
        time.sleep(0.05)  # polling process start-up
    raise AssertionError(f"fewer than {count} API processes after 30 s")


def _listening_inodes(port: int) -> set[str]:
    """Inodes of TCP sockets listening on `port` (any address, IPv4 or IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            found.add(target[len("socket:[") : -1])
    return found


def _wait_until_listening(pids: list[int], port: int) -> list[set[str]]:
    """Each process's listening sockets on `port`, once every process has one."""
    deadline = time.monotonic() + 30
    while True:
        listening = _listening_inodes(port)
        owned = [_socket_inodes(pid) & listening for pid in pids]
        if all(owned) or time.monotonic() > deadline:
            return owned
        time.sleep(0.05)  # polling process start-up


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
        _wait_for_api_processes(server.process.pid, 2)
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


def test_each_process_listens_on_its_own_socket(tmp_path: Path) -> None:
    """SO_REUSEPORT: the kernel spreads connections across the processes' sockets.
    With one shared socket, a burst of connections could all land on one process
    (the supervisor's own socket is bound but never listens, so it gets none)."""
    server = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_PROCESSES": "2"}).start()
    try:
        assert server.process is not None
        children = _wait_for_api_processes(server.process.pid, 2)
        owned = _wait_until_listening(children, server.port)
        assert all(len(inodes) == 1 for inodes in owned), owned
        assert owned[0] != owned[1]
        assert not _socket_inodes(server.process.pid) & _listening_inodes(server.port)
    finally:
        server.stop()


def test_a_dead_process_is_replaced(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_PROCESSES": "2"}).start()
    try:
        assert server.process is not None
        first = _wait_for_api_processes(server.process.pid, 2)
        time.sleep(MIN_UPTIME)  # younger than this, a death counts as a failed start
        os.kill(first[0], signal.SIGKILL)
        replacement = _wait_for_api_processes(server.process.pid, 1, exclude=frozenset(first))
        assert len(_api_processes(server.process.pid)) == 2
        assert len(_wait_until_listening(replacement, server.port)[0]) == 1
        assert len(_listening_inodes(server.port)) == 2  # the dead one's socket is gone
        client = server.client()
        for n in range(8):  # new connections, whichever process they reach
            client.create_vault(vaultName=f"after-{n}")
        assert len(client.list_vaults()["VaultList"]) == 8
        supervisor = server.process
    finally:
        server.stop()
    assert supervisor.returncode == 0  # SIGTERM is a clean stop, after a replacement too


def test_api_processes_end_with_a_killed_supervisor(tmp_path: Path) -> None:
    """SIGKILL leaves the supervisor no chance to stop them: the kernel tells them
    (PR_SET_PDEATHSIG), so no orphan keeps serving a share of the port."""
    server = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_PROCESSES": "2"}).start()
    try:
        assert server.process is not None
        children = _wait_for_api_processes(server.process.pid, 2)
        _wait_until_listening(children, server.port)
        server.kill()
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in children):
            assert time.monotonic() < deadline, "API processes outlived their supervisor"
            time.sleep(0.05)  # polling process exit
        assert not _listening_inodes(server.port)
    finally:
        server.stop()


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "openglacier", "serve", "--processes", "2"],
            env={
                **os.environ,
                "OPENGLACIER_DATA_DIR": str(tmp_path / "data"),
                "OPENGLACIER_PORT": str(port),
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


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
