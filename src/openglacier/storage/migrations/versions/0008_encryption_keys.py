"""Encryption keys at rest: the recorded key ids, and room for sealed secrets.

`encryption_keys` holds every key id that encrypted blobs or sealed secrets,
with its check value, so a start with a missing or wrong key is refused. The
credentials' secret column becomes unbounded text: a sealed secret
("og1:<key id>:<base64>") is longer than the 128 characters a plain one had.
Independent of 0007 (other tables): only the chain links them. Self-contained
on purpose (see 0001).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "encryption_keys",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("check_value", sa.String(64), nullable=False),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_encryption_keys"),
    )
    # SQLite cannot alter a column's type: batch mode copies the (small) table.
    with op.batch_alter_table("credentials") as batch:
        batch.alter_column(
            "secret_access_key", type_=sa.Text(), existing_type=sa.String(128), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.alter_column(
            "secret_access_key", type_=sa.String(128), existing_type=sa.Text(), nullable=False
        )
    op.drop_table("encryption_keys")
