"""The Alembic migrations build exactly the schema that `schema.py` declares,
and a database created at head from `schema.py` (what a server does with an
empty database, without loading alembic) is the one the migrations build."""

from __future__ import annotations

import json
import threading
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from openglacier.storage.metadata.engine import make_engine
from openglacier.storage.metadata.schema import metadata
from openglacier.storage.metadata.store import SqlMetadataStore
from openglacier.storage.migrations import HEAD_REVISION, alembic_config, upgrade_to_head

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


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


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


def test_store_schema_matches_schema_py(metadata_store: SqlMetadataStore) -> None:
    assert set(metadata.tables) == TABLES
    assert schema_differences(metadata_store.engine) == []
    assert column_type_differences(metadata_store.engine) == []
    assert current_revision(metadata_store.engine) == head_revision() == "0010"


def test_the_migrations_build_schema_py(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
        assert schema_differences(engine) == []
        assert column_type_differences(engine) == []
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_an_empty_database_is_created_as_the_migrations_build_it(
    empty_db_url: str, other_empty_db_url: str
) -> None:
    migrated, created = make_engine(empty_db_url), make_engine(other_empty_db_url)
    try:
        with migrated.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
        upgrade_to_head(created)  # an empty database: created from schema.py
        assert described(created) == described(migrated)
        assert set(described(created)) == TABLES | {"alembic_version"}
        # Alembic reads the version row written for it as its own.
        assert current_revision(created) == head_revision() == HEAD_REVISION
    finally:
        migrated.dispose()
        created.dispose()


def test_an_older_database_is_migrated_by_alembic(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0009")
        assert current_revision(engine) == "0009"
        upgrade_to_head(engine)
        assert current_revision(engine) == HEAD_REVISION
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_vault_names_are_binary_collated_on_postgres(metadata_store: SqlMetadataStore) -> None:
    columns = {c["name"]: c for c in inspect(metadata_store.engine).get_columns("vaults")}
    collation = getattr(columns["name"]["type"], "collation", None)
    assert collation == ("C" if metadata_store.dialect == "postgresql" else None)


def test_upgrade_from_empty_downgrade_and_upgrade_again(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        upgrade_to_head(empty_db_url)
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert schema_differences(engine) == []
        upgrade_to_head(engine)  # at head already: nothing to do
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        assert not TABLES & set(inspect(engine).get_table_names())
        assert current_revision(engine) is None
        upgrade_to_head(engine)
        assert schema_differences(engine) == []
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_concurrent_upgrades_converge(empty_db_url: str) -> None:
    # API nodes and workers may all start at once against one database.
    count = 4
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            barrier.wait()
            upgrade_to_head(empty_db_url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = make_engine(empty_db_url)
    try:
        assert current_revision(engine) == head_revision()
        assert schema_differences(engine) == []
    finally:
        engine.dispose()
