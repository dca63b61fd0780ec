"""Initial metadata schema: vaults, tags, archives, segments, uploads, parts,
inventories, blob-deletion queue, credentials.

Self-contained on purpose: a migration must keep producing the schema of its
time, whatever `schema.py` later becomes.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _bin(length: int) -> sa.types.TypeEngine[str]:
    # Byte-wise comparison and order on PostgreSQL too (SQLite's BINARY default).
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _big(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _str(name: str, length: int, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _key(name: str, length: int, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, _bin(length), nullable=nullable)


def _vault_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["vault_id"], ["vaults.id"], name=f"fk_{table}_vault_id_vaults")


def upgrade() -> None:
    _create_vaults()
    _create_archives()
    _create_uploads()
    _create_support_tables()


def _create_vaults() -> None:
    op.create_table(
        "vaults",
        sa.Column("id", ID, nullable=False, autoincrement=True),
        _str("account_id", 32),
        _str("region", 32),
        _key("name", 255),
        _ts("created_at"),
        _big("write_seq"),
        _big("live_count"),
        _big("live_size"),
        _big("inventory_seq"),
        _ts("inventory_date", nullable=True),
        _big("inventory_count"),
        _big("inventory_size"),
        _ts("last_write_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_vaults"),
        sa.UniqueConstraint(
            "account_id", "region", "name", name="uq_vaults_account_id_region_name"
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "vault_tags",
        sa.Column("vault_id", ID, nullable=False),
        _str("key", 128),
        _str("value", 256),
        sa.PrimaryKeyConstraint("vault_id", "key", name="pk_vault_tags"),
        _vault_fk("vault_tags"),
    )
    op.create_table(
        "inventories",
        sa.Column("vault_id", ID, nullable=False),
        _big("seq"),
        _ts("taken_at"),
        _big("archive_count"),
        _big("size_in_bytes"),
        sa.PrimaryKeyConstraint("vault_id", "seq", name="pk_inventories"),
        _vault_fk("inventories"),
    )


def _create_archives() -> None:
    op.create_table(
        "archives",
        _key("archive_id", 138),
        sa.Column("vault_id", ID, nullable=False),
        _str("description", 1024, nullable=True),
        _big("size"),
        _str("tree_hash", 64),
        _str("sha256", 64, nullable=True),
        _ts("created_at"),
        _big("added_seq"),
        _big("removed_seq", nullable=True),
        sa.PrimaryKeyConstraint("archive_id", name="pk_archives"),
        _vault_fk("archives"),
    )
    op.create_index(
        "ix_archives_vault_id_removed_seq", "archives", ["vault_id", "removed_seq", "archive_id"]
    )
    op.create_table(
        "archive_segments",
        _key("archive_id", 138),
        _big("seq"),
        _big("offset"),
        _big("size"),
        _key("blob_key", 128),
        sa.Column("leaf_hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("archive_id", "seq", name="pk_archive_segments"),
        sa.ForeignKeyConstraint(
            ["archive_id"],
            ["archives.archive_id"],
            name="fk_archive_segments_archive_id_archives",
        ),
    )


def _create_uploads() -> None:
    op.create_table(
        "uploads",
        _key("upload_id", 92),
        sa.Column("vault_id", ID, nullable=False),
        _str("description", 1024, nullable=True),
        _big("part_size"),
        _ts("created_at"),
        _ts("last_activity_at"),
        _str("state", 16),
        _key("archive_id", 138, nullable=True),
        _big("archive_size", nullable=True),
        _str("archive_tree_hash", 64, nullable=True),
        _ts("ended_at", nullable=True),
        sa.PrimaryKeyConstraint("upload_id", name="pk_uploads"),
        _vault_fk("uploads"),
    )
    op.create_index(
        "ix_uploads_listing", "uploads", ["vault_id", "state", "created_at", "upload_id"]
    )
    op.create_index("ix_uploads_expiry", "uploads", ["state", "last_activity_at"])
    op.create_index("ix_uploads_ended_at", "uploads", ["ended_at"])
    op.create_table(
        "parts",
        _key("upload_id", 92),
        _big("first_byte"),
        _big("size"),
        _str("tree_hash", 64),
        _str("sha256", 64),
        _key("blob_key", 128),
        _ts("uploaded_at"),
        sa.Column("leaf_hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("upload_id", "first_byte", name="pk_parts"),
        sa.ForeignKeyConstraint(
            ["upload_id"], ["uploads.upload_id"], name="fk_parts_upload_id_uploads"
        ),
    )


def _create_support_tables() -> None:
    op.create_table(
        "blob_deletes",
        _key("blob_key", 128),
        _ts("queued_at"),
        sa.PrimaryKeyConstraint("blob_key", name="pk_blob_deletes"),
    )
    op.create_index("ix_blob_deletes_queued_at", "blob_deletes", ["queued_at"])
    op.create_table(
        "credentials",
        _key("access_key_id", 128),
        _str("secret_access_key", 128),
        _str("account_id", 32),
        _ts("created_at"),
        _str("description", 1024),
        sa.Column("is_root", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name="pk_credentials"),
    )


def downgrade() -> None:
    for table in (
        "credentials",
        "blob_deletes",
        "parts",
        "uploads",
        "archive_segments",
        "archives",
        "inventories",
        "vault_tags",
        "vaults",
    ):
        op.drop_table(table)
