"""The console over plain HTTP: bad input gets a clear page (never a 500), the
page scripts' Glacier proxy checks hashes as the API does, and the console
can be turned off."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from support.server import ACCESS_KEY, SECRET_KEY, LiveServer


@contextmanager
def signed_in(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.endpoint, follow_redirects=False) as client:
        sign_in(client)
        yield client


def sign_in(client: httpx.Client) -> None:
    form = client.get("/console/signin")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post(
        "/console/signin",
        data={"login_token": token.group(1), "access_key_id": ACCESS_KEY, "secret": SECRET_KEY},
    )
    assert answer.status_code == 303, answer.text


def csrf_of(client: httpx.Client) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/vaults").text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    "path",
    [
        "/console/vaults/a%20b",
        "/console/vaults/" + "v" * 300,
        "/console/vaults/x/archives?min=12abc",
        "/console/vaults/x/archives?from=yesterday",
        "/console/vaults/x/archives?cursor=%25%25",
        "/console/vaults/x/jobs?state=Nope",
        "/console/vaults/x/jobs/not-a-job",
        "/console/vaults/x/archives/not-an-archive",
        "/console/usage?days=0",
        "/console/usage?days=abc",
        "/console/damage?state=weird",
        "/console/static/../app.py",
        "/console/static/nothing.css",
    ],
)
def test_bad_input_gets_a_clear_page_never_a_500(server: LiveServer, path: str) -> None:
    server.client().create_vault(vaultName="x")
    with signed_in(server) as client:
        answer = client.get(path)
    assert 400 <= answer.status_code < 500 or answer.status_code == 200, answer.text
    assert "Traceback" not in answer.text


def test_forms_of_the_wrong_kind_or_size_are_refused_cleanly(server: LiveServer) -> None:
    with signed_in(server) as client:
        token = csrf_of(client)
        as_json = client.post(
            "/console/vaults", json={"vault_name": "j"}, headers={"x-csrf-token": token}
        )
        assert as_json.status_code == 415
        huge = client.post(
            "/console/vaults", data={"vault_name": "h", "csrf_token": token, "pad": "x" * 70_000}
        )
        assert huge.status_code == 413
        bad_name = client.post("/console/vaults", data={"vault_name": "a b", "csrf_token": token})
        assert bad_name.status_code == 400  # the API's own answer, shown on the page
        assert "vault name" in bad_name.text.lower()
        foreign = client.post(
            "/console/vaults",
            data={"vault_name": "o", "csrf_token": token},
            headers={"origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
    names = [v["VaultName"] for v in server.client().list_vaults()["VaultList"]]
    assert not {"j", "h", "a b", "o"} & set(names)


def test_the_proxy_checks_part_hashes_like_the_api(server: LiveServer) -> None:
    server.client().create_vault(vaultName="proxied")
    base = "/console/api/-/vaults/proxied/multipart-uploads"
    with signed_in(server) as client:
        token = csrf_of(client)
        headers = {"x-amz-glacier-version": "2012-06-01", "x-csrf-token": token}
        started = client.post(base, headers={**headers, "x-amz-part-size": "1048576"})
        assert started.status_code == 201
        upload = started.headers["x-amz-multipart-upload-id"]
        part = {**headers, "content-range": "bytes 0-2/*"}
        linear = hashlib.sha256(b"abc").hexdigest()
        wrong_tree = client.put(
            f"{base}/{upload}",
            content=b"abc",
            headers={**part, "x-amz-sha256-tree-hash": "0" * 64, "x-amz-content-sha256": linear},
        )
        assert wrong_tree.status_code == 400, wrong_tree.text
        assert wrong_tree.json()["code"] == "InvalidParameterValueException"
        wrong_linear = client.put(
            f"{base}/{upload}",
            content=b"abc",
            headers={**part, "x-amz-sha256-tree-hash": linear, "x-amz-content-sha256": "0" * 64},
        )
        assert wrong_linear.status_code == 403
        assert wrong_linear.json()["code"] == "InvalidSignatureException"
        parts = client.get(f"{base}/{upload}", headers=headers).json()["Parts"]
        assert parts == []  # neither was stored
        no_csrf = client.post(base, headers={"x-amz-glacier-version": "2012-06-01"})
        assert no_csrf.status_code == 403


def test_the_console_can_be_turned_off(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_CONSOLE": "off"}).start()
    try:
        answer = httpx.get(f"{server.endpoint}/console/signin")
        assert answer.status_code == 400, answer.text  # a Glacier path now: refused
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["code"] == "MissingAuthenticationTokenException"
    finally:
        server.stop()


def test_vault_access_policies_apply_to_console_pages(server: LiveServer) -> None:
    client = server.client()
    client.create_vault(vaultName="denied")
    arn = client.describe_vault(vaultName="denied")["VaultARN"]
    statement = {
        "Sid": "no-describe",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "glacier:DescribeVault",
        "Resource": arn,
    }
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    client.set_vault_access_policy(vaultName="denied", policy={"Policy": policy})
    with signed_in(server) as console:
        page = console.get("/console/vaults/denied")
        archives = console.get("/console/vaults/denied/archives")
    assert page.status_code == 403
    assert "explicit deny" in page.text  # the API's AccessDenied message, on a page
    assert archives.status_code == 403  # the live list needs DescribeVault too
    with pytest.raises(ClientError) as info:  # as the API itself answers
        client.describe_vault(vaultName="denied")
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"


def test_the_usage_page_prices_with_the_config_files_table(tmp_path: Path) -> None:
    config = tmp_path / "openglacier.toml"
    config.write_text('[prices]\ncurrency = "EUR"\nupload_per_1000 = 2000.0\n')
    server = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_CONFIG": str(config)}).start()
    try:
        server.client().create_vault(vaultName="priced")
        server.client().upload_archive(vaultName="priced", body=b"one upload")
        assert server.admin("POST", "/maintenance").status_code == 200
        with signed_in(server) as client:
            page = client.get("/console/usage")
        assert page.status_code == 200
        cost = re.search(r'id="usage-cost">([0-9.]+) (\w+)<', page.text)
        assert cost is not None
        assert cost.group(2) == "EUR"
        assert float(cost.group(1)) >= 2.0  # one upload at 2,000 per 1,000
    finally:
        server.stop()


def test_a_bad_price_table_stops_serve_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "openglacier.toml"
    config.write_text("[prices]\nupload_per_1000 = -1\n")
    env = {**os.environ, "OPENGLACIER_CONFIG": str(config), "OPENGLACIER_PORT": "0"}
    run = subprocess.run(
        [sys.executable, "-m", "openglacier", "serve", "--data-dir", str(tmp_path / "d")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "upload_per_1000" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
