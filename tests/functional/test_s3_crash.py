"""kill -9 of `serve --blob-url s3+http://...` during uploads (test_crash.py's check,
on SeaweedFS's S3 gateway): every acknowledged archive survives whole, nothing
partial is visible in the bucket, and the store takes writes again after restart."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openglacier.storage.blobs.s3 import PART_SIZE
from openglacier.treehash import MIB, tree_hash
from support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed
from support.server import ACCOUNT_ID, LiveServer
from support.uploads import multipart_upload, upload_until_killed

pytestmark = [pytest.mark.slow, pytest.mark.functional]
BUCKET = "blob-contract"  # shared with the contract suites; each test has its prefix
WORKERS = 4


def single_upload(glacier: Any, rng: random.Random) -> tuple[str, str, int]:
    # One in four is past the S3 part size: a multipart upload in the bucket.
    size = PART_SIZE + rng.randrange(1, MIB) if rng.random() < 0.25 else rng.randrange(1, 2 * MIB)
    body = rng.randbytes(size)
    resp = glacier.upload_archive(vaultName="crash", body=body)
    assert resp["checksum"] == tree_hash(body)
    return resp["archiveId"], tree_hash(body), len(body)


def multipart(glacier: Any, rng: random.Random) -> tuple[str, str, int]:
    data = rng.randbytes(rng.randrange(MIB + 1, 3 * MIB))
    resp = multipart_upload(glacier, "crash", data)
    return resp["archiveId"], tree_hash(data), len(data)


@pytest.fixture
def prefix(seaweed_store: Seaweed) -> Iterator[str]:
    name = f"crash/{uuid.uuid4().hex}"
    yield name
    seaweed_store.empty(BUCKET, name)


def s3_server(data_dir: Path, seaweed: Seaweed, prefix: str, port: int | None = None) -> LiveServer:
    env = {
        "OPENGLACIER_BLOB_URL": seaweed.blob_url(BUCKET, prefix),
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": ACCESS_KEY,
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": SECRET_KEY,
        "OPENGLACIER_BLOB_REGION": REGION,
    }
    if port is None:
        return LiveServer(data_dir, extra_env=env)
    return LiveServer(data_dir, extra_env=env, port=port)


def test_sigkill_loses_no_acknowledged_archive_on_s3(
    tmp_path: Path, seaweed_store: Seaweed, prefix: str
) -> None:
    kill_after = random.randrange(8, 16)  # a different kill point each run
    server = s3_server(tmp_path / "data", seaweed_store, prefix).start()
    server.client().create_vault(vaultName="crash")
    acknowledged = upload_until_killed(
        server, single_upload, multipart, workers=WORKERS, kill_after=kill_after
    )
    assert len(acknowledged) >= kill_after

    restarted = s3_server(server.data_dir, seaweed_store, prefix, port=server.port).start()
    try:
        listed = restarted.admin("GET", f"/vaults/{ACCOUNT_ID}/crash/archives?limit=100000")
        live = {a["ArchiveId"]: a for a in listed.json()["archives"]}
        for archive_id, checksum, size in acknowledged:
            assert archive_id in live, "an acknowledged archive was lost"
            assert live[archive_id]["SHA256TreeHash"] == checksum
            assert live[archive_id]["Size"] == size
        audit = restarted.admin("POST", "/audit").json()
        assert audit["checked"] == len(live)
        assert audit["problems"] == []  # every visible archive is whole and verified
        # Nothing partial became an object: every blob in the bucket has a whole
        # header and exactly its length (interrupted writes stay uploads).
        store = seaweed_store.blob_store(BUCKET, prefix)
        try:
            keys = list(store.keys())
            assert keys
            assert all(store.stat(key) is not None for key in keys)
        finally:
            store.close()
        restarted.client().upload_archive(vaultName="crash", body=os.urandom(100))
    finally:
        restarted.stop()
