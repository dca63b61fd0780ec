"""Alembic migrations for the metadata schema, runnable without an alembic.ini.

`upgrade_to_head` is what the server runs at start-up; several processes may
start at once against one PostgreSQL, so it runs under an advisory lock (SQLite
serialises through BEGIN IMMEDIATE already).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text

from openglacier.errors import StorageError
from openglacier.storage.metadata.base import DB_ERRORS
from openglacier.storage.metadata.engine import make_engine

SCRIPT_LOCATION = Path(__file__).resolve().parent

# Arbitrary but fixed: identifies "OpenGlacier schema migration" among advisory locks.
_PG_MIGRATION_LOCK = 0x06C1AC1E

_FAILURES: tuple[type[Exception], ...] = (*DB_ERRORS, CommandError)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config for this package; `env.py` uses `connection` if given."""
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
            command.upgrade(alembic_config(conn), "head")
    except _FAILURES as exc:
        raise StorageError(f"metadata schema migration failed: {exc}") from exc


def head_revision() -> str | None:
    """The newest migration this code has."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_revision(conn: Connection) -> str | None:
    """The migration a database is at (None: never migrated)."""
    return MigrationContext.configure(conn).get_current_revision()
