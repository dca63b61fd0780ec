"""Damage records (domain/damage.py) and the scrubber's state row and blob
walk (domain/scrub/)."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Row,
    Select,
    String,
    bindparam,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)

from openglacier.ports import DamageRecord, ScrubState, ScrubTarget
from openglacier.records import UploadState
from openglacier.storage.metadata.base import TxBase
from openglacier.storage.metadata.schema import (
    DESCRIPTION,
    archive_segments,
    archives,
    damage_records,
    parts,
    scrub_state,
    uploads,
)

_ROW = 1  # the scrub state's one row
# Read on every GetJobOutput: built once, so a request pays no statement
# construction or cache-key generation for it.
_OPEN_DAMAGE = (
    select(damage_records)
    .where(
        damage_records.c.archive_id == bindparam("archive_id"),
        damage_records.c.repaired_at.is_(None),
        damage_records.c.quarantined.is_(True),
    )
    .order_by(damage_records.c.id)
    .limit(1)
)
_STATE_FIELDS = tuple(f.name for f in fields(ScrubState))


def _record(row: Row[Any]) -> DamageRecord:
    return DamageRecord(**row._mapping)


def _state(row: Row[Any]) -> ScrubState:
    mapping = row._mapping
    return ScrubState(**{name: mapping[name] for name in _STATE_FIELDS})


def _text(value: str) -> str:
    """Free text fits its column on PostgreSQL too (VARCHAR(1024) refuses more)."""
    return value if len(value) <= DESCRIPTION else value[: DESCRIPTION - 3] + "..."


def _target_selects() -> list[Select[Any]]:
    """(key, size, leaves, vault, archive, upload) per kind of verified blob."""
    seg, prt, none = archive_segments.c, parts.c, literal(None, String())
    return [
        select(seg.blob_key, seg.size, seg.leaf_hashes, archives.c.vault_id, seg.archive_id, none)
        .join(archives, archives.c.archive_id == seg.archive_id)
        .where(archives.c.removed_seq.is_(None)),
        select(prt.blob_key, prt.size, prt.leaf_hashes, uploads.c.vault_id, none, prt.upload_id)
        .join(uploads, uploads.c.upload_id == prt.upload_id)
        .where(uploads.c.state == UploadState.ACTIVE.value),
    ]


class DamageOps(TxBase):
    # --- damage records ---------------------------------------------------------
    def record_damage(self, finding: DamageRecord) -> DamageRecord:
        existing = self.open_damage_for_blob(finding.blob_key)
        if existing is not None:
            quarantined = existing.quarantined or finding.quarantined
            self._run(
                update(damage_records)
                .where(damage_records.c.id == existing.id)
                .values(last_seen_at=finding.found_at, quarantined=quarantined)
            )
            return DamageRecord(
                **{**asdict(existing), "last_seen_at": finding.found_at, "quarantined": quarantined}
            )
        values = asdict(finding)
        values.pop("id")
        values["problem"] = _text(finding.problem)
        if finding.repair_note is not None:
            values["repair_note"] = _text(finding.repair_note)
        row = self._first(damage_records.insert().values(values).returning(damage_records.c.id))
        assert row is not None
        return DamageRecord(**{**values, "id": int(row[0])})

    def open_damage(self, archive_id: str) -> DamageRecord | None:
        row = self._first(_OPEN_DAMAGE, {"archive_id": archive_id})
        return None if row is None else _record(row)

    def open_damage_for_blob(self, blob_key: str) -> DamageRecord | None:
        c = damage_records.c
        stmt = (
            select(damage_records)
            .where(c.blob_key == blob_key, c.repaired_at.is_(None))
            .order_by(c.id)
            .limit(1)
        )
        row = self._first(stmt)
        return None if row is None else _record(row)

    def list_damage(
        self, *, repaired: bool | None, after_id: int | None, limit: int
    ) -> list[DamageRecord]:
        c = damage_records.c
        stmt = select(damage_records)
        if repaired is not None:
            stmt = stmt.where(c.repaired_at.is_not(None) if repaired else c.repaired_at.is_(None))
        if after_id is not None:
            stmt = stmt.where(c.id > after_id)
        return [_record(r) for r in self._rows(stmt.order_by(c.id).limit(limit))]

    def count_damage(self) -> tuple[int, int]:
        c = damage_records.c
        repaired = func.count(c.repaired_at)  # counts non-null values only
        row = self._first(select(func.count() - repaired, repaired))
        assert row is not None
        return int(row[0]), int(row[1])

    def close_damage(self, record_id: int, now: datetime, note: str) -> bool:
        """Also closes any other open record of the same blob (two findings
        racing on PostgreSQL may both have inserted one)."""
        c = damage_records.c
        key = select(c.blob_key).where(c.id == record_id).scalar_subquery()
        stmt = (
            update(damage_records)
            .where(c.blob_key == key, c.repaired_at.is_(None))
            .values(repaired_at=now, quarantined=False, repair_note=_text(note))
        )
        return self._run(stmt) > 0

    def note_damage(self, record_id: int, note: str) -> None:
        c = damage_records.c
        self._run(
            update(damage_records)
            .where(c.id == record_id, c.repaired_at.is_(None))
            .values(repair_note=_text(note))
        )

    # --- the scrubber's row -----------------------------------------------------
    def scrub_state(self) -> ScrubState | None:
        row = self._first(select(scrub_state).where(scrub_state.c.id == _ROW))
        return None if row is None else _state(row)

    def take_scrub_lease(self, holder: str, now: datetime, until: datetime) -> ScrubState | None:
        fresh = {**asdict(ScrubState()), "id": _ROW}
        self._run(self._insert(scrub_state).values(fresh).on_conflict_do_nothing())
        c = scrub_state.c
        # One conditional UPDATE: PostgreSQL re-checks the condition on the row
        # a concurrent taker just changed, so two takers never both succeed.
        stmt = (
            update(scrub_state)
            .where(
                c.id == _ROW,
                or_(c.lease_holder.is_(None), c.lease_until <= now, c.lease_holder == holder),
            )
            .values(lease_holder=holder, lease_until=until)
            .returning(*scrub_state.c)
        )
        row = self._first(stmt)
        return None if row is None else _state(row)

    def save_scrub_state(self, holder: str, state: ScrubState) -> bool:
        c = scrub_state.c
        stmt = (
            update(scrub_state).where(c.id == _ROW, c.lease_holder == holder).values(asdict(state))
        )
        return self._run(stmt) == 1

    # --- the blobs a pass walks -----------------------------------------------------
    def scrub_targets(self, after: str | None, limit: int) -> list[ScrubTarget]:
        """Each kind's next `limit` rows in key order, merged; the page ends at
        the smallest last key of a full page (past it, the other kind may hold
        keys not fetched yet)."""
        rows, cutoff = self._merged_pages(_target_selects(), after, limit)
        targets: dict[str, ScrubTarget] = {}
        for key, size, leaves, vault, archive, upload in sorted(rows, key=lambda r: r[0]):
            if cutoff is not None and key > cutoff:
                break
            targets.setdefault(
                key, ScrubTarget(key, int(size), bytes(leaves), int(vault), archive, upload)
            )
        return list(targets.values())

    def scrub_census(self) -> tuple[int, int]:
        sizes = union_all(
            *(s.with_only_columns(*s.selected_columns[:2]) for s in _target_selects())
        ).subquery()
        row = self._first(select(func.count(), func.coalesce(func.sum(sizes.c.size), 0)))
        assert row is not None
        return int(row[0]), int(row[1])
