"""kill -9 during uploads and multipart completes: nothing acknowledged is lost and
nothing partial becomes visible (design principle 3, issue 2 acceptance)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

from openglacier.treehash import MIB, tree_hash
from support.server import ACCOUNT_ID, LiveServer
from support.uploads import multipart_upload, upload_until_killed

pytestmark = pytest.mark.slow
KILL_AFTER = 24  # acknowledged operations before the kill
WORKERS = 6


def single_upload(glacier: Any, rng: random.Random) -> tuple[str, str, int]:
    body = rng.randbytes(rng.randrange(1, 3 * MIB))
    resp = glacier.upload_archive(vaultName="crash", body=body)
    assert resp["checksum"] == tree_hash(body)
    return resp["archiveId"], tree_hash(body), len(body)


def multipart(glacier: Any, rng: random.Random) -> tuple[str, str, int]:
    data = rng.randbytes(rng.randrange(MIB + 1, 4 * MIB))
    resp = multipart_upload(glacier, "crash", data)
    return resp["archiveId"], tree_hash(data), len(data)


def test_sigkill_loses_no_acknowledged_archive(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data").start()
    server.client().create_vault(vaultName="crash")
    acknowledged = upload_until_killed(
        server, single_upload, multipart, workers=WORKERS, kill_after=KILL_AFTER
    )
    assert len(acknowledged) >= KILL_AFTER

    restarted = LiveServer(server.data_dir, port=server.port).start()
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
        leftovers = list((server.data_dir / "blobs" / "tmp").iterdir())
        assert leftovers == []  # crash leftovers were swept at start
        # The store is writable again after recovery.
        restarted.client().upload_archive(vaultName="crash", body=os.urandom(100))
    finally:
        restarted.stop()
