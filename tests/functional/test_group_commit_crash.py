"""SIGKILL while a server commits queued writes together (SQLite group commit,
storage/metadata/group_commit.py): nothing acknowledged is lost.

Twelve clients pound one server with small writes that share commits: archive
retrievals (InitiateJob), small UploadArchive calls and DeleteArchive of their
own uploads, while the instant profile's runner completes the jobs in its own
transactions. The server is SIGKILLed at a random moment (a random count of
acknowledged writes, different each round), restarted on the same data, and
pounded again, three times. After each restart every acknowledged job is
still described, every acknowledged upload is listed with its hash and size
(unless its deletion was acknowledged), every acknowledged deletion stays
deleted, and the audit finds every visible archive whole.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from openglacier.treehash import tree_hash
from support.kills import Step, kill_mid_requests
from support.server import ACCOUNT_ID, LiveServer

pytestmark = pytest.mark.slow

VAULT = "group-commit"
CLIENTS = 12
ROUNDS = 3


@dataclass
class Acknowledged:
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> archive id
    uploads: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (hash, size)
    deleted: set[str] = field(default_factory=set)
    deleting: set[str] = field(default_factory=set)  # asked for; maybe done, maybe not
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        return len(self.jobs) + len(self.uploads) + len(self.deleted)


def one_write(glacier: Any, rng: random.Random, base: str, acked: Acknowledged) -> None:
    """One InitiateJob, UploadArchive or DeleteArchive; recorded once answered."""
    roll = rng.random()
    if roll < 0.6:
        job = glacier.initiate_job(
            vaultName=VAULT, jobParameters={"Type": "archive-retrieval", "ArchiveId": base}
        )
        with acked.lock:
            acked.jobs[job["jobId"]] = base
        return
    with acked.lock:
        mine = [a for a in acked.uploads if a not in acked.deleted]
    if roll < 0.8 and mine:
        victim = rng.choice(mine)
        with acked.lock:
            acked.deleting.add(victim)
        glacier.delete_archive(vaultName=VAULT, archiveId=victim)
        with acked.lock:
            acked.deleted.add(victim)
        return
    body = rng.randbytes(rng.randrange(1, 64 * 1024))
    resp = glacier.upload_archive(vaultName=VAULT, body=body)
    with acked.lock:
        acked.uploads[resp["archiveId"]] = (tree_hash(body), len(body))


def pound_until_killed(server: LiveServer, base: str, acked: Acknowledged, kill_at: int) -> None:
    def client(seed: int) -> Step:
        rng, glacier = random.Random(seed), server.client()

        def step() -> bool:
            one_write(glacier, rng, base, acked)
            return acked.count() >= kill_at

        return step

    kill_mid_requests(server, [client(os.getpid() * 100 + i) for i in range(CLIENTS)], timeout=120)


def check(server: LiveServer, acked: Acknowledged) -> None:
    glacier = server.client()
    for job_id, archive_id in acked.jobs.items():
        described = glacier.describe_job(vaultName=VAULT, jobId=job_id)
        assert described["ArchiveId"] == archive_id, "an acknowledged job was lost"
    listed = server.admin("GET", f"/vaults/{ACCOUNT_ID}/{VAULT}/archives?limit=100000")
    live = {a["ArchiveId"]: a for a in listed.json()["archives"]}
    for archive_id, (checksum, size) in acked.uploads.items():
        if archive_id in acked.deleted:
            assert archive_id not in live, "an acknowledged deletion was undone"
            continue
        if archive_id in acked.deleting:
            continue  # its deletion was cut off by the kill: either outcome is right
        assert archive_id in live, "an acknowledged archive was lost"
        assert (live[archive_id]["SHA256TreeHash"], live[archive_id]["Size"]) == (checksum, size)
    audit = server.admin("POST", "/audit").json()
    assert audit["problems"] == []


def test_sigkill_during_group_commits_loses_no_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random()
    data_dir = tmp_path / "data"
    env = {"OPENGLACIER_TIMING": "instant"}
    server = LiveServer(data_dir, extra_env=env).start()
    glacier = server.client()
    glacier.create_vault(vaultName=VAULT)
    base = glacier.upload_archive(vaultName=VAULT, body=b"retrieved again and again")["archiveId"]
    acked = Acknowledged()
    try:
        for _ in range(ROUNDS):
            kill_at = acked.count() + rng.randrange(30, 200)
            pound_until_killed(server, base, acked, kill_at)
            server = LiveServer(data_dir, extra_env=env, port=server.port).start()
            check(server, acked)
        assert len(acked.jobs) > 30
        assert len(acked.uploads) > 5
        assert acked.deleted
    finally:
        server.stop()
