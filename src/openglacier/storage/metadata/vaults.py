"""Vaults, their tags and their inventory bookkeeping (spec 5)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, func, select, update

from openglacier.errors import StorageError
from openglacier.records import InventorySnapshot, Vault
from openglacier.storage.metadata.base import TxBase, values_of
from openglacier.storage.metadata.schema import (
    archive_segments,
    archives,
    inventories,
    job_segments,
    jobs,
    parts,
    uploads,
    vault_access_policies,
    vault_locks,
    vault_notifications,
    vault_tags,
    vaults,
)

# The hottest statement (every vault-scoped operation), built once: SQLAlchemy
# then finds it in its compiled cache without rebuilding the expression.
_VAULT = select(vaults).where(
    vaults.c.account_id == bindparam("account_id"),
    vaults.c.region == bindparam("region"),
    vaults.c.name == bindparam("name"),
)
# SQLite renders no FOR UPDATE: its BEGIN IMMEDIATE already serialises.
_VAULT_FOR_UPDATE = _VAULT.with_for_update()
# By id: read while completing every job (its notifications name the vault).
_VAULT_BY_ID = select(vaults).where(vaults.c.id == bindparam("vault_id"))
_VAULT_BY_ID_FOR_UPDATE = _VAULT_BY_ID.with_for_update()


def _vault(row: Row[Any]) -> Vault:
    return Vault(**row._mapping)


def _snapshot(row: Row[Any]) -> InventorySnapshot:
    return InventorySnapshot(**row._mapping)


class VaultOps(TxBase):
    def get_vault(
        self, account_id: str, region: str, name: str, *, for_update: bool = False
    ) -> Vault | None:
        params = {"account_id": account_id, "region": region, "name": name}
        row = self._first(_VAULT_FOR_UPDATE if for_update else _VAULT, params)
        return None if row is None else _vault(row)

    def get_vault_by_id(self, vault_id: int, *, for_update: bool = False) -> Vault | None:
        stmt = _VAULT_BY_ID_FOR_UPDATE if for_update else _VAULT_BY_ID
        row = self._first(stmt, {"vault_id": vault_id})
        return None if row is None else _vault(row)

    def create_vault(self, account_id: str, region: str, name: str, now: datetime) -> Vault:
        # ON CONFLICT DO NOTHING makes concurrent creates of one name converge on
        # a single row (PostgreSQL waits for the other inserter, then skips).
        self._run(
            self._insert(vaults)
            .values(
                account_id=account_id,
                region=region,
                name=name,
                created_at=now,
                write_seq=0,
                live_count=0,
                live_size=0,
                inventory_seq=0,
                inventory_date=None,
                inventory_count=0,
                inventory_size=0,
                last_write_at=None,
            )
            .on_conflict_do_nothing(index_elements=["account_id", "region", "name"])
        )
        vault = self.get_vault(account_id, region, name)
        if vault is None:
            raise StorageError(f"vault {name!r} vanished while being created")
        return vault

    def count_vaults(self, account_id: str, region: str) -> int:
        stmt = select(func.count()).where(
            vaults.c.account_id == account_id, vaults.c.region == region
        )
        return int(self._scalar(stmt))

    def list_vaults(
        self, account_id: str, region: str, start_name: str | None, limit: int
    ) -> list[Vault]:
        stmt = select(vaults).where(vaults.c.account_id == account_id, vaults.c.region == region)
        if start_name is not None:
            stmt = stmt.where(vaults.c.name >= start_name)
        return [_vault(r) for r in self._rows(stmt.order_by(vaults.c.name).limit(limit))]

    def delete_vault(self, vault_id: int, now: datetime) -> None:
        upload_ids = select(uploads.c.upload_id).where(uploads.c.vault_id == vault_id)
        archive_ids = select(archives.c.archive_id).where(archives.c.vault_id == vault_id)
        self._queue_blobs_from(parts.c.blob_key, parts.c.upload_id.in_(upload_ids), now)
        self._queue_blobs_from(
            archive_segments.c.blob_key, archive_segments.c.archive_id.in_(archive_ids), now
        )
        self._delete_jobs_of(vault_id, now)
        # Children first: foreign keys are enforced on both engines.
        self._run(delete(parts).where(parts.c.upload_id.in_(upload_ids)))
        self._run(delete(uploads).where(uploads.c.vault_id == vault_id))
        self._run(delete(archive_segments).where(archive_segments.c.archive_id.in_(archive_ids)))
        self._run(delete(archives).where(archives.c.vault_id == vault_id))
        self._run(delete(vault_tags).where(vault_tags.c.vault_id == vault_id))
        self._run(delete(vault_notifications).where(vault_notifications.c.vault_id == vault_id))
        self._run(delete(vault_access_policies).where(vault_access_policies.c.vault_id == vault_id))
        self._run(delete(vault_locks).where(vault_locks.c.vault_id == vault_id))
        self._run(delete(inventories).where(inventories.c.vault_id == vault_id))
        self._run(delete(vaults).where(vaults.c.id == vault_id))

    def _delete_jobs_of(self, vault_id: int, now: datetime) -> None:
        job_ids = select(jobs.c.job_id).where(jobs.c.vault_id == vault_id)
        pinned = job_segments.c.job_id.in_(job_ids)
        self._queue_blobs_from(job_segments.c.blob_key, pinned, now)
        self._run(delete(job_segments).where(pinned))
        outputs = and_(jobs.c.vault_id == vault_id, jobs.c.output_blob_key.is_not(None))
        self._queue_blobs_from(jobs.c.output_blob_key, outputs, now)
        self._run(delete(jobs).where(jobs.c.vault_id == vault_id))

    def record_write(self, vault_id: int, count_delta: int, size_delta: int, now: datetime) -> int:
        # One UPDATE ... RETURNING: concurrent writers each get their own seq.
        stmt = (
            update(vaults)
            .where(vaults.c.id == vault_id)
            .values(
                write_seq=vaults.c.write_seq + 1,
                live_count=vaults.c.live_count + count_delta,
                live_size=vaults.c.live_size + size_delta,
                last_write_at=now,
            )
            .returning(vaults.c.write_seq)
        )
        seq = self._scalar(stmt)
        if seq is None:
            raise StorageError(f"record_write: vault {vault_id} does not exist")
        return int(seq)

    def take_inventory(self, vault_id: int, now: datetime) -> InventorySnapshot | None:
        # Sizes are raw archive bytes; the domain adds the per-archive overhead.
        stmt = (
            update(vaults)
            .where(vaults.c.id == vault_id, vaults.c.write_seq > vaults.c.inventory_seq)
            .values(
                inventory_seq=vaults.c.write_seq,
                inventory_date=now,
                inventory_count=vaults.c.live_count,
                inventory_size=vaults.c.live_size,
            )
            .returning(vaults.c.inventory_seq, vaults.c.inventory_count, vaults.c.inventory_size)
        )
        row = self._first(stmt)
        if row is None:
            return None
        snapshot = InventorySnapshot(
            vault_id=vault_id,
            seq=int(row.inventory_seq),
            taken_at=now,
            archive_count=int(row.inventory_count),
            size_in_bytes=int(row.inventory_size),
        )
        self._run(inventories.insert().values(values_of(snapshot)))
        # Removed archives stay listed until an inventory no longer shows them.
        self._run(
            delete(archives).where(
                archives.c.vault_id == vault_id, archives.c.removed_seq <= snapshot.seq
            )
        )
        return snapshot

    def vaults_due_for_inventory(self, not_after: datetime, limit: int) -> list[int]:
        last = func.coalesce(vaults.c.inventory_date, vaults.c.created_at)
        stmt = (
            select(vaults.c.id)
            .where(vaults.c.write_seq > vaults.c.inventory_seq, last <= not_after)
            .order_by(last, vaults.c.id)
            .limit(limit)
        )
        return [int(r.id) for r in self._rows(stmt)]

    def all_vault_ids(self) -> list[int]:
        return [int(r.id) for r in self._rows(select(vaults.c.id).order_by(vaults.c.id))]

    def latest_inventory(self, vault_id: int) -> InventorySnapshot | None:
        stmt = (
            select(inventories)
            .where(inventories.c.vault_id == vault_id)
            .order_by(inventories.c.seq.desc())
            .limit(1)
        )
        row = self._first(stmt)
        return None if row is None else _snapshot(row)

    def get_tags(self, vault_id: int) -> dict[str, str]:
        stmt = select(vault_tags.c.key, vault_tags.c.value).where(vault_tags.c.vault_id == vault_id)
        return {r.key: r.value for r in self._rows(stmt.order_by(vault_tags.c.key))}

    def put_tags(self, vault_id: int, tags: dict[str, str]) -> None:
        if not tags:
            return
        stmt = self._insert(vault_tags)
        stmt = stmt.on_conflict_do_update(
            index_elements=["vault_id", "key"], set_={"value": stmt.excluded.value}
        )
        rows = [{"vault_id": vault_id, "key": k, "value": v} for k, v in tags.items()]
        self._run(stmt, rows)

    def delete_tags(self, vault_id: int, keys: Sequence[str]) -> None:
        if keys:
            self._run(
                delete(vault_tags).where(
                    vault_tags.c.vault_id == vault_id, vault_tags.c.key.in_(list(keys))
                )
            )
