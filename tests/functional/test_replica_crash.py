"""kill -9 of `serve --replica-blob-url ...` during uploads (test_crash.py's check
on the replicated store): every acknowledged archive reads back whole from the
primary copy alone and from the replica copy alone, nothing partial is visible
in either store, and the server takes writes again after restart. The replica
is a second directory, or a SeaweedFS bucket (S3)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openglacier.ports import BlobStore
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.metadata.store import open_metadata_store
from openglacier.treehash import tree_hash
from support.crash import ServerFactory, check_recovered, crash_and_restart
from support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed
from support.server import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.functional]
BUCKET = "blob-contract"  # shared with the contract suites; each test has its prefix
WORKERS = 4


class Replica:
    """Where the replica lives: its URL for the server, a store to read it alone."""

    def __init__(self, url: str, env: dict[str, str], opener: Any) -> None:
        self.url, self.env, self.open = url, env, opener


@pytest.fixture(params=["file", "s3"])
def replica(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Replica]:
    if request.param == "file":
        root = tmp_path / "replica"
        yield Replica(f"file://{root}", {}, lambda: FilesystemBlobStore(root))
        return
    seaweed: Seaweed = request.getfixturevalue("seaweed_store")
    prefix = f"replica-crash/{uuid.uuid4().hex}"
    env = {
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": ACCESS_KEY,
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": SECRET_KEY,
        "OPENGLACIER_BLOB_REGION": REGION,
    }
    yield Replica(seaweed.blob_url(BUCKET, prefix), env, lambda: seaweed.blob_store(BUCKET, prefix))
    seaweed.empty(BUCKET, prefix)


def replicated_server(replica: Replica) -> ServerFactory:
    env = {"OPENGLACIER_REPLICA_BLOB_URL": replica.url, **replica.env}

    def server_for(data_dir: Path, port: int | None) -> LiveServer:
        if port is None:
            return LiveServer(data_dir, extra_env=env)
        return LiveServer(data_dir, extra_env=env, port=port)

    return server_for


def archive_bytes(store: BlobStore, segments: list[Any]) -> bytes:
    return b"".join(
        b"".join(store.open(s.blob_key)) for s in sorted(segments, key=lambda s: s.offset)
    )


def test_sigkill_loses_no_acknowledged_archive_in_either_copy(
    tmp_path: Path, replica: Replica
) -> None:
    kill_after = random.randrange(8, 20)  # a different kill point each run
    crash = crash_and_restart(
        replicated_server(replica), tmp_path / "data", workers=WORKERS, kill_after=kill_after
    )
    metadata = open_metadata_store(f"sqlite:///{crash.data_dir / 'metadata.db'}")
    copies = (FilesystemBlobStore(crash.data_dir / "blobs"), replica.open())
    try:
        with metadata.transaction(readonly=True) as tx:
            segments = {
                archive_id: tx.get_segments(archive_id) for archive_id, _, _ in crash.acknowledged
            }
        for archive_id, checksum, size in crash.acknowledged:
            assert segments[archive_id], "an acknowledged archive was lost"
            for copy in copies:  # each copy alone holds the whole archive
                data = archive_bytes(copy, segments[archive_id])
                assert len(data) == size
                assert tree_hash(data) == checksum
        for copy in copies:  # nothing partial became a blob in either store
            keys = list(copy.keys())
            assert keys
            assert all(copy.stat(key) is not None for key in keys)
        new_id = check_recovered(crash)
        with metadata.transaction(readonly=True) as tx:
            (new,) = tx.get_segments(new_id)
        assert all(copy.stat(new.blob_key) is not None for copy in copies)
    finally:
        for copy in copies:
            copy.close()
        metadata.close()
        crash.restarted.stop()
