"""kill -9 during uploads, multipart uploads, completes and deletes, several times;
then one restart and one maintenance pass past the orphan age leave no blob that
nothing refers to, and every acknowledged archive intact (issue 12).

A crash between a blob's commit and its metadata's leaves an orphan (design 3);
the SIGKILLs make some at random, and one more is planted the way such a crash
leaves it, so the collector always has work. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from openglacier.ids import new_blob_key
from openglacier.storage.blobs import put_blob
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.treehash import MIB, tree_hash
from support.kills import Step, kill_mid_requests
from support.server import ACCOUNT_ID, LiveServer, free_port
from support.services import fresh_pg_database
from support.uploads import multipart_upload

pytestmark = pytest.mark.slow
CYCLES = 6  # about one natural orphan per cycle, more or less (issue 12: 85 in 100)
WORKERS = 6
VAULT = "crash"
PAST_ORPHAN_AGE = 25 * 3600  # the default minimum age is 24 hours

# Written independently of the collector's own query: every column naming a blob.
REFERENCED = text(
    "SELECT blob_key FROM archive_segments UNION SELECT blob_key FROM parts"
    " UNION SELECT blob_key FROM job_segments UNION SELECT blob_key FROM blob_deletes"
    " UNION SELECT output_blob_key FROM jobs WHERE output_blob_key IS NOT NULL"
)


@dataclass
class Ledger:
    """What clients were told: archives acknowledged, deletes maybe done."""

    acked: dict[str, tuple[str, int]] = field(default_factory=dict)
    maybe_deleted: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def metadata(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[dict[str, str], str]]:
    """The server's environment for the engine, and a URL to inspect its rows."""
    if request.param == "sqlite":
        yield {}, f"sqlite:///{tmp_path / 'data' / 'metadata.db'}"
        return
    with fresh_pg_database(request.getfixturevalue("pg_admin")) as url:
        yield {"OPENGLACIER_METADATA_URL": url}, url


def one_operation(glacier: Any, rng: random.Random, mine: list[str], ledger: Ledger) -> None:
    """An upload, a multipart upload or a delete of one of this worker's archives."""
    choice = rng.random()
    if choice < 0.2 and mine:
        archive_id = mine.pop(rng.randrange(len(mine)))
        with ledger.lock:
            ledger.maybe_deleted.add(archive_id)  # in flight: may or may not happen
        glacier.delete_archive(vaultName=VAULT, archiveId=archive_id)
        return
    if choice < 0.6:
        data = rng.randbytes(rng.randrange(1, 2 * MIB))
        archive_id = glacier.upload_archive(vaultName=VAULT, body=data)["archiveId"]
    else:
        data = rng.randbytes(rng.randrange(MIB + 1, 4 * MIB))
        archive_id = multipart_upload(glacier, VAULT, data)["archiveId"]
    mine.append(archive_id)
    with ledger.lock:
        ledger.acked[archive_id] = (tree_hash(data), len(data))


def run_until_killed(server: LiveServer, ledger: Ledger, seed: int) -> None:
    """Workers write until a random number of operations succeeded, then SIGKILL."""
    kill_after = random.Random(seed).randrange(4, 16)
    done = [0]

    def worker(worker_seed: int) -> Step:
        rng, glacier, mine = random.Random(worker_seed), server.client(), []

        def step() -> bool:
            one_operation(glacier, rng, mine, ledger)
            with ledger.lock:
                done[0] += 1
                return done[0] >= kill_after

        return step

    kill_mid_requests(server, [worker(seed * 100 + i) for i in range(WORKERS)], timeout=300)


def unreferenced_blobs(data_dir: Path, metadata_url: str) -> set[str]:
    blobs = FilesystemBlobStore(data_dir / "blobs")
    engine = create_engine(metadata_url)
    try:
        with engine.connect() as conn:
            referenced = {str(row[0]) for row in conn.execute(REFERENCED)}
    finally:
        engine.dispose()
    return set(blobs.keys()) - referenced


def test_orphans_of_sigkills_are_collected_and_nothing_acknowledged_is_lost(
    tmp_path: Path, metadata: tuple[dict[str, str], str]
) -> None:
    env, metadata_url = metadata
    data_dir = tmp_path / "data"
    ledger = Ledger()
    port = free_port()
    for cycle in range(CYCLES):
        server = LiveServer(data_dir, extra_env=env, port=port).start()
        if cycle == 0:
            server.client().create_vault(vaultName=VAULT)
        run_until_killed(server, ledger, seed=cycle)
    # What a process killed right after committing a blob leaves behind.
    put_blob(FilesystemBlobStore(data_dir / "blobs"), new_blob_key(), [os.urandom(1000)])
    orphans = unreferenced_blobs(data_dir, metadata_url)
    assert orphans

    manual = {**env, "OPENGLACIER_CLOCK": "manual"}
    restarted = LiveServer(data_dir, extra_env=manual, port=port).start()
    try:
        assert restarted.admin("POST", "/maintenance").status_code == 200
        assert orphans <= unreferenced_blobs(data_dir, metadata_url)  # too young yet
        assert restarted.admin("POST", "/clock/advance", {"seconds": PAST_ORPHAN_AGE}).is_success
        assert restarted.admin("POST", "/maintenance").status_code == 200
        assert unreferenced_blobs(data_dir, metadata_url) == set()

        listed = restarted.admin("GET", f"/vaults/{ACCOUNT_ID}/{VAULT}/archives?limit=100000")
        live = {a["ArchiveId"]: a for a in listed.json()["archives"]}
        for archive_id, (checksum, size) in ledger.acked.items():
            if archive_id in ledger.maybe_deleted:
                continue
            assert archive_id in live, "an acknowledged archive was lost"
            assert (live[archive_id]["SHA256TreeHash"], live[archive_id]["Size"]) == (
                checksum,
                size,
            )
        audit = restarted.admin("POST", "/audit").json()
        assert audit == {"checked": len(live), "problems": []}
    finally:
        restarted.stop()
