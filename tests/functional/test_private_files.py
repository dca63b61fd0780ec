"""The data dir holds every access key's secret: 0700, its files 0600, whatever the
umask; looser modes left by an older version are tightened at start, with one
WARNING line naming them. Secrets and URL passwords are never printed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import httpx
import pytest

from openglacier.auth.credentials import RootKeys
from openglacier.cli.main import print_banner
from openglacier.config import load_settings
from support.server import free_port

FILES = ["metadata.db", "metadata.db-wal", "metadata.db-shm", "credentials.json", "admin-token"]


@contextmanager
def serving(data: Path, umask: int, log: Path) -> Iterator[str]:
    """`openglacier serve` started with `umask`, generating its own keys and token."""
    port = free_port()
    env = {
        **os.environ,
        "OPENGLACIER_DATA_DIR": str(data),
        "OPENGLACIER_PORT": str(port),
        "OPENGLACIER_LOG_LEVEL": "warning",
        "OPENGLACIER_ACCESS_KEY_ID": "",
        "OPENGLACIER_SECRET_ACCESS_KEY": "",
        "OPENGLACIER_ACCOUNT_ID": "",
        "OPENGLACIER_ADMIN_TOKEN": "",
    }
    endpoint = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "openglacier", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            umask=umask,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(endpoint + "/_admin/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)  # polling a process start-up
        yield endpoint
    finally:
        process.terminate()
        process.wait(15)


def upload_one(data: Path, endpoint: str) -> None:
    """A vault and an archive: metadata (and its WAL) and a blob are written."""
    keys = json.loads((data / "credentials.json").read_text())
    glacier = boto3.client(
        "glacier",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=keys["access_key_id"],
        aws_secret_access_key=keys["secret_access_key"],
    )
    glacier.create_vault(vaultName="private")
    glacier.upload_archive(vaultName="private", body=b"secret bytes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(data: Path) -> None:
    assert mode(data) == 0o700
    assert mode(data / "blobs") == 0o700
    for name in FILES:
        assert mode(data / name) == 0o600, name


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_a_new_data_dir_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    data = tmp_path / "data"
    log = tmp_path / "server.log"
    with serving(data, umask, log) as endpoint:
        upload_one(data, endpoint)
        assert_private(data)  # -wal and -shm exist while the server runs
    assert "tightened permissions" not in log.read_text()  # nothing had to be fixed


def test_loose_modes_are_tightened_at_start_with_one_warning(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving(data, 0o022, tmp_path / "first.log") as endpoint:
        upload_one(data, endpoint)
    # As an older version (or a careless copy) left them.
    os.chmod(data, 0o755)
    os.chmod(data / "blobs", 0o755)
    for name in ("metadata.db", "credentials.json", "admin-token"):
        os.chmod(data / name, 0o644)
    log = tmp_path / "second.log"
    with serving(data, 0o022, log):
        assert_private(data)
    text = log.read_text().splitlines()
    warnings = [line for line in text if "openglacier.storage tightened permissions" in line]
    assert len(warnings) == 1, warnings
    for name in ("blobs", "metadata.db", "credentials.json", "admin-token"):
        assert f"{data / name} (0" in warnings[0]
    assert f"{data} (0755 -> 0700)" in warnings[0]


def test_the_banner_masks_the_database_password(capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings({"metadata_url": "postgresql://og:hunter2@db.example/glacier"})
    print_banner(settings, RootKeys("OGAKX", "sekrit", "123456789012"), "tok")
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "postgresql://og:***@db.example/glacier" in out


def test_the_banner_does_not_print_configured_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(
        {"access_key_id": "OGAKX", "secret_access_key": "sekrit", "admin_token": "admintok"}
    )
    print_banner(settings, RootKeys("OGAKX", "sekrit", "123456789012"), "admintok")
    out = capsys.readouterr().out
    assert "OGAKX" in out
    assert "sekrit" not in out
    assert "admintok" not in out
