"""Fixtures that run each contract suite over every adapter (design 6).

External services (PostgreSQL here, SeaweedFS elsewhere) may be missing on a
laptop, where their tests skip with a reason; in CI a skip would hide a broken
suite, so `require_or_skip` fails there instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, delete, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from openglacier.storage.metadata.schema import metadata
from openglacier.storage.metadata.store import SqlMetadataStore, open_metadata_store

PG_URL_ENV = "OPENGLACIER_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_or_skip(reason: str) -> NoReturn:
    """Skip for `reason`, except in CI (env CI set), where a missing service fails."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this suite must run, not skip)", pytrace=False)
    pytest.skip(reason)


def pg_admin_url() -> URL:
    return make_url(os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)).set(drivername="postgresql+psycopg")


@contextmanager
def fresh_pg_database(admin_url: URL) -> Iterator[str]:
    """A new, uniquely named database on the server of `admin_url`; dropped afterwards.

    Created with a linguistic (ICU) default collation where the server has one, so
    tests notice a column that forgets its binary "C" collation.
    """
    name = f"og_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            icu = conn.scalar(text("SELECT count(*) FROM pg_collation WHERE collname = 'en-x-icu'"))
            options = (
                " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.UTF-8'"
                if icu
                else ""
            )
            conn.execute(text(f'CREATE DATABASE "{name}"{options}'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def pg_admin() -> URL:
    url = pg_admin_url()
    probe = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        shown = url.render_as_string(hide_password=True)
        require_or_skip(f"PostgreSQL unreachable at {shown} (set {PG_URL_ENV}): {exc.orig}")
    finally:
        probe.dispose()
    return url


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


@pytest.fixture
def empty_db_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database nothing has touched yet (for migration tests)."""
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with fresh_pg_database(request.getfixturevalue("pg_admin")) as url:
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
