"""The deployment's replica blob store, recorded like its blob store (issue 14).

`deployment.replica_blob_url`: the canonical --replica-blob-url every serve,
worker and scrub must use, or NULL when the deployment has no replica. Filled
by the first process that starts with a replica (at first start, or when a
replica is added to a deployment that had none), not here: the migration does
not know the URL. Self-contained on purpose (see 0001).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deployment") as batch:
        batch.add_column(sa.Column("replica_blob_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployment") as batch:
        batch.drop_column("replica_blob_url")
