"""`serve` / `worker` with a --replica-blob-url that cannot be used: one line
naming the replica and the flag to fix, no traceback, no banner or keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_startup_errors import run_cli

from support.server import free_port

pytestmark = pytest.mark.functional

QUIET = {"OPENGLACIER_LOG_LEVEL": "warning"}


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unreachable_s3_replica_is_one_line(tmp_path: Path, command: str) -> None:
    url = f"s3+http://127.0.0.1:{free_port()}/replica"
    env = {
        **QUIET,
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": "K",
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": "hunter2",
    }
    result = run_cli([command, "--replica-blob-url", url], tmp_path / "data", **env)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: replica blob store s3+http://127.0.0.1:")
    assert "cannot reach" in line
    assert "--replica-blob-url is right" in line
    assert "hunter2" not in line
    assert result.stdout == ""


def test_the_blob_store_itself_as_replica_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    spelled = f"file://{data}/x/../blobs/"  # the default blob store, spelled otherwise
    result = run_cli(["serve", "--replica-blob-url", spelled], data, **QUIET)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert "is the blob store itself" in line
    assert "--replica-blob-url" in line
