"""MetadataStore contract: transactions, errors, time, concurrency, engine setup,
the blob-deletion queue and credentials."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from openglacier.errors import StorageError
from openglacier.ids import new_archive_id, new_blob_key
from openglacier.ports import MetadataTx
from openglacier.records import Archive, Credential
from openglacier.storage.metadata.store import (
    SqlMetadataStore,
    open_metadata_store,
)

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
ACCOUNT, REGION = "111122223333", "us-east-1"


# --- transactions and errors -----------------------------------------------------


class BoomError(Exception):
    pass


def run_in_tx(store: SqlMetadataStore, work: Callable[[MetadataTx], None]) -> None:
    with store.transaction() as tx:
        work(tx)


def test_exception_rolls_back_everything(metadata_store: SqlMetadataStore) -> None:
    def doomed(tx: MetadataTx) -> None:
        vault = tx.create_vault(ACCOUNT, REGION, "doomed", T0)
        tx.put_tags(vault.id, {"a": "b"})
        tx.record_write(vault.id, 1, 1, T0)
        tx.queue_blob_deletes([new_blob_key()], T0)
        raise BoomError

    with pytest.raises(BoomError):
        run_in_tx(metadata_store, doomed)
    with metadata_store.transaction() as tx:
        assert tx.get_vault(ACCOUNT, REGION, "doomed") is None
        assert tx.count_vaults(ACCOUNT, REGION) == 0
        assert tx.pending_blob_deletes(10) == []


def test_database_errors_surface_as_storage_error_and_roll_back(
    metadata_store: SqlMetadataStore,
) -> None:
    with metadata_store.transaction() as tx:
        vault = tx.create_vault(ACCOUNT, REGION, "v", T0)
        archive = Archive(new_archive_id(), vault.id, None, 1, "00" * 32, None, T0, 1)
        tx.insert_archive(archive, [])

    def duplicate(tx: MetadataTx) -> None:
        tx.put_tags(vault.id, {"written": "first"})
        tx.insert_archive(archive, [])  # duplicate primary key

    with pytest.raises(StorageError) as caught:
        run_in_tx(metadata_store, duplicate)
    assert not isinstance(caught.value, SQLAlchemyError)
    assert isinstance(caught.value.__cause__, SQLAlchemyError)  # kept for the log
    with metadata_store.transaction() as tx:
        assert tx.get_tags(vault.id) == {}


def test_naive_datetimes_are_refused(metadata_store: SqlMetadataStore) -> None:
    with pytest.raises(StorageError), metadata_store.transaction() as tx:
        tx.create_vault(ACCOUNT, REGION, "v", datetime(2024, 1, 1))


def test_datetimes_round_trip_as_aware_utc(metadata_store: SqlMetadataStore) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2024, 2, 29, 23, 59, 58, 999999, tzinfo=india)
    with metadata_store.transaction() as tx:
        vault = tx.create_vault(ACCOUNT, REGION, "tz", local)
        tx.record_write(vault.id, 1, 1, local)
        tx.take_inventory(vault.id, local)
        tx.queue_blob_deletes([new_blob_key()], local)
    with metadata_store.transaction() as tx:
        got = tx.get_vault_by_id(vault.id)
        snapshot = tx.latest_inventory(vault.id)
    assert got is not None
    assert snapshot is not None
    for value in (got.created_at, got.last_write_at, got.inventory_date, snapshot.taken_at):
        assert value == local
        assert value is not None
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
    assert got.created_at.hour == 18  # 23:59 at +05:30 is 18:29 UTC
    assert got.created_at.microsecond == 999999


# --- concurrency -------------------------------------------------------------------


def run_threads(count: int, work: Callable[[int], None]) -> None:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_concurrent_create_vault_and_record_write(metadata_store: SqlMetadataStore) -> None:
    threads, rounds = 8, 10
    seqs: list[int] = []
    ids: set[int] = set()
    lock = threading.Lock()

    def work(_index: int) -> None:
        for _ in range(rounds):
            with metadata_store.transaction() as tx:
                vault = tx.create_vault(ACCOUNT, REGION, "contended", T0)
                seq = tx.record_write(vault.id, 1, 10, T0)
            with lock:
                seqs.append(seq)
                ids.add(vault.id)

    run_threads(threads, work)
    total = threads * rounds
    with metadata_store.transaction() as tx:
        assert tx.count_vaults(ACCOUNT, REGION) == 1
        vault = tx.get_vault(ACCOUNT, REGION, "contended")
    assert vault is not None
    assert ids == {vault.id}
    assert sorted(seqs) == list(range(1, total + 1))  # every write got its own seq
    assert (vault.write_seq, vault.live_count, vault.live_size) == (total, total, 10 * total)


def test_sqlite_transactions_take_the_write_lock_at_begin(sqlite_url: str) -> None:
    store = open_metadata_store(sqlite_url)
    impatient = SqlMetadataStore(sqlite_url, busy_timeout=0)
    try:
        with impatient.transaction() as other:
            other.count_vaults(ACCOUNT, REGION)  # connect now, not while locked out
        with store.transaction() as tx:
            tx.count_vaults(ACCOUNT, REGION)  # a read-only transaction still holds the lock
            with pytest.raises(StorageError), impatient.transaction() as other:
                other.count_vaults(ACCOUNT, REGION)
        with impatient.transaction() as other:
            assert other.count_vaults(ACCOUNT, REGION) == 0
    finally:
        impatient.close()
        store.close()


@pytest.mark.postgres
def test_postgres_for_update_blocks_a_second_locker(pg_store: SqlMetadataStore) -> None:
    with pg_store.transaction() as tx:
        vault = tx.create_vault(ACCOUNT, REGION, "locked", T0)
    seen: list[int] = []

    def second_locker() -> None:
        with pg_store.transaction() as tx:
            locked = tx.get_vault_by_id(vault.id, for_update=True)
            assert locked is not None
            seen.append(locked.write_seq)

    with pg_store.transaction() as tx:
        tx.get_vault_by_id(vault.id, for_update=True)
        thread = threading.Thread(target=second_locker)
        thread.start()
        wait_for_lock_waiter(pg_store)
        tx.record_write(vault.id, 1, 1, T0)
    thread.join()
    assert seen == [1]  # it waited for our commit, then read the new row


def wait_for_lock_waiter(metadata_store: SqlMetadataStore) -> None:
    """Return once some session of this database waits on a row lock."""
    deadline = time.monotonic() + 30
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with metadata_store.engine.connect() as conn:
        while not conn.execute(query).scalar():
            conn.rollback()  # new snapshot of pg_stat_activity
            assert time.monotonic() < deadline, "second locker never blocked"


# --- durability and engine setup ---------------------------------------------------

CHILD = """
import sys
from datetime import UTC, datetime
from openglacier.storage.metadata.store import open_metadata_store
store = open_metadata_store(sys.argv[1])
with store.transaction() as tx:
    tx.create_vault("111122223333", "us-east-1", "survivor", datetime.now(UTC))
print("committed", flush=True)
sys.stdin.read()
"""


def test_committed_writes_survive_kill_9(empty_db_url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, empty_db_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "committed"
    finally:
        child.kill()  # SIGKILL: no cleanup, no graceful close
        child.communicate()
    store = open_metadata_store(empty_db_url)
    try:
        with store.transaction() as tx:
            assert tx.get_vault(ACCOUNT, REGION, "survivor") is not None
    finally:
        store.close()


def test_sqlite_connection_settings(sqlite_url: str) -> None:
    store = open_metadata_store(sqlite_url)
    try:
        assert Path(sqlite_url.removeprefix("sqlite:///")).is_file()  # parent dir created
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        store.close()


def test_store_reports_its_dialect(metadata_store: SqlMetadataStore, engine_name: str) -> None:
    assert metadata_store.dialect == engine_name


def test_postgres_urls_use_psycopg() -> None:
    for url in ("postgresql://u@db.example/og", "postgres://u@db.example/og"):
        store = SqlMetadataStore(url)  # the engine connects lazily
        try:
            assert store.engine.url.drivername == "postgresql+psycopg"
            assert store.dialect == "postgresql"
        finally:
            store.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/db", "not a url"])
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"URL|file path"):
        SqlMetadataStore(url)


# --- blob-deletion queue -------------------------------------------------------------


def test_blob_delete_queue(metadata_store: SqlMetadataStore) -> None:
    early, late = new_blob_key(), new_blob_key()
    pair = sorted([new_blob_key(), new_blob_key()])
    with metadata_store.transaction() as tx:
        tx.queue_blob_deletes([late], T0 + timedelta(seconds=2))
        tx.queue_blob_deletes(pair, T0 + timedelta(seconds=1))
        tx.queue_blob_deletes([early, early], T0)
        tx.queue_blob_deletes([late], T0 - timedelta(days=1))  # already queued: kept as is
        tx.queue_blob_deletes([], T0)
    with metadata_store.transaction() as tx:
        assert tx.pending_blob_deletes(10) == [early, *pair, late]  # oldest first
        assert tx.pending_blob_deletes(2) == [early, pair[0]]
        tx.forget_blob_deletes([early, pair[1], new_blob_key()])
        tx.forget_blob_deletes([])
    with metadata_store.transaction() as tx:
        assert tx.pending_blob_deletes(10) == [pair[0], late]


def test_forget_blob_deletes_handles_large_batches(metadata_store: SqlMetadataStore) -> None:
    keys = [new_blob_key() for _ in range(1234)]
    with metadata_store.transaction() as tx:
        tx.queue_blob_deletes(keys, T0)
        assert len(tx.pending_blob_deletes(5000)) == 1234
        tx.forget_blob_deletes(keys[:1233])
        assert tx.pending_blob_deletes(5000) == [keys[1233]]


# --- credentials -----------------------------------------------------------------------


def test_credentials_crud(metadata_store: SqlMetadataStore) -> None:
    root = Credential("OGAKROOT", "s3cr3t", ACCOUNT, T0, "root key", is_root=True)
    user = Credential("OGAKUSER", "hunter2", "999988887777", T0 + timedelta(seconds=1))
    with metadata_store.transaction() as tx:
        assert tx.list_credentials() == []
        tx.put_credential(user)
        tx.put_credential(root)
    with metadata_store.transaction() as tx:
        assert tx.get_credential("OGAKROOT") == root
        assert tx.get_credential("OGAKUSER") == user
        assert tx.get_credential("OGAKNOPE") is None
        assert tx.list_credentials() == [root, user]
        rotated = Credential("OGAKUSER", "new-secret", "999988887777", T0, "rotated")
        tx.put_credential(rotated)
        assert tx.get_credential("OGAKUSER") == rotated
        assert tx.delete_credential("OGAKROOT") is True
        assert tx.delete_credential("OGAKROOT") is False
    with metadata_store.transaction() as tx:
        assert tx.list_credentials() == [rotated]
