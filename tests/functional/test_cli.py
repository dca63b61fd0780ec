"""`openglacier serve` start-up output and generated keys; `openglacier keys`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from support.server import LiveServer, free_port


def openglacier(*args: str, data_dir: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "openglacier", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_generated_root_credentials_are_kept_and_printed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        "OPENGLACIER_ACCESS_KEY_ID": "",
        "OPENGLACIER_SECRET_ACCESS_KEY": "",
        "OPENGLACIER_ACCOUNT_ID": "",
        "OPENGLACIER_ADMIN_TOKEN": "",
    }
    first = LiveServer(data, extra_env=env).start()
    first.stop()
    stored = json.loads((data / "credentials.json").read_text())
    assert (data / "credentials.json").stat().st_mode & 0o777 == 0o600
    banner = first.log()
    assert stored["access_key_id"] in banner
    assert stored["secret_access_key"] in banner
    assert stored["account_id"] in banner
    assert f"--endpoint-url {first.endpoint}" in banner
    assert "aws glacier" in banner
    second = LiveServer(data, extra_env=env).start()
    try:
        client = boto3.client(
            "glacier",
            endpoint_url=second.endpoint,
            region_name="us-east-1",
            aws_access_key_id=stored["access_key_id"],
            aws_secret_access_key=stored["secret_access_key"],
        )
        location = client.create_vault(vaultName="kept")["location"]
        assert location == f"/{stored['account_id']}/vaults/kept"
    finally:
        second.stop()


def test_keys_create_list_delete_with_separate_accounts(tmp_path: Path) -> None:
    config = tmp_path / "og.toml"
    config.write_text("credential_cache_seconds = 0\n")  # deletions take effect at once
    server = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_CONFIG": str(config)}).start()
    try:
        out = openglacier(
            "keys",
            "create",
            "--account-id",
            "444455556666",
            "--description",
            "other",
            data_dir=server.data_dir,
        )
        lines = {ln.rsplit(None, 1)[0].strip(): ln.rsplit(None, 1)[1] for ln in out.splitlines()}
        key, secret = lines["access key id"], lines["secret access key"]
        assert lines["account id"] == "444455556666"
        other = boto3.client(
            "glacier",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )
        assert other.create_vault(vaultName="mine")["location"] == "/444455556666/vaults/mine"
        # Accounts are separate namespaces.
        root_vaults = [v["VaultName"] for v in server.client().list_vaults()["VaultList"]]
        assert "mine" not in root_vaults
        listing = openglacier("keys", "list", data_dir=server.data_dir)
        assert key in listing
        assert "444455556666" in listing
        assert secret not in listing
        openglacier("keys", "delete", key, data_dir=server.data_dir)
        assert key not in openglacier("keys", "list", data_dir=server.data_dir)
        with pytest.raises(ClientError) as info:
            other.list_vaults()
        assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
    finally:
        server.stop()


def test_keys_list_shows_whole_ids_and_times_and_json(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = openglacier(
        "keys", "create", "--account-id", "444455556666", "--description", "x" * 60, data_dir=data
    )
    key = out.split()[3]
    # Not a terminal: rich lays the table out in 80 columns.
    listing = openglacier("keys", "list", data_dir=data)
    row = next(line for line in listing.splitlines() if "444455556666" in line)
    assert key in row
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row), row
    assert "…" not in listing  # nothing cut, the long description folds
    [as_json] = [
        json.loads(line)
        for line in openglacier("keys", "list", "--json", data_dir=data).splitlines()
    ]
    assert as_json["AccessKeyId"] == key
    assert as_json["AccountId"] == "444455556666"
    assert as_json["Description"] == "x" * 60
    assert as_json["IsRoot"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", as_json["CreationDate"])
    assert not any("ecret" in name for name in as_json)
    accounts = openglacier("accounts", "list", "--json", data_dir=data).splitlines()
    assert [json.loads(line) for line in accounts] == [
        {"AccountId": "444455556666", "AccessKeys": 1}
    ]


@pytest.mark.parametrize("processes", ["1", "2"])
def test_the_banner_is_printed_once_the_server_listens(tmp_path: Path, processes: str) -> None:
    """Reading the banner, a client can connect at once: every process serves."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "openglacier", "serve", "--processes", processes],
        env={
            **os.environ,
            "OPENGLACIER_DATA_DIR": str(tmp_path / "data"),
            "OPENGLACIER_PORT": str(port),
            "OPENGLACIER_LOG_LEVEL": "warning",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"on http://127.0.0.1:{port}" in first
        assert httpx.get(f"http://127.0.0.1:{port}/_admin/health").status_code == 200
        if processes == "2":
            listening = _listening_sockets(port)
            assert listening == 2, listening
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()


def _listening_sockets(port: int) -> int:
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count
