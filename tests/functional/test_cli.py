"""`openglacier serve` start-up output and generated keys; `openglacier keys`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from support.server import LiveServer


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
