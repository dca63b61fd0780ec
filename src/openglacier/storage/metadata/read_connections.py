"""SQLite read connections kept open between read-only transactions.

Every request reads the metadata at least once (the policy check), and on
SQLite that read is a few tens of microseconds of SQL. Taking a connection
from SQLAlchemy's pool for it, setting the read-only option and handing it
back cost about as much again (27 of 59 microseconds for the policy check's
read; docs/performance.md, "Kept read connections"). So read-only
transactions on SQLite take an already configured connection from a short
list and put it back afterwards.

A kept connection holds no snapshot while it waits: each transaction on it
begins and ends (engine.py's deferred BEGIN, then COMMIT or ROLLBACK), so
the next one reads the newest committed data and nothing holds up a WAL
checkpoint. A connection whose transaction failed in the database is closed,
not kept. PostgreSQL keeps using the pool, whose pre-ping notices a server
that restarted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from openglacier.errors import StorageError
from openglacier.storage.metadata.base import db_errors
from openglacier.storage.metadata.engine import KEPT_READERS


class ReadConnections:
    def __init__(
        self, engine: Engine, options: Mapping[str, object], keep: int = KEPT_READERS
    ) -> None:
        """`options`: the store's read-only execution options, set once per connection.
        `keep`: more than the threads that read at once in one process (its event
        loops and the few worker threads that read); any beyond are closed when
        they finish."""
        self._engine = engine
        self._options = dict(options)
        self._keep = keep
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A read-only connection, outside any transaction, for one transaction."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._engine.connect().execution_options(**self._options)
        try:
            yield conn
        except BaseException as exc:
            # Any other exception (a domain error such as a missing vault) left
            # the connection rolled back and fine to reuse.
            if isinstance(exc, (StorageError, *db_errors())) or conn.in_transaction():
                conn.close()
                raise
            self._put_back(conn)
            raise
        self._put_back(conn)

    def _put_back(self, conn: Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._keep:
                self._idle.append(conn)
                return
        conn.close()

    def idle(self) -> int:
        """How many connections wait to be reused (tests)."""
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        """Close the waiting connections; those in use are closed when they return."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
