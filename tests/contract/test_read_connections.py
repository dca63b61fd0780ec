"""SQLite read-only transactions on kept connections (storage/metadata/read_connections.py):
reused, always reading the newest commit, holding no snapshot between
transactions, and never reused after a database error."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from openglacier.errors import StorageError
from openglacier.ports import MetadataTx
from openglacier.storage.metadata.engine import KEPT_READERS, MAX_OVERFLOW, POOL_SIZE
from openglacier.storage.metadata.read_connections import ReadConnections
from openglacier.storage.metadata.store import SqlMetadataStore, open_metadata_store
from openglacier.storage.metadata.tx import SqlMetadataTx

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
ACCOUNT, REGION = "111122223333", "us-east-1"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "meta.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqlMetadataStore]:
    opened = open_metadata_store(f"sqlite:///{db_path}")
    yield opened
    opened.close()


def readers(store: SqlMetadataStore) -> ReadConnections:
    kept = store._readers
    assert kept is not None, "a SQLite store keeps read connections"
    return kept


def connection_of(tx: object) -> Connection:
    assert isinstance(tx, SqlMetadataTx)
    return tx._conn


def in_read_tx(store: SqlMetadataStore, fn: Callable[[MetadataTx], None]) -> None:
    with store.transaction(readonly=True) as tx:
        fn(tx)


def vault_count(store: SqlMetadataStore) -> int:
    with store.transaction(readonly=True) as tx:
        return tx.count_vaults(ACCOUNT, REGION)


def create_vault(store: SqlMetadataStore, name: str) -> None:
    with store.transaction() as tx:
        tx.create_vault(ACCOUNT, REGION, name, T0)


def test_read_transactions_reuse_one_connection(store: SqlMetadataStore) -> None:
    with store.transaction(readonly=True) as tx:
        first = connection_of(tx)
    assert readers(store).idle() == 1
    with store.transaction(readonly=True) as tx:
        assert connection_of(tx) is first
    with store.transaction() as tx:  # writes still come from the pool
        assert connection_of(tx) is not first


def test_each_read_sees_the_newest_commit_of_this_and_another_process(
    store: SqlMetadataStore, db_path: Path
) -> None:
    assert vault_count(store) == 0
    create_vault(store, "a")
    assert vault_count(store) == 1
    # Another process's store on the same file: its commit must be seen by the
    # kept connection's next transaction, which would not if it kept a snapshot.
    other = open_metadata_store(f"sqlite:///{db_path}")
    try:
        create_vault(other, "b")
    finally:
        other.close()
    assert vault_count(store) == 2
    assert readers(store).idle() == 1


def test_kept_connections_hold_no_snapshot_between_transactions(
    store: SqlMetadataStore, db_path: Path
) -> None:
    for name in ("a", "b", "c"):
        create_vault(store, name)
        assert vault_count(store) >= 1
    assert readers(store).idle() == 1
    store.checkpoint()  # TRUNCATE: empties the WAL only if no reader holds a snapshot
    assert db_path.with_name(db_path.name + "-wal").stat().st_size == 0


def test_nested_reads_on_one_thread_get_their_own_connections(store: SqlMetadataStore) -> None:
    with store.transaction(readonly=True) as outer, store.transaction(readonly=True) as inner:
        assert connection_of(inner) is not connection_of(outer)
        assert inner.count_vaults(ACCOUNT, REGION) == 0
    assert readers(store).idle() == 2


def test_threads_share_the_kept_connections(store: SqlMetadataStore) -> None:
    counts: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(50):
                counts.append(vault_count(store))
        except BaseException as exc:  # reported below
            errors.append(exc)

    create_vault(store, "a")
    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert counts == [1] * 200
    assert 1 <= readers(store).idle() <= 4


def test_a_domain_error_keeps_the_connection(store: SqlMetadataStore) -> None:
    with store.transaction(readonly=True) as tx:
        first = connection_of(tx)

    def missing(tx: MetadataTx) -> None:
        tx.count_vaults(ACCOUNT, REGION)
        raise LookupError("no such vault")

    with pytest.raises(LookupError):
        in_read_tx(store, missing)
    with store.transaction(readonly=True) as tx:
        assert connection_of(tx) is first
        assert tx.count_vaults(ACCOUNT, REGION) == 0


def test_a_database_error_closes_the_connection(store: SqlMetadataStore) -> None:
    with store.transaction(readonly=True) as tx:
        first = connection_of(tx)

    def broken(tx: MetadataTx) -> None:
        connection_of(tx).execute(text("SELECT no_such_column FROM vaults"))

    with pytest.raises(StorageError):
        in_read_tx(store, broken)
    assert readers(store).idle() == 0
    with store.transaction(readonly=True) as tx:
        assert connection_of(tx) is not first
        assert tx.count_vaults(ACCOUNT, REGION) == 0


def test_close_closes_idle_connections_and_those_still_in_use(store: SqlMetadataStore) -> None:
    with store.transaction(readonly=True) as busy:
        with store.transaction(readonly=True) as other:
            waiting = connection_of(other)
        assert readers(store).idle() == 1
        readers(store).close()
        assert waiting.closed
        assert not connection_of(busy).closed
    assert connection_of(busy).closed
    assert readers(store).idle() == 0


def test_no_more_are_kept_than_the_limit(db_path: Path) -> None:
    store = open_metadata_store(f"sqlite:///{db_path}")
    try:
        kept = readers(store)
        opened = [store.transaction(readonly=True) for _ in range(kept._keep + 3)]
        for tx in opened:
            tx.__enter__()
        for tx in reversed(opened):
            tx.__exit__(None, None, None)
        assert kept.idle() == kept._keep
    finally:
        store.close()


def test_kept_connections_leave_the_pool_its_full_size(store: SqlMetadataStore) -> None:
    """With every kept connection waiting, the threads can still check out as
    many connections as the pool was sized for (a too small pool would make
    the last of these wait for its timeout and fail)."""
    opened = [store.transaction(readonly=True) for _ in range(KEPT_READERS)]
    for tx in opened:
        tx.__enter__()
    for tx in reversed(opened):
        tx.__exit__(None, None, None)
    assert readers(store).idle() == KEPT_READERS
    threads = [store.engine.connect() for _ in range(POOL_SIZE + MAX_OVERFLOW)]
    try:
        # Straight to the driver: through SQLAlchemy each would BEGIN IMMEDIATE.
        drivers = [conn.connection.driver_connection for conn in threads]
        assert all(d is not None and d.execute("SELECT 1").fetchone() == (1,) for d in drivers)
    finally:
        for conn in threads:
            conn.close()
