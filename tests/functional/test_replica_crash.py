"""kill -9 of `serve --replica-blob-url ...` during uploads (test_crash.py's check
on the replicated store): every acknowledged archive reads back whole from the
primary copy alone and from the replica copy alone, nothing partial is visible
in either store, and the server takes writes again after restart. The replica
is a second directory, or a SeaweedFS bucket (S3)."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openglacier.ports import BlobStore
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.metadata.store import open_metadata_store
from openglacier.treehash import MIB, tree_hash
from support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed
from support.server import ACCOUNT_ID, LiveServer
from support.uploads import multipart_upload, upload_until_killed

pytestmark = [pytest.mark.slow, pytest.mark.functional]
BUCKET = "blob-contract"  # shared with the contract suites; each test has its prefix
WORKERS = 4


def single_upload(glacier: Any, rng: random.Random) -> tuple[str, str, int]:
    body = rng.randbytes(rng.randrange(1, 3 * MIB))
    resp = glacier.upload_archive(vaultName="crash", body=body)
    assert resp["checksum"] == tree_hash(body)
    return resp["archiveId"], tree_hash(body), len(body)


def multipart(glacier: Any, rng: random.Random) -> tuple[str, str, int]:
    data = rng.randbytes(rng.randrange(MIB + 1, 3 * MIB))
    resp = multipart_upload(glacier, "crash", data)
    return resp["archiveId"], tree_hash(data), len(data)


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


def replicated_server(data_dir: Path, replica: Replica, port: int | None = None) -> LiveServer:
    env = {"OPENGLACIER_REPLICA_BLOB_URL": replica.url, **replica.env}
    if port is None:
        return LiveServer(data_dir, extra_env=env)
    return LiveServer(data_dir, extra_env=env, port=port)


def archive_bytes(store: BlobStore, segments: list[Any]) -> bytes:
    return b"".join(
        b"".join(store.open(s.blob_key)) for s in sorted(segments, key=lambda s: s.offset)
    )


def test_sigkill_loses_no_acknowledged_archive_in_either_copy(
    tmp_path: Path, replica: Replica
) -> None:
    kill_after = random.randrange(8, 20)  # a different kill point each run
    server = replicated_server(tmp_path / "data", replica).start()
    server.client().create_vault(vaultName="crash")
    acknowledged = upload_until_killed(
        server, single_upload, multipart, workers=WORKERS, kill_after=kill_after
    )
    assert len(acknowledged) >= kill_after

    restarted = replicated_server(server.data_dir, replica, port=server.port).start()
    metadata = open_metadata_store(f"sqlite:///{server.data_dir / 'metadata.db'}")
    copies = (FilesystemBlobStore(server.data_dir / "blobs"), replica.open())
    try:
        with metadata.transaction(readonly=True) as tx:
            segments = {
                archive_id: tx.get_segments(archive_id) for archive_id, _, _ in acknowledged
            }
        for archive_id, checksum, size in acknowledged:
            assert segments[archive_id], "an acknowledged archive was lost"
            for copy in copies:  # each copy alone holds the whole archive
                data = archive_bytes(copy, segments[archive_id])
                assert len(data) == size
                assert tree_hash(data) == checksum
        for copy in copies:  # nothing partial became a blob in either store
            keys = list(copy.keys())
            assert keys
            assert all(copy.stat(key) is not None for key in keys)
        audit = restarted.admin("POST", "/audit").json()
        assert audit["problems"] == []
        listed = restarted.admin("GET", f"/vaults/{ACCOUNT_ID}/crash/archives?limit=100000")
        assert audit["checked"] == len(listed.json()["archives"])
        assert list((server.data_dir / "blobs" / "tmp").iterdir()) == []  # swept at start
        resp = restarted.client().upload_archive(vaultName="crash", body=os.urandom(100))
        with metadata.transaction(readonly=True) as tx:
            (new,) = tx.get_segments(resp["archiveId"])
        assert all(copy.stat(new.blob_key) is not None for copy in copies)
    finally:
        for copy in copies:
            copy.close()
        metadata.close()
        restarted.stop()
