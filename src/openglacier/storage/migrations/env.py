"""Alembic environment: run migrations on the connection the caller passes in
`config.attributes["connection"]` (see `upgrade_to_head`), or on the URL in
`sqlalchemy.url` when driven by the alembic command line with an ini file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from openglacier.storage.metadata.engine import make_engine, normalize_url
from openglacier.storage.metadata.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _offline(url: str) -> None:
    context.configure(
        url=normalize_url(url),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=normalize_url(url).get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no connection given and no sqlalchemy.url configured")
    if context.is_offline_mode():
        _offline(url)
        return
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
