"""Alembic migrations for the metadata schema, runnable without an alembic.ini.

`upgrade_to_head` is what the server runs at start-up; several processes may
start at once against one PostgreSQL, so it runs under an advisory lock (SQLite
serialises through BEGIN IMMEDIATE already).

Alembic is imported only when a database needs a migration, which spares
every API process its 10 MiB of RSS and a start-up its 0.4 s:

- a database already at `HEAD_REVISION`: its `alembic_version` row is read
  here, and nothing else is done;
- an empty database (no table at all): `schema.py`'s tables are created as they
  are declared and the version row is written as alembic writes it, at head.
  tests/contract/test_migrations.py keeps that equal to what the migrations
  build from nothing, constraint by constraint, on both engines;
- anything else (an older revision): alembic runs the migrations.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    insert,
    inspect,
    select,
    text,
)

from openglacier.errors import StorageError
from openglacier.storage.metadata.base import db_errors
from openglacier.storage.metadata.engine import make_engine
from openglacier.storage.metadata.schema import metadata

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent

# The newest file in versions/. A new migration must update it:
# tests/unit/test_migration_head.py compares it with alembic's own head.
HEAD_REVISION = "0010"

# Arbitrary but fixed: identifies "OpenGlacier schema migration" among advisory locks.
_PG_MIGRATION_LOCK = 0x06C1AC1E

# Where alembic keeps a database's revision: its default version table, as
# alembic's own DDL makes it (constraint name included).
VERSIONS = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config for this package; `env.py` uses `connection` if given."""
    from alembic.config import Config  # noqa: PLC0415 - see the module's docstring

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_to_head(engine_or_url: Engine | str) -> None:
    if isinstance(engine_or_url, Engine):
        _upgrade(engine_or_url)
        return
    engine = make_engine(engine_or_url)
    try:
        _upgrade(engine)
    finally:
        engine.dispose()


def _upgrade(engine: Engine) -> None:
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            at = schema_revision(conn)
            if at is None and not inspect(conn).get_table_names():
                _create_at_head(conn)
            elif at != HEAD_REVISION:
                _alembic_upgrade(conn)
    except db_errors() as exc:
        raise StorageError(f"metadata schema migration failed: {exc}") from exc


def _alembic_upgrade(conn: Connection) -> None:
    from alembic import command  # noqa: PLC0415 - see the module's docstring
    from alembic.util import CommandError  # noqa: PLC0415

    try:
        command.upgrade(alembic_config(conn), "head")
    except CommandError as exc:
        raise StorageError(f"metadata schema migration failed: {exc}") from exc


def _create_at_head(conn: Connection) -> None:
    """An empty database's schema as `schema.py` declares it, stamped at head."""
    metadata.create_all(conn, checkfirst=False)
    VERSIONS.create(conn, checkfirst=False)
    conn.execute(insert(VERSIONS).values(version_num=HEAD_REVISION))


def schema_revision(conn: Connection) -> str | None:
    """The migration a database is at (None: never migrated), read as alembic
    reads it: the one row of its version table."""
    if not inspect(conn).has_table(VERSIONS.name):
        return None
    revision = conn.scalar(select(VERSIONS.c.version_num))
    return None if revision is None else str(revision)
