"""Indexes on every column naming a blob, for the orphan blob collector.

The collector pages through the blob store and asks which keys of a page some
row references; without these indexes each page would scan archive_segments,
parts and jobs. Self-contained on purpose (see 0001).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_archive_segments_blob_key", "archive_segments", ["blob_key"])
    op.create_index("ix_parts_blob_key", "parts", ["blob_key"])
    op.create_index("ix_jobs_output_blob_key", "jobs", ["output_blob_key"])


def downgrade() -> None:
    op.drop_index("ix_jobs_output_blob_key", table_name="jobs")
    op.drop_index("ix_parts_blob_key", table_name="parts")
    op.drop_index("ix_archive_segments_blob_key", table_name="archive_segments")
