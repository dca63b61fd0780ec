"""SQLAlchemy engines for the metadata store: URL rules and per-engine settings.

SQLite is the embedded default and must be as durable as PostgreSQL: WAL with
synchronous=FULL keeps acknowledged commits across kill -9 and power loss, and
every transaction starts with BEGIN IMMEDIATE so transactions are serialised
(the writer lock is taken up front, never upgraded mid-transaction, which is
what would otherwise fail with SQLITE_BUSY regardless of busy_timeout).
"""

from __future__ import annotations

import sqlite3
import time
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from openglacier.errors import StorageError
from openglacier.storage.private_files import create_private_file, make_private_dir

DEFAULT_BUSY_TIMEOUT = 30.0  # seconds a SQLite transaction waits for the writer lock
_WAL_RETRY_DELAY = 0.005
READONLY_OPTION = "openglacier_readonly"


def normalize_url(url: str | URL) -> URL:
    """Parse `url`; plain `postgresql://` (or `postgres://`) means psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"invalid metadata store URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite")
    raise ValueError(
        f"unsupported metadata store URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite:///path or postgresql://..."
    )


# Storage calls run on AnyIO's worker threads (40 by default). With SQLAlchemy's
# default pool of 5, every call beyond the fifth opened and configured a fresh
# connection and closed it again: under 16 concurrent requests that was the
# single largest cost (bench/, py-spy). Keep enough connections for the threads.
POOL_SIZE = 20
MAX_OVERFLOW = 20
# SQLite's read-only transactions keep up to this many connections checked out
# between them (read_connections.py); its pool is larger by as many, so the
# threads still find theirs.
KEPT_READERS = 8


def make_engine(url: str | URL, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, busy_timeout)
    # pre_ping: a pooled connection may have been cut by a PostgreSQL restart.
    return create_engine(parsed, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW)


def _sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        # Every pooled connection would see its own private database.
        raise ValueError("the SQLite metadata store needs a file path: sqlite:///path/to/db")
    # It holds every access key's secret: 0600 before SQLite opens it, which
    # then gives its -wal and -shm files the same mode (storage/private_files.py).
    path = Path(database).expanduser()
    make_private_dir(path.parent)
    create_private_file(path)
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW + KEPT_READERS)
    event.listen(engine, "connect", partial(_configure_sqlite, int(busy_timeout * 1000)))
    event.listen(engine, "begin", _begin_immediate)
    return engine


def sqlite_files(url: str | URL) -> list[Path]:
    """The files of a SQLite metadata store (database, -wal, -shm); none for others."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return []
    database = Path(parsed.database).expanduser()
    return [database, *(database.with_name(database.name + end) for end in ("-wal", "-shm"))]


def _configure_sqlite(busy_timeout_ms: int, dbapi_connection: Any, _record: Any) -> None:
    # pysqlite would otherwise issue its own deferred BEGIN before DML (and
    # commit before DDL); the "begin" listener below issues ours instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
        _ensure_wal(cursor, time.monotonic() + busy_timeout_ms / 1000)
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _ensure_wal(cursor: Any, deadline: float) -> None:
    """Switch the database file to WAL (persistent: normally a no-op).

    Only the first opening of a new file converts it. When several connections
    race to do so, SQLite answers "database is locked" at once instead of
    waiting (the busy handler is skipped to avoid a lock-upgrade deadlock), so
    back off and look again: usually another connection has just converted it.
    """
    while True:
        try:
            mode = str(cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(_WAL_RETRY_DELAY)
            continue
        if mode != "wal":
            raise StorageError(f"SQLite refused WAL journal mode (got {mode!r})")
        return


def _begin_immediate(conn: Connection) -> None:
    # Straight to the driver: through `exec_driver_sql` the BEGIN cost as much
    # as the request's own SELECT. sqlite3 errors are db_errors() like any other.
    driver = conn.connection.driver_connection
    assert driver is not None  # a connection being begun is checked out
    if conn.get_execution_options().get(READONLY_OPTION):
        driver.execute("BEGIN")  # deferred: a WAL read snapshot, no writer lock
    else:
        driver.execute("BEGIN IMMEDIATE")
