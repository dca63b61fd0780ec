"""Fill a metadata store for the scale scenario through the metadata layer.

The API would take hours to create 100,000 jobs or a million archives on this
machine, so rows are written directly with the store's own operations (and, for
the archives, a bulk insert into the same table), then a vault inventory is taken
exactly as maintenance would take it. The server is started afterwards.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta

from bench.servers import ACCOUNT_ID
from openglacier.ids import new_archive_id, new_job_id
from openglacier.records import Job, JobAction, JobStatus
from openglacier.storage.metadata.schema import archives
from openglacier.storage.metadata.store import SqlMetadataStore, open_metadata_store

REGION = "us-east-1"
BATCH = 20_000


def populate(url: str, *, jobs: dict[str, int], vaults: int, archive_count: int) -> dict[str, str]:
    """Vaults named in `jobs` get that many completed jobs; `vaults` more vaults exist;
    vault "inventory" holds `archive_count` archives and an inventory of them."""
    store = open_metadata_store(url)
    now = datetime.now(UTC)
    try:
        for name, count in jobs.items():
            with store.transaction() as tx:
                vault = tx.create_vault(ACCOUNT_ID, REGION, name, now)
                for index in range(count):
                    tx.insert_job(_job(vault.id, now - timedelta(milliseconds=count - index)))
        with store.transaction() as tx:
            for index in range(vaults):
                tx.create_vault(ACCOUNT_ID, REGION, f"many-{index:06d}", now)
        with store.transaction() as tx:
            vault = tx.create_vault(ACCOUNT_ID, REGION, "inventory", now)
            seq = tx.record_write(vault.id, archive_count, archive_count * 4096, now)
        _bulk_archives(store, vault.id, seq, archive_count, now)
        with store.transaction() as tx:
            tx.take_inventory(vault.id, now + timedelta(seconds=1))
    finally:
        store.close()
    return {"inventory_vault": "inventory"}


def _job(vault_id: int, created: datetime) -> Job:
    return Job(
        job_id=new_job_id(),
        vault_id=vault_id,
        action=JobAction.ARCHIVE,
        status=JobStatus.SUCCEEDED,
        created_at=created,
        due_at=created,
        tier="Standard",
        status_message="Succeeded",
        completed_at=created,
        archive_id=new_archive_id(),
        archive_size=4096,
        archive_tree_hash=secrets.token_hex(32),
        range_start=0,
        range_end=4095,
        range_tree_hash=secrets.token_hex(32),
    )


def _bulk_archives(
    store: SqlMetadataStore, vault_id: int, seq: int, count: int, now: datetime
) -> None:
    tree_hash = secrets.token_hex(32)
    with store.engine.begin() as conn:
        for start in range(0, count, BATCH):
            rows = [
                {
                    "archive_id": new_archive_id(),
                    "vault_id": vault_id,
                    "description": f"backup {index}",
                    "size": 4096,
                    "tree_hash": tree_hash,
                    "sha256": None,
                    "created_at": now - timedelta(seconds=count - index),
                    "added_seq": seq,
                    "removed_seq": None,
                }
                for index in range(start, min(count, start + BATCH))
            ]
            conn.execute(archives.insert(), rows)


if __name__ == "__main__":  # a quick manual check of the populating speed
    import tempfile
    import time

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        began = time.perf_counter()
        populate(
            f"sqlite:///{tmp}/m.db",
            jobs={"a": 100, "b": 10_000},
            vaults=1000,
            archive_count=100_000,
        )
        print(f"populated in {time.perf_counter() - began:.1f} s")
