"""The deployment's blob store, recorded once (issue 13, "one store for everyone").

One row (id 1): the canonical blob URL every serve and worker must use. It is
filled by the first process that starts after this migration, not here: the
migration does not know the blob URL. Self-contained on purpose (see 0001).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deployment",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("blob_url", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployment"),
    )


def downgrade() -> None:
    op.drop_table("deployment")
