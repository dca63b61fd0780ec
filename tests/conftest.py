"""Suite-wide fixtures."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import URL

from support.seaweed import seaweed_store  # noqa: F401 - one SeaweedFS per session
from support.services import pg_admin_url, probe_pg


@pytest.fixture(scope="session")
def pg_admin() -> URL:
    """The PostgreSQL server's admin URL; skips (fails in CI) when it is unreachable."""
    return probe_pg(pg_admin_url())
