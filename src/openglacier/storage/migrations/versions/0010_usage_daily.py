"""The usage report's daily rollup table (issue 16).

`usage_daily`: per day (UTC, "YYYY-MM-DD"), account, vault, kind ("stored",
"upload", "retrieval", "request") and name (tier or operation): a number and
bytes. Written by maintenance passes (storage/metadata/usage.py), read by
`openglacier usage`. Self-contained on purpose (see 0001).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    vault = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")
    op.create_table(
        "usage_daily",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("vault", vault, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "account_id", "vault", "kind", "name", name="pk_usage_daily"
        ),
    )
    op.create_index("ix_usage_daily_account_id", "usage_daily", ["account_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_usage_daily_account_id", table_name="usage_daily")
    op.drop_table("usage_daily")
