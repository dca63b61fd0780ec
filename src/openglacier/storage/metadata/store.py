"""`SqlMetadataStore`: the MetadataStore port on SQLite or PostgreSQL (design 4).

One code path for both engines, on SQLAlchemy Core. Engine-specific behaviour
lives in `engine.py` (connection settings) and in the dialect's INSERT ... ON
CONFLICT; everything else is the same SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection, Engine

from openglacier.errors import StorageError
from openglacier.keyring import Keyring
from openglacier.storage.metadata.base import db_errors
from openglacier.storage.metadata.engine import (
    DEFAULT_BUSY_TIMEOUT,
    READONLY_OPTION,
    make_engine,
)
from openglacier.storage.metadata.group_commit import GroupCommitter
from openglacier.storage.metadata.read_connections import ReadConnections
from openglacier.storage.metadata.tx import SqlMetadataTx
from openglacier.storage.metadata.writer_lock import SqliteWriterLock
from openglacier.storage.migrations import schema_revision, upgrade_to_head

if TYPE_CHECKING:
    from openglacier.ports import MetadataStore, MetadataTx

T = TypeVar("T")


class SqlMetadataStore:
    """Build from a URL: `sqlite:///path/meta.db` or `postgresql://user@host/db`.

    Does not touch the schema; `open_metadata_store` migrates first.
    """

    def __init__(self, url: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self._engine = make_engine(url, busy_timeout=busy_timeout)
        self.dialect: str = self._engine.dialect.name
        self.inline_reads = self.dialect == "sqlite"
        self.keyring: Keyring | None = None
        database = self._engine.url.database
        self._writer = (
            SqliteWriterLock(str(Path(database).expanduser()), busy_timeout)
            if self.dialect == "sqlite" and database
            else None
        )
        # PostgreSQL takes concurrent writers as they come; SQLite's one writer
        # commits a process's queued writes together (group_commit.py).
        self._group = GroupCommitter(self.transaction) if self._writer is not None else None
        # SQLite's read-only transactions reuse configured connections
        # (read_connections.py); PostgreSQL's come from the pre-pinged pool.
        self._readers = (
            ReadConnections(self._engine, _readonly_options(self.dialect))
            if self.dialect == "sqlite"
            else None
        )

    def submit_write(self, fn: Callable[[MetadataTx], T]) -> Future[T] | None:
        if self._group is None:
            return None
        return self._group.submit(fn)

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[SqlMetadataTx]:
        """Commit when the block exits normally, roll back on any exception.

        Errors of the tx's own statements are already StorageError; what is
        caught here comes from connecting, BEGIN, COMMIT or ROLLBACK.
        """
        try:
            with self._writer_turn(readonly), self._connection(readonly) as conn, conn.begin():
                yield SqlMetadataTx(conn, self.keyring)
        except db_errors() as exc:
            raise StorageError(f"metadata transaction failed ({type(exc).__name__})") from exc

    def _connection(self, readonly: bool) -> AbstractContextManager[Connection]:
        if readonly and self._readers is not None:
            return self._readers.connection()
        return self._pooled(readonly)

    @contextmanager
    def _pooled(self, readonly: bool) -> Iterator[Connection]:
        with self._engine.connect() as plain:
            yield (
                plain.execution_options(**_readonly_options(self.dialect)) if readonly else plain
            )

    def _writer_turn(self, readonly: bool) -> AbstractContextManager[None]:
        if readonly or self._writer is None:
            return nullcontext()
        return self._writer.held()

    def checkpoint(self) -> None:
        """SQLite: copy the WAL into the database file and empty it, so pages
        rewritten to drop a plaintext secret replace their old images in both
        files now rather than at the next automatic checkpoint. Best effort: a
        reader of another process still on an older snapshot may hold it up."""
        if self.dialect != "sqlite":
            return
        try:
            with self._writer_turn(False), self._engine.connect() as conn:
                # Straight to the driver: outside a transaction (the engine's
                # begin hook would open one, inside which nothing is checkpointed).
                driver = conn.connection.driver_connection
                assert driver is not None
                driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except db_errors() as exc:
            raise StorageError(f"metadata checkpoint failed ({type(exc).__name__})") from exc

    def schema_revision(self) -> str | None:
        try:
            with self._engine.connect() as conn:
                return schema_revision(conn)
        except db_errors() as exc:
            raise StorageError(f"metadata store unreachable ({type(exc).__name__})") from exc

    def close(self) -> None:
        if self._group is not None:
            self._group.close()
        if self._readers is not None:
            self._readers.close()
        self._engine.dispose()
        if self._writer is not None:
            self._writer.close()


def _readonly_options(dialect: str) -> dict[str, object]:
    # SQLite: a deferred BEGIN in WAL mode reads one snapshot and takes no
    # writer lock (engine.py's "begin" hook honours this option). PostgreSQL:
    # REPEATABLE READ gives the snapshot, READ ONLY guards against writes.
    if dialect == "sqlite":
        return {READONLY_OPTION: True}
    return {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}


def open_metadata_store(
    url: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> SqlMetadataStore:
    """The store for `url`, with its schema migrated to the newest version."""
    store = SqlMetadataStore(url, busy_timeout=busy_timeout)
    try:
        upgrade_to_head(store.engine)
    except BaseException:
        store.close()
        raise
    return store


def _conforms(store: SqlMetadataStore) -> MetadataStore:
    # Never called: makes mypy prove the adapter satisfies the port.
    return store
