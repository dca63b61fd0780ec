"""`serve` / `worker` on an s3+http blob store that cannot be used: one line saying
which store and what to do, exit status 1, no traceback, no banner or keys.

(The SQLite metadata store is opened, and migrated, before the blob store today
(server.build_deps), so unlike test_startup_errors these do not check that
nothing was created; its migration log lines are kept out at level warning.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_startup_errors import run_cli

from support.seaweed import Seaweed
from support.server import free_port

pytestmark = pytest.mark.functional


QUIET = {"OPENGLACIER_LOG_LEVEL": "warning"}


def assert_one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: blob store s3+http://")
    assert result.stdout == ""  # no banner, no credentials
    return lines[0]


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unreachable_s3_endpoint_is_one_line(tmp_path: Path, command: str) -> None:
    url = f"s3+http://127.0.0.1:{free_port()}/archive"
    env = {
        **QUIET,
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": "K",
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": "hunter2",
    }
    line = assert_one_line(run_cli([command, "--blob-url", url], tmp_path / "data", **env))
    assert "cannot reach http://127.0.0.1:" in line
    assert "--blob-url" in line
    assert "hunter2" not in line


def test_wrong_s3_keys_are_one_line(tmp_path: Path, seaweed_store: Seaweed) -> None:
    env = {
        **QUIET,
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": "nobody",
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": "hunter2",
    }
    url = seaweed_store.blob_url("blob-contract", "startup")
    line = assert_one_line(run_cli(["serve", "--blob-url", url], tmp_path / "data", **env))
    assert "access denied" in line
    assert "OPENGLACIER_BLOB_SECRET_ACCESS_KEY" in line
    assert "hunter2" not in line
