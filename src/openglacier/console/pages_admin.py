"""Accounts, keys, the notification outbox, damage found, and usage charts.

Accounts, keys and the outbox are the admin's (they span accounts); damage and
usage are shown to a key's session for its own account only. Key secrets are
never read into a page: the keys page shows ids, accounts and dates.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.responses import Response

from openglacier.console.app import ConsoleError, Page, Route
from openglacier.domain.usage_report import DayUsage, Prices, by_day, cost_of
from openglacier.notify.deliver import DELIVERED, FAILED, PENDING

OUTBOX_STATES = (PENDING, DELIVERED, FAILED)


async def accounts(page: Page) -> Response:
    deps, region = page.console.services.deps, page.console.region

    def read(tx: Any) -> list[dict[str, Any]]:
        ids = sorted({c.account_id for c in tx.list_credentials()} | {page.caller.account_id})
        rows = []
        for account in ids:
            vaults = tx.list_vaults(account, region, None, 1000)
            rows.append(
                {
                    "account_id": account,
                    "vaults": len(vaults),
                    "archives": sum(v.live_count for v in vaults),
                    "bytes": sum(v.live_size for v in vaults),
                }
            )
        return rows

    return page.render("accounts.html", accounts=await deps.in_read_tx(read))


async def keys(page: Page) -> Response:
    listed = await page.console.services.deps.in_read_tx(lambda tx: tx.list_credentials())
    shown = [
        {
            "access_key_id": c.access_key_id,
            "account_id": c.account_id,
            "created_at": c.created_at,
            "description": c.description,
            "is_root": c.is_root,
        }
        for c in sorted(listed, key=lambda c: (c.account_id, c.access_key_id))
    ]
    return page.render("keys.html", keys=shown)


async def notifications(page: Page) -> Response:
    state = page.request.query_params.get("state", "")
    if state and state not in OUTBOX_STATES:
        raise ConsoleError(400, f"The state is one of {', '.join(OUTBOX_STATES)}.")
    rows = await page.console.services.deps.in_read_tx(
        lambda tx: tx.list_notifications(state or None, 200)
    )
    return page.render("notifications.html", notifications=rows, state=state)


async def damage(page: Page) -> Response:
    state = page.request.query_params.get("state", "open")
    repaired = {"open": False, "repaired": True, "all": None}.get(state, False)
    rows = await page.console.services.deps.in_read_tx(
        lambda tx: tx.list_damage(repaired=repaired, after_id=None, limit=500)
    )
    session = page.session
    if session is not None and not session.is_admin:
        # A vault ARN names its account: a key sees its own account's records.
        marker = f":{session.account_id}:vaults/"
        rows = [r for r in rows if marker in r.vault]
    return page.render("damage.html", records=rows, state=state)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    height: float  # percent of the chart
    text: str


async def usage(page: Page) -> Response:
    account = page.caller.account_id
    days = _days(page.request.query_params.get("days", "30"))
    today = page.console.services.deps.clock.now().date()
    period = [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    rows = await page.console.services.deps.in_read_tx(
        lambda tx: tx.usage_rows(account, period[0], None)
    )
    daily = by_day(rows)
    totals = _per_day(daily, page.console.prices, period)
    return page.render(
        "usage.html",
        account=account,
        days=days,
        stored=_bars(totals, "stored_bytes"),
        uploads=_bars(totals, "upload_bytes"),
        requests=_bars(totals, "requests"),
        vaults=_per_vault(daily),
        cost=sum(day["cost"] for day in totals.values()),
        currency=page.console.prices.currency,
    )


def _days(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 366:
        raise ConsoleError(400, "Show between 1 and 366 days.")
    return int(value)


def _per_day(
    daily: list[DayUsage], prices: Prices, period: list[str]
) -> dict[str, dict[str, float]]:
    """Each day of the period (days without figures are zero, so the chart's
    axis is the calendar)."""
    totals: dict[str, dict[str, float]] = {day: defaultdict(float) for day in period}
    for usage in daily:
        if usage.day not in totals:
            continue
        day = totals[usage.day]
        day["stored_bytes"] += usage.stored_bytes or 0
        day["upload_bytes"] += usage.upload_bytes
        day["requests"] += sum(usage.requests.values())
        day["cost"] += cost_of(usage, prices)["total"]
    return totals


def _bars(totals: dict[str, dict[str, float]], key: str) -> list[Bar]:
    peak = max((day[key] for day in totals.values()), default=0) or 1
    return [
        Bar(
            label=day,
            value=values[key],
            height=round(100 * values[key] / peak, 1),
            text=f"{day}: {values[key]:,.0f}",
        )
        for day, values in totals.items()
    ]


def _per_vault(daily: list[DayUsage]) -> list[dict[str, Any]]:
    """The latest day's figures per vault, with the period's uploads and retrievals."""
    vaults: dict[str, dict[str, Any]] = {}
    for usage in daily:
        row = vaults.setdefault(
            usage.vault, {"vault": usage.vault, "uploads": 0, "retrievals": 0, "requests": 0}
        )
        if usage.stored_bytes is not None:
            row["stored_bytes"], row["archives"] = usage.stored_bytes, usage.archives
        row["uploads"] += usage.uploads
        row["retrievals"] += sum(count for count, _ in usage.retrievals.values())
        row["requests"] += sum(usage.requests.values())
    return sorted(vaults.values(), key=lambda row: str(row["vault"]))


ROUTES = [
    Route("GET", "/accounts", accounts, admin=True),
    Route("GET", "/keys", keys, admin=True),
    Route("GET", "/notifications", notifications, admin=True),
    Route("GET", "/damage", damage),
    Route("GET", "/usage", usage),
]
