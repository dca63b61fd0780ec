"""What a metadata database holds, as the migration tests compare it."""

from __future__ import annotations

import json
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from openglacier.storage.metadata.schema import metadata

TABLES = {
    "vaults",
    "vault_tags",
    "archives",
    "archive_segments",
    "uploads",
    "parts",
    "inventories",
    "blob_deletes",
    "credentials",
    "jobs",
    "job_segments",
    "vault_notifications",
    "notifications",
    "data_retrieval_policies",
    "provisioned_capacity",
    "vault_access_policies",
    "vault_locks",
    "deployment",
    "encryption_keys",
    "damage_records",
    "scrub_state",
    "usage_daily",
}


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def column_type_differences(engine: Engine) -> list[tuple[str, str, str, str]]:
    """Column types as each engine spells them, collation included (which
    Alembic's type comparison ignores)."""
    inspector = inspect(engine)
    differences = []
    for table in metadata.sorted_tables:
        actual = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            want = column.type.compile(dialect=engine.dialect)
            got = actual[column.name].compile(dialect=engine.dialect)
            if want != got:
                differences.append((table.name, column.name, want, got))
    return differences


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def described(engine: Engine) -> dict[str, dict[str, object]]:
    """Every table as the engine reports it: columns (by name: a migration adds
    a column at the end, `schema.py` may declare it elsewhere, and no statement
    of ours depends on the order), keys, indexes, unique and check constraints."""
    inspector = inspect(engine)

    def each(items: list[Any]) -> list[str]:
        return sorted(json.dumps(item, sort_keys=True, default=str) for item in items)

    return {
        table: {
            "columns": {
                c["name"]: (c["type"].compile(dialect=engine.dialect), c["nullable"], c["default"])
                for c in inspector.get_columns(table)
            },
            "primary key": inspector.get_pk_constraint(table),
            "foreign keys": each(inspector.get_foreign_keys(table)),
            "indexes": each(inspector.get_indexes(table)),
            "unique": each(inspector.get_unique_constraints(table)),
            "checks": each(inspector.get_check_constraints(table)),
        }
        for table in sorted(inspector.get_table_names())
    }
