"""One blob store for everyone (issue 13): the first start records the blob URL
in the metadata store, and a serve or worker started on another blob store is
refused at start with one line naming both, creating nothing. The replica URL
likewise (issue 14): recorded at first start, or when a replica is added to a
deployment that had none (the scrubber then copies the older blobs into it);
a process with another replica, or with none once one is recorded, is refused.

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
from openglacier.treehash import MIB, tree_hash
from support.blobfiles import blob_file
from support.server import LiveServer

pytestmark = pytest.mark.functional


def recorded_urls(data: Path) -> tuple[str | None, str | None]:
    """(blob URL, replica URL) as recorded."""
    store = open_metadata_store(f"sqlite:///{data / 'metadata.db'}")
    try:
        with store.transaction(readonly=True) as tx:
            return tx.recorded_blob_url(), tx.recorded_replica_url()
    finally:
        store.close()


def recorded_url(data: Path) -> str | None:
    return recorded_urls(data)[0]


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


def run(
    command: list[str], data: Path, blob_url: str, replica: str | None = None
) -> subprocess.CompletedProcess[str]:
    replica_args = [] if replica is None else ["--replica-blob-url", replica]
    env = {
        **os.environ,
        "OPENGLACIER_DATA_DIR": str(data),
        "OPENGLACIER_PORT": "0",
        "OPENGLACIER_HOST": "127.0.0.1",
        "OPENGLACIER_LOG_LEVEL": "info",  # the default: still one line
    }
    return subprocess.run(
        [sys.executable, "-m", "openglacier", *command, "--blob-url", blob_url, *replica_args],
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


# --- the replica URL (issue 14) -------------------------------------------------------


@pytest.fixture
def replicated(tmp_path: Path) -> Path:
    """A data dir whose deployment was started once with a file replica, then stopped."""
    replica = f"file://{tmp_path / 'replica'}"
    server = LiveServer(tmp_path / "rdata", extra_env={"OPENGLACIER_REPLICA_BLOB_URL": replica})
    server.start().stop()
    return server.data_dir


def test_the_first_start_records_the_replica_url(replicated: Path, started: Path) -> None:
    replica = f"file://{(replicated.parent / 'replica').resolve()}"
    assert recorded_urls(replicated) == (f"file://{(replicated / 'blobs').resolve()}", replica)
    assert recorded_urls(started)[1] is None  # no replica: none recorded


@pytest.mark.parametrize("command", [["worker"], ["serve"], ["scrub", "now"]])
@pytest.mark.parametrize("other", ["file://{tmp}/replica2", None], ids=["other", "none"])
def test_a_process_with_another_replica_or_none_is_refused_at_start(
    replicated: Path, tmp_path: Path, command: list[str], other: str | None
) -> None:
    other = None if other is None else other.format(tmp=tmp_path)
    before = tree(tmp_path)
    blob_url = f"file://{replicated / 'blobs'}"
    result = run(command, replicated, blob_url, replica=other)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    recorded = f"file://{(tmp_path / 'replica').resolve()}"
    assert line.startswith(f"Error: this deployment's replica blob store is {recorded} ")
    assert f"not {'none' if other is None else canonical_blob_url(other)}:" in line
    assert f"--replica-blob-url {recorded}" in line
    assert result.stdout == ""
    assert tree(tmp_path) == before  # nothing created, the other replica included
    assert recorded_urls(replicated)[1] == recorded


def test_a_replica_added_later_is_recorded_and_filled_by_the_scrubber(
    started: Path, tmp_path: Path
) -> None:
    """Allowed: the scrubber restores every missing replica copy from the
    primary (each one a repaired damage record), so the blobs written before
    the replica get their second copy on the next pass."""
    replica = tmp_path / "replica"
    env = {"OPENGLACIER_REPLICA_BLOB_URL": f"file://{replica}", "OPENGLACIER_SCRUB_RATE": "0"}
    server = LiveServer(started, extra_env={"OPENGLACIER_SCRUB_RATE": "0"}).start()
    try:
        glacier = server.client()
        glacier.create_vault(vaultName="v")
        body = os.urandom(MIB + 7)
        archive = glacier.upload_archive(vaultName="v", body=body, checksum=tree_hash(body))
        server.stop()
        server = LiveServer(started, extra_env=env, port=server.port).start()
        assert recorded_urls(started)[1] == f"file://{replica.resolve()}"
        assert "replica blob store" in server.log()
        assert "scrub now" in server.log()
        (key,) = [p.name for p in (started / "blobs" / "objects").rglob("*") if p.is_file()]
        assert not blob_file(replica, key).exists()
        report = server.admin("POST", "/scrub").json()
        (found,) = report["damage"]
        assert found["ArchiveId"] == archive["archiveId"]
        assert found["repaired_at"] is not None
        assert "restored the replica copy from the primary copy" in found["repair_note"]
        assert blob_file(replica, key).exists()
        # Reads are now served by the replica when the primary copy is gone.
        blob_file(started / "blobs", key).unlink()
        job = glacier.initiate_job(
            vaultName="v",
            jobParameters={"Type": "archive-retrieval", "ArchiveId": archive["archiveId"]},
        )
        assert server.admin("POST", "/jobs/run").status_code == 200
        out = glacier.get_job_output(vaultName="v", jobId=job["jobId"])
        assert out["body"].read() == body
    finally:
        server.stop()


def test_blobs_rewrite_without_the_recorded_replica_is_refused(
    replicated: Path, tmp_path: Path
) -> None:
    """Its re-encrypted copies would go to the primary only."""
    from openglacier.keyring import create_key_file

    keys = create_key_file(tmp_path / "keys.toml")
    env = {
        **os.environ,
        "OPENGLACIER_DATA_DIR": str(replicated),
        "OPENGLACIER_ENCRYPTION_KEY_FILE": str(tmp_path / "keys.toml"),
    }
    before = tree(replicated)
    result = subprocess.run(
        [sys.executable, "-m", "openglacier", "blobs", "rewrite", "--key-id", keys.current],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    (line,) = result.stderr.splitlines()
    recorded = f"file://{(tmp_path / 'replica').resolve()}"
    assert line == (
        f"Error: this deployment's replica blob store is {recorded} (recorded in the "
        f"metadata store), not none: run every serve, worker, scrub and blobs rewrite with "
        f"--replica-blob-url {recorded}"
    )
    assert tree(replicated) == before
