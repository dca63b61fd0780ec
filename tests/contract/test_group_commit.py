"""Group commit on SQLite (storage/metadata/group_commit.py), on a real
database file: the writes a process queues meanwhile share one transaction,
each in its own savepoint, and nobody is answered before that transaction has
committed.

Each test first parks the writer thread inside a write that waits for an
event, so that the writes submitted meanwhile are queued and run as one group
once it is released.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from openglacier.errors import ResourceNotFoundException, StorageError
from openglacier.ids import new_job_id
from openglacier.ports import MetadataTx
from openglacier.records import InventoryParams, Job, JobAction, JobStatus, Vault
from openglacier.storage.metadata.group_commit import MAX_GROUP
from openglacier.storage.metadata.store import SqlMetadataStore, open_metadata_store

ACCOUNT = "111122223333"
REGION = "us-east-1"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    store = open_metadata_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    yield store
    store.close()


def submit(store: SqlMetadataStore, fn: Callable[[MetadataTx], Any]) -> Future[Any]:
    future = store.submit_write(fn)
    assert future is not None, "SQLite stores queue their writes"
    return future


class Parked:
    """A write that holds the writer thread until released."""

    def __init__(self, store: SqlMetadataStore) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self.future = submit(store, self._run)
        assert self.inside.wait(10), "the writer thread never ran the parked write"

    def _run(self, tx: MetadataTx) -> None:
        self.inside.set()
        assert self.release.wait(10)

    def __enter__(self) -> Parked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.future.result(10)


def create(name: str) -> Callable[[MetadataTx], Vault]:
    return lambda tx: tx.create_vault(ACCOUNT, REGION, name, NOW)


def names(store: SqlMetadataStore) -> set[str]:
    with store.transaction(readonly=True) as tx:
        return {v.name for v in tx.list_vaults(ACCOUNT, REGION, None, 100)}


def test_queued_writes_share_one_commit_and_are_answered_after_it(
    store: SqlMetadataStore,
) -> None:
    seen: dict[str, tuple[bool, set[str]]] = {}
    first: list[Future[Any]] = []

    def later(tx: MetadataTx) -> None:
        # Runs after "a" in the same group: "a" is visible here, in the group's
        # transaction, but not yet committed, so "a" has not been answered.
        seen["later"] = (
            first[0].done(),
            {v.name for v in tx.list_vaults(ACCOUNT, REGION, None, 9)},
        )

    with Parked(store):
        first.append(submit(store, create("a")))
        last = submit(store, later)
    assert first[0].result(10).name == "a"
    last.result(10)
    assert seen["later"] == (False, {"a"})
    assert names(store) == {"a"}


def failing_between_two(
    store: SqlMetadataStore, middle: Callable[[MetadataTx], Any]
) -> Future[Any]:
    """Queue "before", `middle`, "after" as one group; check that the writes
    around `middle` are stored whatever it does, and hand back its future."""
    with Parked(store):
        before = submit(store, create("before"))
        failing = submit(store, middle)
        after = submit(store, create("after"))
    assert before.result(10).name == "before"
    assert after.result(10).name == "after"
    assert names(store) == {"before", "after"}
    return failing


def test_a_write_that_raises_is_undone_alone(store: SqlMetadataStore) -> None:
    def fails(tx: MetadataTx) -> None:
        tx.create_vault(ACCOUNT, REGION, "undone", NOW)
        raise ResourceNotFoundException("no such thing")

    failing = failing_between_two(store, fails)
    with pytest.raises(ResourceNotFoundException, match="no such thing"):
        failing.result(0)


def orphan_job() -> Job:
    """A job of a vault that does not exist: its row breaks a foreign key."""
    job = Job(new_job_id(), 999_999, JobAction.INVENTORY, JobStatus.IN_PROGRESS, NOW, NOW)
    return replace(job, inventory=InventoryParams("JSON", None, None, None, None))


def test_a_statement_failing_in_the_database_fails_only_its_write(
    store: SqlMetadataStore,
) -> None:
    def refused(tx: MetadataTx) -> None:
        tx.create_vault(ACCOUNT, REGION, "undone", NOW)
        tx.insert_job(orphan_job())

    failing = failing_between_two(store, refused)
    with pytest.raises(StorageError, match="IntegrityError"):
        failing.result(0)


def test_a_failed_commit_fails_every_write_of_the_group(store: SqlMetadataStore) -> None:
    def breaks_the_commit(tx: MetadataTx) -> None:
        # SQLite checks deferred foreign keys at COMMIT: the statement passes
        # and the group's commit fails (a real COMMIT failure, no fake).
        conn = tx._conn  # type: ignore[attr-defined]
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        tx.insert_job(orphan_job())

    with Parked(store):
        group = [submit(store, create("a")), submit(store, breaks_the_commit)]
        group.append(submit(store, create("b")))
    for future in group:
        with pytest.raises(StorageError, match="metadata transaction failed"):
            future.result(10)
    assert names(store) == set()
    assert submit(store, create("next")).result(10).name == "next"  # the writer goes on


def test_a_write_cancelled_before_it_started_is_not_run(store: SqlMetadataStore) -> None:
    with Parked(store):
        cancelled = submit(store, create("cancelled"))
        assert cancelled.cancel()
        kept = submit(store, create("kept"))
    assert kept.result(10).name == "kept"
    assert names(store) == {"kept"}


def test_close_commits_what_is_queued(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    store = open_metadata_store(url)
    parked = Parked(store)
    queued = [submit(store, create(f"v{i}")) for i in range(MAX_GROUP + 3)]
    closing = threading.Thread(target=store.close)
    closing.start()
    parked.release.set()
    closing.join(10)
    assert not closing.is_alive()
    assert all(f.result(0).name == f"v{i}" for i, f in enumerate(queued))
    reopened = open_metadata_store(url)
    try:
        assert names(reopened) == {f"v{i}" for i in range(MAX_GROUP + 3)}
    finally:
        reopened.close()
