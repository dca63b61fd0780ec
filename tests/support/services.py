"""External services for tests (PostgreSQL today, SeaweedFS later).

On a laptop without a service its tests skip with the reason; in CI (CI set) a skip
would hide a broken suite, so `require_or_skip` fails there instead (design 6).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

PG_URL_ENV = "OPENGLACIER_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_or_skip(reason: str) -> NoReturn:
    """Skip for `reason`, except in CI (env CI set), where a missing service fails."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this suite must run, not skip)", pytrace=False)
    pytest.skip(reason)


def pg_admin_url() -> URL:
    return make_url(os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)).set(drivername="postgresql+psycopg")


def probe_pg(url: URL) -> URL:
    """The admin URL if PostgreSQL answers; otherwise skip (or fail in CI)."""
    probe = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        shown = url.render_as_string(hide_password=True)
        require_or_skip(f"PostgreSQL unreachable at {shown} (set {PG_URL_ENV}): {first_line(exc)}")
    finally:
        probe.dispose()
    return url


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


def first_line(exc: SQLAlchemyError) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
