"""Start-up errors, through the real CLI: one line saying what is wrong and what to
do, no traceback, the documented exit status, and nothing created: no data dir,
no metadata.db, no credentials printed or written."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from support.server import LiveServer

UNREACHABLE_PG = "postgresql://og:hunter2@127.0.0.1:1/glacier"  # nothing listens on port 1

BAD_SETTINGS = [
    pytest.param(["serve", "--blob-url", "s3://bucket/x"], "blob_url", id="serve-s3-blobs"),
    pytest.param(["serve", "--metadata-url", "mysql://db/x"], "metadata_url", id="serve-mysql"),
    pytest.param(
        ["serve", "--metadata-url", "sqlite://"], "metadata_url", id="serve-sqlite-no-file"
    ),
    pytest.param(["worker", "--blob-url", "s3://bucket/x"], "blob_url", id="worker-s3-blobs"),
    pytest.param(["keys", "list", "--metadata-url", "mysql://db/x"], "metadata_url", id="keys"),
    pytest.param(["keys", "create", "--blob-url", "s3://b"], "blob_url", id="keys-create"),
    pytest.param(["accounts", "create", "--metadata-url", "mysql://db"], "metadata_url", id="acct"),
    pytest.param(["accounts", "list", "--blob-url", "s3://b"], "blob_url", id="accounts-list"),
    pytest.param(["policies", "list", "--metadata-url", "mysql://db"], "metadata_url", id="pol"),
]

ENVIRONMENT_PROBLEMS = ["serve", "worker", "keys list", "keys create", "accounts create"]


def run_cli(args: list[str], data: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openglacier", *args],
        env={
            **os.environ,
            "OPENGLACIER_DATA_DIR": str(data),
            "OPENGLACIER_ACCESS_KEY_ID": "",
            "OPENGLACIER_SECRET_ACCESS_KEY": "",
            "OPENGLACIER_ACCOUNT_ID": "",
            "OPENGLACIER_ADMIN_TOKEN": "",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_and_nothing_made(
    result: subprocess.CompletedProcess[str], data: Path, status: int
) -> str:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert result.stdout == ""  # no banner, no credentials
    assert not data.exists(), sorted(p.name for p in data.iterdir())
    return lines[0]


@pytest.mark.parametrize(("args", "setting"), BAD_SETTINGS)
def test_a_bad_setting_is_one_line_and_creates_nothing(
    tmp_path: Path, args: list[str], setting: str
) -> None:
    data = tmp_path / "data"
    line = assert_one_line_and_nothing_made(run_cli(args, data), data, 2)
    assert setting in line
    assert "use " in line  # what to use instead


@pytest.mark.parametrize("command", ENVIRONMENT_PROBLEMS)
def test_an_unreachable_postgresql_is_one_line_and_creates_nothing(
    tmp_path: Path, command: str
) -> None:
    data = tmp_path / "data"
    result = run_cli([*command.split(), "--metadata-url", UNREACHABLE_PG], data)
    line = assert_one_line_and_nothing_made(result, data, 1)
    assert "Connection refused" in line
    assert "--metadata-url" in line
    assert "hunter2" not in line  # the URL is shown with its password masked
    assert "og:***@127.0.0.1:1" in line


@pytest.fixture
def missing_database(pg_admin: URL) -> str:
    return pg_admin.set(database=f"og_missing_{uuid.uuid4().hex[:12]}").render_as_string(
        hide_password=False
    )


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["serve", "worker", "keys list"])
def test_a_missing_postgresql_database_says_to_create_it(
    tmp_path: Path, missing_database: str, command: str
) -> None:
    data = tmp_path / "data"
    result = run_cli([*command.split(), "--metadata-url", missing_database], data)
    line = assert_one_line_and_nothing_made(result, data, 1)
    name = missing_database.rsplit("/", 1)[1]
    assert f'database "{name}" does not exist' in line
    assert f"createdb {name}" in line


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_taken_port_fails_before_any_credentials(tmp_path: Path, processes: str) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--processes", processes, "--port", str(port)], data)
    line = assert_one_line_and_nothing_made(result, data, 1)
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in line
    assert "--port" in line


def test_a_port_served_by_several_processes_is_taken_for_another_server(tmp_path: Path) -> None:
    """SO_REUSEPORT would let a second `serve --processes 2` share the port with a
    running one (same user); it must be refused like any taken port."""
    first = LiveServer(tmp_path / "first", extra_env={"OPENGLACIER_PROCESSES": "2"}).start()
    try:
        data = tmp_path / "second"
        result = run_cli(["serve", "--processes", "2", "--port", str(first.port)], data)
        line = assert_one_line_and_nothing_made(result, data, 1)
        assert "Address already in use" in line
        result = run_cli(["serve", "--port", str(first.port)], data)
        assert_one_line_and_nothing_made(result, data, 1)
    finally:
        first.stop()
