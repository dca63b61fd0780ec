"""The web console at `/console/` (docs/console.md).

`app.py` holds the request handling (routes, sessions, CSRF, rendering);
each `pages_*.py` module lists its `ROUTES`; templates/ and static/ are served
from the package, with no build step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openglacier.console import pages_admin, pages_auth, pages_jobs, pages_vaults
from openglacier.console.app import Console
from openglacier.domain.usage_report import Prices

if TYPE_CHECKING:
    from openglacier.api.app import GlacierApp


def build_console(
    api: GlacierApp, admin_token: str, region: str, account: str, prices: Prices
) -> Console:
    """`prices`: the usage page's cost estimate (the defaults, or the config
    file's `[prices]` table, as `openglacier usage --cost` uses)."""
    routes = pages_auth.ROUTES + pages_vaults.ROUTES + pages_jobs.ROUTES + pages_admin.ROUTES
    return Console(api, admin_token, region, account, routes, prices=prices)
