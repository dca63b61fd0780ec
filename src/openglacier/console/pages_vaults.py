"""Vaults, a vault, its archives and an archive's page.

Reads of a vault go through the Glacier operation a client would call
(DescribeVault, ListTagsForVault, GetVaultAccessPolicy, ...) so vault access
policies decide what a key's session sees. The live archive list has no Glacier
operation (clients get it from an inventory): it is shown to whoever may
DescribeVault, read from the metadata store in archive-id order with a keyset
cursor, so a page costs the same at the millionth archive as at the first.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from openglacier.console.app import PREFIX, ConsoleError, Page, Route
from openglacier.records import Archive, Vault

ARCHIVE_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")  # what a cursor may name
PAGE_SIZE = 50
SCAN_LIMIT = 5_000  # archives examined per filtered page before offering "continue"


async def vaults(page: Page, message: str = "", status: int = 200) -> Response:
    account = page.caller.account_id
    after = page.request.query_params.get("after") or None
    rows: list[Vault] = await page.console.services.deps.in_read_tx(
        lambda tx: tx.list_vaults(account, page.console.region, after, PAGE_SIZE + 1)
    )
    more = rows[PAGE_SIZE].name if len(rows) > PAGE_SIZE else None
    return page.render(
        "vaults.html", status, vaults=rows[:PAGE_SIZE], more=more, account=account, message=message
    )


async def create_vault(page: Page) -> Response:
    name = (await page.form()).get("vault_name", "").strip()
    try:
        await page.glacier("PUT", f"/-/vaults/{quote_segment(name)}")
    except ConsoleError as error:
        return await vaults(page, error.message, error.status)
    return RedirectResponse(f"{PREFIX}/vaults/{quote_segment(name)}", 303)


async def vault(page: Page) -> Response:
    name = page.params["vault"]
    base = f"/-/vaults/{quote_segment(name)}"
    described = await page.glacier("GET", base)
    tags = (await page.glacier("GET", f"{base}/tags")).get("Tags", {})
    notifications = await page.glacier_optional("GET", f"{base}/notification-configuration")
    policy = await page.glacier_optional("GET", f"{base}/access-policy")
    lock = await page.glacier_optional("GET", f"{base}/lock-policy")
    row = await _vault_row(page, name)
    return page.render(
        "vault.html",
        vault=described,
        live=row,
        tags=tags,
        notifications=notifications,
        policy=_pretty((policy or {}).get("Policy")),
        lock=lock,
        lock_policy=_pretty((lock or {}).get("Policy")),
    )


async def archives(page: Page) -> Response:
    name = page.params["vault"]
    await page.glacier("GET", f"/-/vaults/{quote_segment(name)}")  # the policy check
    row = await _vault_row(page, name)
    query = page.request.query_params
    filters = ArchiveFilter.parse(
        query.get("q", ""), query.get("min", ""), query.get("max", ""),
        query.get("from", ""), query.get("to", ""),
    )  # fmt: skip
    after = _decode_cursor(query.get("cursor", ""))
    found, cursor = await page.console.services.deps.in_read_tx(
        lambda tx: filters.scan(tx, row.id, after)
    )
    return page.render(
        "archives.html",
        vault=row,
        archives=found,
        cursor=_encode_cursor(cursor) if cursor else "",
        filters=filters,
        args={k: v for k, v in query.items() if k != "cursor" and v},
    )


async def archive(page: Page) -> Response:
    name, archive_id = page.params["vault"], page.params["archive"]
    await page.glacier("GET", f"/-/vaults/{quote_segment(name)}")
    row = await _vault_row(page, name)

    def read(tx: Any) -> tuple[Archive | None, list[Any], Any]:
        found = tx.get_archive(archive_id)
        if found is None or found.vault_id != row.id or found.removed_seq is not None:
            return None, [], None
        return found, tx.get_segments(archive_id), tx.open_damage(archive_id)

    found, segments, damage = await page.console.services.deps.in_read_tx(read)
    if found is None:
        raise ConsoleError(404, f"No live archive {archive_id} in vault {name}.")
    jobs = await _archive_jobs(page, name, archive_id)
    return page.render(
        "archive.html", vault=row, archive=found, segments=segments, damage=damage, jobs=jobs
    )


async def _archive_jobs(page: Page, vault_name: str, archive_id: str) -> list[dict[str, Any]]:
    """The vault's jobs for this archive, newest first (the first 1,000 jobs)."""
    jobs: list[dict[str, Any]] = []
    marker = ""
    for _ in range(20):
        query = {"limit": "50", **({"marker": marker} if marker else {})}
        listed = await page.glacier("GET", f"/-/vaults/{quote_segment(vault_name)}/jobs", query)
        jobs += [j for j in listed.get("JobList", []) if j.get("ArchiveId") == archive_id]
        marker = listed.get("Marker") or ""
        if not marker:
            break
    return sorted(jobs, key=lambda job: job.get("CreationDate", ""), reverse=True)


async def _vault_row(page: Page, name: str) -> Vault:
    account, region = page.caller.account_id, page.console.region
    row: Vault | None = await page.console.services.deps.in_read_tx(
        lambda tx: tx.get_vault(account, region, name)
    )
    if row is None:
        raise ConsoleError(404, f"There is no vault {name}.")
    return row


class ArchiveFilter:
    """Description contains, size between, created between: any of them."""

    def __init__(
        self,
        text: str,
        low: int | None,
        high: int | None,
        since: datetime | None,
        until: datetime | None,
    ) -> None:
        self.text, self.low, self.high, self.since, self.until = text, low, high, since, until

    @classmethod
    def parse(cls, text: str, low: str, high: str, since: str, until: str) -> ArchiveFilter:
        return cls(text.strip(), _int(low, "size"), _int(high, "size"), _day(since), _day(until))

    @property
    def active(self) -> bool:
        return any(
            v not in ("", None) for v in (self.text, self.low, self.high, self.since, self.until)
        )

    def matches(self, archive: Archive) -> bool:
        created = archive.created_at.replace(tzinfo=None)
        return (
            (not self.text or self.text.lower() in (archive.description or "").lower())
            and (self.low is None or archive.size >= self.low)
            and (self.high is None or archive.size <= self.high)
            and (self.since is None or created >= self.since)
            and (self.until is None or created < self.until)
        )

    def scan(self, tx: Any, vault_id: int, after: str | None) -> tuple[list[Archive], str | None]:
        """Up to a page of matches after `after`, reading at most SCAN_LIMIT rows;
        the cursor says where to go on (None: the end)."""
        found: list[Archive] = []
        scanned = 0
        while scanned < SCAN_LIMIT:
            batch = tx.list_live_archives(vault_id, after, 500 if self.active else PAGE_SIZE)
            for item in batch:
                scanned += 1
                after = item.archive_id
                if self.matches(item):
                    found.append(item)
                    if len(found) == PAGE_SIZE:
                        return found, after
            if len(batch) < (500 if self.active else PAGE_SIZE):
                return found, None
        return found, after


def _int(value: str, what: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit():
        raise ConsoleError(400, f"The {what} filter takes a whole number of bytes.")
    return int(value)


def _day(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ConsoleError(400, "Dates are written YYYY-MM-DD.") from None


def _encode_cursor(archive_id: str) -> str:
    return base64.urlsafe_b64encode(archive_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str | None:
    if not cursor:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:
        decoded = ""
    if not ARCHIVE_ID.fullmatch(decoded):
        raise ConsoleError(400, "That page link is not valid; start from the first page.")
    return decoded


def _pretty(policy: str | None) -> str | None:
    if not policy:
        return None
    try:
        return json.dumps(json.loads(policy), indent=2, sort_keys=False)
    except ValueError:
        return policy


def quote_segment(value: str) -> str:
    return quote(value, safe="")


ROUTES = [
    Route("GET", "/vaults", vaults),
    Route("POST", "/vaults", create_vault),
    Route("GET", "/vaults/{vault}", vault),
    Route("GET", "/vaults/{vault}/archives", archives),
    Route("GET", "/vaults/{vault}/archives/{archive}", archive),
]
