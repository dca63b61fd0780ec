"""The Alembic migrations build exactly the schema that `schema.py` declares,
and a database created at head from `schema.py` (what a server does with an
empty database, without loading alembic) is the one the migrations build."""

from __future__ import annotations

import threading

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from openglacier.storage.metadata.engine import make_engine
from openglacier.storage.metadata.schema import metadata
from openglacier.storage.metadata.store import SqlMetadataStore
from openglacier.storage.migrations import HEAD_REVISION, alembic_config, upgrade_to_head
from support.schema_checks import (
    TABLES,
    column_type_differences,
    current_revision,
    described,
    schema_differences,
)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


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
