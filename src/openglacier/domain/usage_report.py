"""The usage report (`openglacier usage`, later the console's usage page): the
daily rollup rows (`ports.UsageRow`) shaped per account, vault and day, with an
optional cost estimate from a price table.

The default table is Amazon Glacier's (vaults) us-east-1 prices, as cited in
docs/operations.md (Usage report); a config file's `[prices]` table, or the
file given to `--prices`, replaces any of its keys.
"""

from __future__ import annotations

import calendar
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

from openglacier.ports import UsageRow


class PriceTableError(ValueError):
    """A price table that cannot be used: one line naming the file and key."""


GB = 1 << 30  # AWS bills storage and retrieval in binary gigabytes
TIERS = ("Expedited", "Standard", "Bulk")


@dataclass(frozen=True)
class Prices:
    """Prices in `currency`; every key can be replaced in a `[prices]` table."""

    currency: str = "USD"
    storage_gb_month: float = 0.004
    upload_per_1000: float = 0.05
    request_per_1000: float = 0.0  # other requests: free at AWS
    retrieval_gb_expedited: float = 0.03
    retrieval_gb_standard: float = 0.01
    retrieval_gb_bulk: float = 0.0025
    retrieval_per_1000_expedited: float = 10.0
    retrieval_per_1000_standard: float = 0.05
    retrieval_per_1000_bulk: float = 0.025

    def retrieval(self, tier: str) -> tuple[float, float]:
        """(per GB, per 1,000 requests) of a tier; an unknown tier costs nothing."""
        key = tier.lower()
        return (
            float(getattr(self, f"retrieval_gb_{key}", 0.0)),
            float(getattr(self, f"retrieval_per_1000_{key}", 0.0)),
        )


def prices_from(table: Mapping[str, Any], source: str) -> Prices:
    """The default prices with `table`'s keys replaced; unknown keys and
    non-numbers are errors naming `source`."""
    known = {f.name: f.type for f in fields(Prices)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise PriceTableError(f"{source}: unknown price {key!r}; the keys are {sorted(known)}")
        if name == "currency":
            values[name] = str(value)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise PriceTableError(f"{source}: price {key!r} must be a number >= 0, not {value!r}")
        values[name] = float(value)
    return replace(Prices(), **values)


def load_prices(*paths: Path | None) -> Prices:
    """The defaults, then each file's `[prices]` table in turn (later wins);
    PriceTableError names the file and what is wrong."""
    table: dict[str, Any] = {}
    named = [path for path in paths if path is not None]
    for path in named:
        table.update(prices_in_file(path) or {})
    return prices_from(table, str(named[-1]) if named else "prices")


def prices_in_file(path: Path) -> Mapping[str, Any] | None:
    """A TOML file's `[prices]` table (top level or under `[openglacier]`), if any."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PriceTableError(f"price file {path}: {exc}") from exc
    table = data.get("prices", data.get("openglacier", {}).get("prices"))
    if table is not None and not isinstance(table, dict):
        raise PriceTableError(f"{path}: [prices] must be a table")
    return table


@dataclass
class DayUsage:
    """One account's vault on one day; `archives`/`stored_bytes` None when no
    maintenance pass took that day's snapshot."""

    day: str
    account_id: str
    vault: str
    archives: int | None = None
    stored_bytes: int | None = None
    uploads: int = 0
    upload_bytes: int = 0
    retrievals: dict[str, list[int]] = field(default_factory=dict)  # tier -> [count, bytes]
    requests: dict[str, int] = field(default_factory=dict)  # operation -> count

    def as_dict(self, prices: Prices | None) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "day": self.day,
            "account_id": self.account_id,
            "vault": self.vault,
            "archives": self.archives,
            "stored_bytes": self.stored_bytes,
            "uploads": {"count": self.uploads, "bytes": self.upload_bytes},
            "retrievals": {t: {"count": c, "bytes": b} for t, (c, b) in self.retrievals.items()},
            "requests": dict(self.requests),
        }
        if prices is not None:
            shown["cost"] = cost_of(self, prices)
        return shown


def by_day(rows: Iterable[UsageRow]) -> list[DayUsage]:
    """Rows grouped per (account, vault, day), in that order."""
    days: dict[tuple[str, str, str], DayUsage] = {}
    for row in rows:
        key = (row.account_id, row.vault, row.day)
        usage = days.get(key)
        if usage is None:
            usage = days[key] = DayUsage(row.day, row.account_id, row.vault)
        _add(usage, row)
    return [days[k] for k in sorted(days)]


def _add(usage: DayUsage, row: UsageRow) -> None:
    if row.kind == "stored":
        usage.archives, usage.stored_bytes = row.number, row.bytes
    elif row.kind == "upload":
        usage.uploads += row.number
        usage.upload_bytes += row.bytes
    elif row.kind == "retrieval":
        cell = usage.retrievals.setdefault(row.name, [0, 0])
        cell[0] += row.number
        cell[1] += row.bytes
    elif row.kind == "request":
        usage.requests[row.name] = usage.requests.get(row.name, 0) + row.number


def cost_of(usage: DayUsage, prices: Prices) -> dict[str, Any]:
    """The day's estimate: storage is the day's snapshot for 1/(days in its
    month) of a month; retrievals per GB and per 1,000 by tier; uploads (the
    UploadArchive and CompleteMultipartUpload requests) and every other request
    per 1,000."""
    day = date.fromisoformat(usage.day)
    month_days = calendar.monthrange(day.year, day.month)[1]
    storage = (usage.stored_bytes or 0) / GB * prices.storage_gb_month / month_days
    retrieval = float(
        sum(
            b / GB * prices.retrieval(t)[0] + c / 1000 * prices.retrieval(t)[1]
            for t, (c, b) in usage.retrievals.items()
        )
    )
    uploads = usage.uploads / 1000 * prices.upload_per_1000
    others = sum(usage.requests.values()) - usage.uploads
    requests = max(others, 0) / 1000 * prices.request_per_1000
    total = storage + retrieval + uploads + requests
    return {
        "currency": prices.currency,
        "storage": round(storage, 6),
        "retrieval": round(retrieval, 6),
        "uploads": round(uploads, 6),
        "requests": round(requests, 6),
        "total": round(total, 6),
    }
