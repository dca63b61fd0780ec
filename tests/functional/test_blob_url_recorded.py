"""One blob store for everyone (issue 13): the first start records the blob URL
in the metadata store, and a serve or worker started on another blob store is
refused at start with one line naming both, creating nothing.

Before this, a worker started on another directory marked inventory jobs
Succeeded whose output the API nodes could never read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from openglacier.storage.blob_url import BlobStoreMismatchError, canonical_blob_url
from openglacier.storage.metadata.store import open_metadata_store
from support.server import LiveServer

pytestmark = pytest.mark.functional


def recorded_url(data: Path) -> str | None:
    store = open_metadata_store(f"sqlite:///{data / 'metadata.db'}")
    try:
        with store.transaction(readonly=True) as tx:
            return tx.recorded_blob_url()
    finally:
        store.close()


def tree(root: Path) -> set[str]:
    """Every path below `root` (SQLite's -wal and -shm files come and go with
    connections, whoever opens the database)."""
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if not p.name.endswith(("-wal", "-shm"))
    }


@pytest.fixture
def started(tmp_path: Path) -> Path:
    """A data dir whose deployment was started once (on DATA/blobs), then stopped."""
    server = LiveServer(tmp_path / "data").start()
    server.stop()
    return server.data_dir


def run(command: list[str], data: Path, blob_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OPENGLACIER_DATA_DIR": str(data),
        "OPENGLACIER_PORT": "0",
        "OPENGLACIER_HOST": "127.0.0.1",
        "OPENGLACIER_LOG_LEVEL": "info",  # the default: still one line
    }
    return subprocess.run(
        [sys.executable, "-m", "openglacier", *command, "--blob-url", blob_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_first_start_records_the_blob_url(started: Path) -> None:
    assert recorded_url(started) == f"file://{(started / 'blobs').resolve()}"


@pytest.mark.parametrize("command", [["worker"], ["serve"], ["serve", "--processes", "2"]])
@pytest.mark.parametrize(
    "other",
    ["file://{tmp}/elsewhere", "s3+http://127.0.0.1:1/other-bucket/prefix"],
    ids=["file", "s3"],
)
def test_a_process_on_another_blob_store_is_refused_at_start(
    started: Path, tmp_path: Path, command: list[str], other: str
) -> None:
    other = other.format(tmp=tmp_path)
    before = tree(started)
    result = run(command, started, other)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("Error: ")
    recorded = f"file://{(started / 'blobs').resolve()}"
    assert recorded in line
    assert canonical_blob_url(other) in line
    assert "openglacier blobs migrate --to URL" in line
    assert result.stdout == ""  # no banner, no credentials
    # Nothing created: not the other store, nothing in the data dir, no worker
    # session (the s3 endpoint is never contacted: nothing listens on port 1).
    assert not (tmp_path / "elsewhere").exists()
    assert tree(started) == before
    assert recorded_url(started) == recorded


def test_the_same_store_spelled_otherwise_is_the_same_store(started: Path) -> None:
    from openglacier.config import Settings
    from openglacier.server import build_deps

    spelled = f"file://{started}/../{started.name}/blobs/"
    deps = build_deps(Settings(data_dir=started, blob_url=spelled))
    deps.store.close()
    deps.blobs.close()
    with pytest.raises(BlobStoreMismatchError):
        build_deps(Settings(data_dir=started, blob_url=f"file://{started}/blobs2"))


def test_canonical_form() -> None:
    same = [
        "s3+http://Seaweed.local:8333/bucket/a/b",
        "s3+http://seaweed.local:8333/bucket/a/b/",
        "s3+http://seaweed.local:8333//bucket//a/b",
    ]
    assert {canonical_blob_url(u) for u in same} == {"s3+http://seaweed.local:8333/bucket/a/b"}
    assert canonical_blob_url("s3+http://h/b") == canonical_blob_url("s3+http://h:80/b")
    assert canonical_blob_url("s3+https://h/b") == "s3+https://h:443/b"
    assert canonical_blob_url("s3+http://h/b") != canonical_blob_url("s3+https://h/b")
    assert canonical_blob_url("s3+http://h/b/p") != canonical_blob_url("s3+http://h/b/q")
    assert canonical_blob_url("s3+http://h:1/b") != canonical_blob_url("s3+http://h:2/b")
    assert canonical_blob_url("file:///srv/og/../og/blobs/") == "file:///srv/og/blobs"
