"""Vault access policies and vault locks (spec 2.8-2.14).

Self-contained on purpose (see 0001).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _bin(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "vault_access_policies",
        sa.Column("vault_id", _id(), autoincrement=False, nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vault_id"], ["vaults.id"], name="fk_vault_access_policies_vault_id_vaults"
        ),
        sa.PrimaryKeyConstraint("vault_id", name="pk_vault_access_policies"),
    )
    op.create_table(
        "vault_locks",
        sa.Column("vault_id", _id(), autoincrement=False, nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("lock_id", _bin(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["vault_id"], ["vaults.id"], name="fk_vault_locks_vault_id_vaults"),
        sa.PrimaryKeyConstraint("vault_id", name="pk_vault_locks"),
    )
    op.create_index("ix_vault_locks_expires_at", "vault_locks", ["expires_at"])


def downgrade() -> None:
    op.drop_table("vault_locks")
    op.drop_table("vault_access_policies")
