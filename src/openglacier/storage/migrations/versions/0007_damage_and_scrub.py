"""Damage records and the scrubber's state.

`damage_records`: one row per damaged blob found by the scrubber, a read or a
job, with what was found, whether its archive is quarantined, and its repair.
`scrub_state`: one row (id 1, written by the first scrubber) with the pass in
progress, its cursor, the last finished pass and the lease. Self-contained on
purpose (see 0001).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _bin(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _big(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "damage_records",
        sa.Column("id", ID, nullable=False, autoincrement=True),
        sa.Column("blob_key", _bin(128), nullable=False),
        sa.Column("archive_id", _bin(138), nullable=True),
        sa.Column("upload_id", _bin(92), nullable=True),
        sa.Column("vault", sa.String(1024), nullable=False),
        sa.Column("problem", sa.String(1024), nullable=False),
        sa.Column("found_by", sa.String(16), nullable=False),
        _ts("found_at"),
        _ts("last_seen_at"),
        sa.Column("quarantined", sa.Boolean(), nullable=False),
        _ts("repaired_at", nullable=True),
        sa.Column("repair_note", sa.String(1024), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_damage_records"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_damage_records_archive_id", "damage_records", ["archive_id", "repaired_at"])
    op.create_index("ix_damage_records_blob_key", "damage_records", ["blob_key", "repaired_at"])
    op.create_table(
        "scrub_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        _ts("pass_started_at", nullable=True),
        sa.Column("cursor_key", _bin(128), nullable=True),
        _big("bytes_done"),
        _big("blobs_done"),
        _big("damage_found"),
        _ts("last_started_at", nullable=True),
        _ts("last_finished_at", nullable=True),
        _big("last_bytes"),
        _big("last_blobs"),
        _big("last_damage"),
        _big("passes_completed"),
        sa.Column("lease_holder", sa.String(128), nullable=True),
        _ts("lease_until", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scrub_state"),
    )


def downgrade() -> None:
    op.drop_table("scrub_state")
    op.drop_index("ix_damage_records_blob_key", table_name="damage_records")
    op.drop_index("ix_damage_records_archive_id", table_name="damage_records")
    op.drop_table("damage_records")
