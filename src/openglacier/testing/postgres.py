"""Scratch PostgreSQL databases for the test suite and the bench.

Both take the server from `OPENGLACIER_TEST_PG_URL` (default: the local server,
trust auth) and work in a fresh database each, dropped afterwards, so runs
never see each other's rows and leave nothing behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

__all__ = ["DEFAULT_PG_URL", "PG_URL_ENV", "pg_admin_url", "scratch_database"]

PG_URL_ENV = "OPENGLACIER_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_admin_url() -> URL:
    """The server to make scratch databases on (psycopg 3 driver)."""
    return make_url(os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)).set(drivername="postgresql+psycopg")


@contextmanager
def scratch_database(admin_url: URL, prefix: str = "og_test") -> Iterator[str]:
    """A new, uniquely named database on the server of `admin_url`; dropped afterwards.

    Created with a linguistic (ICU) default collation where the server has one, so
    tests notice a column that forgets its binary "C" collation.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
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
