"""The kill -9 check shared by the crash tests (test_crash.py, one store;
test_replica_crash.py, a replicated one): upload from several threads into
vault "crash", SIGKILL the server mid-request, restart it on the same data,
and check what it serves (`check_recovered`)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openglacier.treehash import MIB, tree_hash
from support.server import ACCOUNT_ID, LiveServer
from support.uploads import multipart_upload, upload_until_killed

VAULT = "crash"
Acknowledged = list[tuple[str, str, int]]  # (archive id, tree hash, size)
# A server on a data dir; on the given port when restarted (None: a free one).
ServerFactory = Callable[[Path, int | None], LiveServer]


def single_upload(glacier: Any, rng: random.Random) -> tuple[str, str, int]:
    body = rng.randbytes(rng.randrange(1, 3 * MIB))
    resp = glacier.upload_archive(vaultName=VAULT, body=body)
    assert resp["checksum"] == tree_hash(body)
    return resp["archiveId"], tree_hash(body), len(body)


def multipart(glacier: Any, rng: random.Random) -> tuple[str, str, int]:
    data = rng.randbytes(rng.randrange(MIB + 1, 3 * MIB))
    resp = multipart_upload(glacier, VAULT, data)
    return resp["archiveId"], tree_hash(data), len(data)


@dataclass
class Crash:
    restarted: LiveServer  # started on the crashed server's data and port
    acknowledged: Acknowledged

    @property
    def data_dir(self) -> Path:
        return self.restarted.data_dir


def crash_and_restart(
    server_for: ServerFactory, data_dir: Path, *, workers: int, kill_after: int
) -> Crash:
    """Start, upload until `kill_after` uploads were acknowledged, SIGKILL, restart."""
    server = server_for(data_dir, None).start()
    server.client().create_vault(vaultName=VAULT)
    acknowledged = upload_until_killed(
        server, single_upload, multipart, workers=workers, kill_after=kill_after
    )
    assert len(acknowledged) >= kill_after
    return Crash(server_for(data_dir, server.port).start(), acknowledged)


def check_recovered(crash: Crash) -> str:
    """Every acknowledged archive listed with its hash and size, every visible
    archive whole (the audit), no temp leftovers, and the server takes writes
    again: the new archive's id."""
    server = crash.restarted
    listed = server.admin("GET", f"/vaults/{ACCOUNT_ID}/{VAULT}/archives?limit=100000")
    live = {a["ArchiveId"]: a for a in listed.json()["archives"]}
    for archive_id, checksum, size in crash.acknowledged:
        assert archive_id in live, "an acknowledged archive was lost"
        assert live[archive_id]["SHA256TreeHash"] == checksum
        assert live[archive_id]["Size"] == size
    audit = server.admin("POST", "/audit").json()
    assert audit["checked"] == len(live)
    assert audit["problems"] == []  # every visible archive is whole and verified
    assert list((crash.data_dir / "blobs" / "tmp").iterdir()) == []  # swept at start
    resp = server.client().upload_archive(vaultName=VAULT, body=os.urandom(100))
    return str(resp["archiveId"])
