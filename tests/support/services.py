"""External services for tests (PostgreSQL today, SeaweedFS later).

On a laptop without a service its tests skip with the reason; in CI (CI set) a skip
would hide a broken suite, so `require_or_skip` fails there instead (design 6).
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from openglacier.testing.postgres import PG_URL_ENV, pg_admin_url, scratch_database

__all__ = ["fresh_pg_database", "in_ci", "pg_admin_url", "probe_pg", "require_or_skip"]

# The scratch-database helpers are shared with the bench (openglacier.testing.postgres).
fresh_pg_database = scratch_database


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_or_skip(reason: str) -> NoReturn:
    """Skip for `reason`, except in CI (env CI set), where a missing service fails."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this suite must run, not skip)", pytrace=False)
    pytest.skip(reason)


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


def first_line(exc: SQLAlchemyError) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
