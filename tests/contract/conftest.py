"""Fixtures that run each contract suite over every adapter (design 6).

External services (PostgreSQL here, SeaweedFS elsewhere) may be missing on a
laptop, where their tests skip with a reason; in CI a skip would hide a broken
suite, so `require_or_skip` fails there instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import URL

from openglacier.clock import PROFILES, ManualClock
from openglacier.domain.context import Deps
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.metadata.schema import metadata
from openglacier.storage.metadata.store import SqlMetadataStore, open_metadata_store
from support.services import fresh_pg_database, require_or_skip

ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]

__all__ = ["fresh_pg_database", "require_or_skip"]


@pytest.fixture(scope="session")
def pg_database(pg_admin: URL) -> Iterator[str]:
    """One database for the session; the `store` fixture empties it per test."""
    with fresh_pg_database(pg_admin) as url:
        yield url


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    # A directory that does not exist yet: the store must create it.
    return f"sqlite:///{tmp_path / 'meta' / 'metadata.db'}"


@pytest.fixture
def store_url(engine_name: str, request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if engine_name == "sqlite" else "pg_database"
    return str(request.getfixturevalue(fixture))


@contextmanager
def untouched_database(
    engine_name: str, directory: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    if engine_name == "sqlite":
        yield f"sqlite:///{directory / 'fresh.db'}"
        return
    with fresh_pg_database(request.getfixturevalue("pg_admin")) as url:
        yield url


@pytest.fixture
def empty_db_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database nothing has touched yet (for migration tests)."""
    with untouched_database(engine_name, tmp_path, request) as url:
        yield url


@pytest.fixture
def other_empty_db_url(
    engine_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A second untouched database on the same engine, to compare with the first."""
    (tmp_path / "other").mkdir()
    with untouched_database(engine_name, tmp_path / "other", request) as url:
        yield url


@contextmanager
def open_empty_store(url: str) -> Iterator[SqlMetadataStore]:
    """A migrated metadata store with every table emptied (databases are reused)."""
    store = open_metadata_store(url)
    try:
        with store.engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(delete(table))
        yield store
    finally:
        store.close()


@pytest.fixture
def metadata_store(store_url: str) -> Iterator[SqlMetadataStore]:
    """A migrated, empty metadata store on the engine of `engine_name`."""
    with open_empty_store(store_url) as store:
        yield store


@pytest.fixture
def pg_store(pg_database: str) -> Iterator[SqlMetadataStore]:
    """PostgreSQL only; tests using it carry the `postgres` marker."""
    with open_empty_store(pg_database) as store:
        yield store


@pytest.fixture
def clock() -> ManualClock:
    """Starts at the real now, like the blob files' mtimes; moves only when told."""
    return ManualClock()


@pytest.fixture
def deps(metadata_store: SqlMetadataStore, tmp_path: Path, clock: ManualClock) -> Iterator[Deps]:
    """The engine's metadata store, filesystem blobs, a manual clock, instant jobs."""
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    yield Deps(store=metadata_store, blobs=blobs, clock=clock, timing=PROFILES["instant"])
    blobs.close()
