"""Retrieval jobs: jobs, job segments, vault notification configurations, the
notification outbox, and the inventory-order index on archives.

Self-contained on purpose (see 0001).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _bin(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _big(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _str(name: str, length: int, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _key(name: str, length: int, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, _bin(length), nullable=nullable)


def _text(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Text(), nullable=True)


def upgrade() -> None:
    op.create_index(
        "ix_archives_inventory_order", "archives", ["vault_id", "created_at", "archive_id"]
    )
    _create_jobs()
    _create_notifications()


def _create_jobs() -> None:
    op.create_table(
        "jobs",
        _key("job_id", 92),
        sa.Column("vault_id", ID, nullable=False),
        _str("action", 32),
        _str("status", 16),
        _ts("created_at"),
        _ts("due_at"),
        _str("description", 1024, nullable=True),
        _str("sns_topic", 1024, nullable=True),
        _str("tier", 16, nullable=True),
        _str("status_message", 1024, nullable=True),
        _ts("completed_at", nullable=True),
        _key("archive_id", 138, nullable=True),
        _big("archive_size", nullable=True),
        _str("archive_tree_hash", 64, nullable=True),
        _str("archive_description", 1024, nullable=True),
        _big("range_start", nullable=True),
        _big("range_end", nullable=True),
        _str("range_tree_hash", 64, nullable=True),
        _str("inventory_format", 8, nullable=True),
        _str("inventory_start", 64, nullable=True),
        _str("inventory_end", 64, nullable=True),
        _str("inventory_limit", 32, nullable=True),
        _str("inventory_marker", 1024, nullable=True),
        _str("next_marker", 1024, nullable=True),
        _text("select_parameters"),
        _text("output_location"),
        _str("output_path", 1024, nullable=True),
        _key("output_blob_key", 128, nullable=True),
        _big("output_size", nullable=True),
        _str("lease_owner", 128, nullable=True),
        _ts("lease_until", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_jobs"),
        sa.ForeignKeyConstraint(["vault_id"], ["vaults.id"], name="fk_jobs_vault_id_vaults"),
    )
    op.create_index("ix_jobs_listing", "jobs", ["vault_id", "created_at", "job_id"])
    op.create_index("ix_jobs_due", "jobs", ["status", "due_at"])
    op.create_index("ix_jobs_completed_at", "jobs", ["completed_at"])
    op.create_table(
        "job_segments",
        _key("job_id", 92),
        _big("seq"),
        _big("offset"),
        _big("size"),
        _key("blob_key", 128),
        sa.Column("leaf_hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "seq", name="pk_job_segments"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name="fk_job_segments_job_id_jobs"),
    )
    op.create_index("ix_job_segments_blob_key", "job_segments", ["blob_key"])


def _create_notifications() -> None:
    op.create_table(
        "vault_notifications",
        sa.Column("vault_id", ID, nullable=False, autoincrement=False),
        _str("sns_topic", 1024),
        _str("events", 256),
        sa.PrimaryKeyConstraint("vault_id", name="pk_vault_notifications"),
        sa.ForeignKeyConstraint(
            ["vault_id"], ["vaults.id"], name="fk_vault_notifications_vault_id_vaults"
        ),
    )
    op.create_table(
        "notifications",
        sa.Column("id", ID, nullable=False, autoincrement=True),
        _str("topic_arn", 1024),
        sa.Column("message", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at", nullable=True),
        _str("last_error", 1024, nullable=True),
        _str("state", 16),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notifications_due", "notifications", ["state", "next_attempt_at"])


def downgrade() -> None:
    for table in ("notifications", "vault_notifications", "job_segments", "jobs"):
        op.drop_table(table)
    op.drop_index("ix_archives_inventory_order", table_name="archives")
