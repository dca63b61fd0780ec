"""Account-level settings: data retrieval policies and provisioned capacity.

Self-contained on purpose (see 0001).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _bin(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "data_retrieval_policies",
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("bytes_per_hour", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "region", name="pk_data_retrieval_policies"),
    )
    op.create_table(
        "provisioned_capacity",
        sa.Column("capacity_id", _bin(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expiration_date", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("capacity_id", name="pk_provisioned_capacity"),
    )
    op.create_index(
        "ix_provisioned_capacity_account",
        "provisioned_capacity",
        ["account_id", "region", "start_date"],
    )


def downgrade() -> None:
    op.drop_table("provisioned_capacity")
    op.drop_table("data_retrieval_policies")
