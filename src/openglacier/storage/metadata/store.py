"""`SqlMetadataStore`: the MetadataStore port on SQLite or PostgreSQL (design 4).

One code path for both engines, on SQLAlchemy Core. Engine-specific behaviour
lives in `engine.py` (connection settings) and in the dialect's INSERT ... ON
CONFLICT; everything else is the same SQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from openglacier.errors import StorageError
from openglacier.storage.metadata.base import DB_ERRORS
from openglacier.storage.metadata.engine import (
    DEFAULT_BUSY_TIMEOUT,
    READONLY_OPTION,
    make_engine,
)
from openglacier.storage.metadata.tx import SqlMetadataTx
from openglacier.storage.migrations import upgrade_to_head

if TYPE_CHECKING:
    from openglacier.ports import MetadataStore


class SqlMetadataStore:
    """Build from a URL: `sqlite:///path/meta.db` or `postgresql://user@host/db`.

    Does not touch the schema; `open_metadata_store` migrates first.
    """

    def __init__(self, url: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self._engine = make_engine(url, busy_timeout=busy_timeout)
        self.dialect: str = self._engine.dialect.name
        self.inline_reads = self.dialect == "sqlite"
        self._busy_timeout = busy_timeout
        # SQLite takes one writer at a time. This process's writers queue here,
        # in order, instead of in SQLite's busy handler, which polls with sleeps
        # growing to 100 ms: under 16 concurrent InitiateJob calls they spent
        # most of their time asleep (docs/performance.md). Other processes (the
        # CLI, a second server) still meet the busy handler.
        self._writer = threading.Lock() if self.dialect == "sqlite" else None

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
            with self._writer_turn(readonly), self._engine.connect() as plain:
                conn = (
                    plain.execution_options(**_readonly_options(self.dialect))
                    if readonly
                    else plain
                )
                with conn.begin():
                    yield SqlMetadataTx(conn)
        except DB_ERRORS as exc:
            raise StorageError(f"metadata transaction failed ({type(exc).__name__})") from exc

    @contextmanager
    def _writer_turn(self, readonly: bool) -> Iterator[None]:
        if readonly or self._writer is None:
            yield
            return
        if not self._writer.acquire(timeout=self._busy_timeout):
            raise StorageError("metadata transaction failed (timed out waiting for the writer)")
        try:
            yield
        finally:
            self._writer.release()

    def close(self) -> None:
        self._engine.dispose()


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
