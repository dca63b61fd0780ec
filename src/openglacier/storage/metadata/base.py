"""What every part of the SQL transaction shares: statement execution with
exception translation, the dialect's upsert-capable INSERT, and the blob queue.

All database access goes through `TxBase._rows/_first/_scalar/_run`, which fetch
results eagerly inside `translated()`, so no SQLAlchemy or driver exception ever
reaches the domain (design 2: adapters translate at their own boundary).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Executable, Row, Select, Table, and_, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from openglacier.errors import StorageError
from openglacier.keyring import Keyring
from openglacier.storage.metadata.schema import UTCDateTime, blob_deletes

_ALWAYS_LOADED: tuple[type[Exception], ...] = (SQLAlchemyError, sqlite3.Error)


def db_errors() -> tuple[type[Exception], ...]:
    """The exceptions a database call may raise, for `except db_errors() as exc`
    (evaluated only when something was raised).

    psycopg's count once it is loaded: SQLAlchemy imports it when it makes a
    PostgreSQL engine, and only then can it raise, so a SQLite deployment never
    imports it (9 MiB of RSS per process).
    """
    psycopg = sys.modules.get("psycopg")
    return _ALWAYS_LOADED if psycopg is None else (*_ALWAYS_LOADED, psycopg.Error)


Upsert = postgresql.Insert | sqlite.Insert

_ROWCOUNT = {"preserve_rowcount": True}


@contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except db_errors() as exc:
        cause = getattr(exc, "orig", None) or exc
        # The message reaches clients (500); the chained cause reaches the log.
        raise StorageError(f"metadata store failure ({type(cause).__name__})") from exc


def values_of(record: Any) -> dict[str, Any]:
    """A record dataclass as column values (records and tables share names)."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


def after_position(
    created: ColumnElement[datetime], item_id: ColumnElement[str], after: tuple[datetime, str]
) -> ColumnElement[bool]:
    """Rows strictly after `after` in (created, id) order: keyset paging.

    The first, redundant bound is a plain range on the index's leading time
    column: without it both engines scan from the start of the vault for every
    page, which makes paging through a large vault quadratic.
    """
    at, last_id = after
    return and_(created >= at, or_(created > at, and_(created == at, item_id > last_id)))


class TxBase:
    """Holds the transaction's connection; the operation mixins build on it."""

    def __init__(self, conn: Connection, keyring: Keyring | None = None) -> None:
        self._conn = conn
        self._keyring = keyring  # seals stored secrets (credentials.py)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        # SAVEPOINT works on SQLite too: the engine issues its own BEGIN (engine.py).
        with translated():
            nested = self._conn.begin_nested()
        try:
            yield
        except BaseException:
            with translated():
                nested.rollback()
            raise
        with translated():
            nested.commit()

    def _rows(
        self, stmt: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        with translated():
            return self._conn.execute(stmt, params).all()

    def _merged_pages(
        self, selects: Sequence[Select[Any]], after: str | None, limit: int
    ) -> tuple[list[Row[Any]], str | None]:
        """Each select's next `limit` rows after key `after` (its first column), in
        key order, together; and the cutoff: the smallest last key of a full page.
        Past the cutoff another select may hold keys not fetched yet, so a caller
        keeps only the rows up to it and starts its next page after it."""
        rows: list[Row[Any]] = []
        cutoff: str | None = None
        for base in selects:
            key = base.selected_columns[0]
            stmt = base if after is None else base.where(key > after)
            page = self._rows(stmt.order_by(key).limit(limit))
            rows.extend(page)
            if len(page) == limit and (cutoff is None or page[-1][0] < cutoff):
                cutoff = page[-1][0]
        return rows, cutoff

    def _dicts(self, stmt: Executable) -> list[dict[str, Any]]:
        """Rows as fresh dicts, the column names read once per result:
        `Row._asdict` builds them again for every row, five times slower."""
        with translated():
            result = self._conn.execute(stmt)
            keys = tuple(result.keys())
            return [dict(zip(keys, row, strict=True)) for row in result]

    def _first(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> Row[Any] | None:
        with translated():
            return self._conn.execute(stmt, params).first()

    def _scalar(self, stmt: Executable) -> Any:
        with translated():
            return self._conn.execute(stmt).scalar()

    def _run(
        self,
        stmt: Executable,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> int:
        """Execute (once per params row if a list is given); the affected row count."""
        with translated():
            # Without preserve_rowcount SQLAlchemy reports -1 for psycopg INSERTs.
            result = self._conn.execute(stmt, params, execution_options=_ROWCOUNT)
            return result.rowcount

    def _insert(self, table: Table) -> Upsert:
        """INSERT with ON CONFLICT support; both dialects spell it the same way.

        SQLAlchemy never caches these (each execution compiles), so hot paths
        use plain INSERT under a row lock instead.
        """
        if self._conn.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _queue_blobs_from(
        self, blob_key: ColumnElement[str], where: ColumnElement[bool], now: datetime
    ) -> None:
        """Queue the blob keys a query selects, without loading them into Python."""
        keys = select(blob_key, literal(now, UTCDateTime())).where(where)
        stmt = self._insert(blob_deletes).from_select(["blob_key", "queued_at"], keys)
        self._run(stmt.on_conflict_do_nothing())

    def _queue_keys(self, keys: Sequence[str], now: datetime) -> None:
        if keys:
            stmt = self._insert(blob_deletes).on_conflict_do_nothing()
            self._run(stmt, [{"blob_key": k, "queued_at": now} for k in dict.fromkeys(keys)])
