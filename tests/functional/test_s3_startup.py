"""`serve` / `worker` on an s3+http blob store that cannot be used: one line saying
which store and what to do, exit status 1, no traceback, no banner or keys, and
the data dir as it was: a new SQLite metadata store is created only once the blob
store opened (server.build_deps)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import URL
from test_startup_errors import run_cli

from support.seaweed import Seaweed
from support.server import free_port
from support.services import fresh_pg_database

pytestmark = pytest.mark.functional


QUIET = {"OPENGLACIER_LOG_LEVEL": "warning"}


@dataclass(frozen=True)
class DataDir:
    path: Path
    before: dict[str, tuple[int, bytes]] | None


@pytest.fixture(params=["new", "existing"])
def data(request: pytest.FixtureRequest, tmp_path: Path) -> DataDir:
    """A data dir that does not exist yet, or one that exists holding the
    operator's own file: a failed start must leave it exactly as it was."""
    path = tmp_path / "data"
    if request.param == "existing":
        path.mkdir(mode=0o700)
        (path / "notes.txt").write_text("the operator's\n")
        (path / "notes.txt").chmod(0o600)  # (a start tightens what others may read)
    return DataDir(path, snapshot(path))


def snapshot(path: Path) -> dict[str, tuple[int, bytes]] | None:
    if not path.exists():
        return None
    return {
        str(p.relative_to(path)): (p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
        for p in sorted(path.rglob("*"))
    }


def assert_one_line(result: subprocess.CompletedProcess[str], data: DataDir) -> str:
    assert result.returncode == 1, result.stderr
    # Nothing made: no metadata.db, no keys, no admin token, no blobs directory.
    assert snapshot(data.path) == data.before
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: blob store s3+http://")
    assert result.stdout == ""  # no banner, no credentials
    return lines[0]


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unreachable_s3_endpoint_is_one_line(data: DataDir, command: str) -> None:
    url = f"s3+http://127.0.0.1:{free_port()}/archive"
    env = {
        **QUIET,
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": "K",
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": "hunter2",
    }
    line = assert_one_line(run_cli([command, "--blob-url", url], data.path, **env), data)
    assert "cannot reach http://127.0.0.1:" in line
    assert "--blob-url" in line
    assert "hunter2" not in line


def test_wrong_s3_keys_are_one_line(data: DataDir, seaweed_store: Seaweed) -> None:
    env = {
        **QUIET,
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": "nobody",
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": "hunter2",
    }
    url = seaweed_store.blob_url("blob-contract", "startup")
    line = assert_one_line(run_cli(["serve", "--blob-url", url], data.path, **env), data)
    assert "access denied" in line
    assert "OPENGLACIER_BLOB_SECRET_ACCESS_KEY" in line
    assert "hunter2" not in line


@pytest.mark.postgres
def test_an_unreachable_s3_endpoint_with_postgresql_metadata(data: DataDir, pg_admin: URL) -> None:
    """A worker or API node of a cluster (metadata in PostgreSQL) makes its data dir
    only once the blob store opened."""
    url = f"s3+http://127.0.0.1:{free_port()}/archive"
    env = {
        **QUIET,
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": "K",
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": "S",
    }
    with fresh_pg_database(pg_admin) as metadata:
        args = ["worker", "--blob-url", url, "--metadata-url", metadata]
        line = assert_one_line(run_cli(args, data.path, **env), data)
    assert "cannot reach http://127.0.0.1:" in line
