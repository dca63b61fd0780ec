"""`openglacier usage`: the usage report from the daily rollup table
(docs/operations.md, Usage report), against the metadata store, with or
without a server running.

A rich table per account and vault by default (the latest stored snapshot and
the period's totals); `--json`: one object per account, vault and day. With
`--cost` or `--prices FILE` each gets a cost estimate (domain/usage_report.py).
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from openglacier.cli.keys import metadata_tx
from openglacier.cli.options import settings_from, storage_options
from openglacier.domain.usage_report import (
    DayUsage,
    Prices,
    PriceTableError,
    by_day,
    cost_of,
    load_prices,
)

# Piped or redirected, rich would fold the table to 80 columns: give it room.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-12-04") from None


@click.command()
@storage_options
@click.option(
    "--account", envvar="OPENGLACIER_USAGE_ACCOUNT", help="Only this account id (12 digits)."
)
@click.option(
    "--since",
    envvar="OPENGLACIER_USAGE_SINCE",
    callback=_day,
    metavar="DATE",
    help="First day (UTC, YYYY-MM-DD) to report, inclusive.",
)
@click.option(
    "--until",
    envvar="OPENGLACIER_USAGE_UNTIL",
    callback=_day,
    metavar="DATE",
    help="Last day (UTC, YYYY-MM-DD) to report, inclusive.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="OPENGLACIER_USAGE_JSON",
    help="Print one JSON object per account, vault and day, a line each.",
)
@click.option(
    "--cost",
    is_flag=True,
    envvar="OPENGLACIER_USAGE_COST",
    help="Add a cost estimate: AWS's Glacier prices, or the config file's [prices] table.",
)
@click.option(
    "--prices",
    "prices_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OPENGLACIER_USAGE_PRICES",
    help="A TOML file whose [prices] table replaces the default prices (implies --cost).",
)
def usage(
    config_file: Path | None,
    *,
    account: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
    cost: bool,
    prices_file: Path | None,
    **options: Any,
) -> None:
    """Per account and vault: stored archives and bytes, uploads, retrievals by
    tier, requests by operation, from the daily rollup maintenance writes."""
    settings = settings_from(config_file, **options)
    prices = _prices(config_file, prices_file) if cost or prices_file else None
    with metadata_tx(settings, readonly=True) as tx:
        rows = tx.usage_rows(account, since, until)
    days = by_day(rows)
    if as_json:
        for usage_day in days:
            click.echo(json.dumps(usage_day.as_dict(prices)))
        return
    _print_table(days, prices)


def _prices(config_file: Path | None, prices_file: Path | None) -> Prices:
    """Defaults, then the config file's [prices], then --prices's."""
    try:
        return load_prices(config_file, prices_file)
    except PriceTableError as exc:
        raise click.ClickException(str(exc)) from None


def _print_table(days: list[DayUsage], prices: Prices | None) -> None:
    if not days:
        console.print("no usage recorded (maintenance writes it; see docs/operations.md)")
        return
    table = Table("account", "vault", "days", "archives", "stored", "uploads", "retrievals")
    table.add_column("requests")
    if prices is not None:
        table.add_column(f"cost ({prices.currency})", justify="right")
    for (account, vault), group in _per_vault(days).items():
        latest = next((d for d in reversed(group) if d.archives is not None), None)
        cells = [
            account,
            vault or "(account)",
            f"{group[0].day}..{group[-1].day}",
            "" if latest is None else str(latest.archives),
            "" if latest is None else _size(latest.stored_bytes or 0),
            f"{sum(d.uploads for d in group)} ({_size(sum(d.upload_bytes for d in group))})",
            _retrievals(group),
            _requests(group),
        ]
        if prices is not None:
            cells.append(f"{sum(cost_of(d, prices)['total'] for d in group):.4f}")
        table.add_row(*cells)
    console.print(table)


def _per_vault(days: list[DayUsage]) -> dict[tuple[str, str], list[DayUsage]]:
    groups: dict[tuple[str, str], list[DayUsage]] = {}
    for d in days:
        groups.setdefault((d.account_id, d.vault), []).append(d)
    return groups


def _retrievals(group: list[DayUsage]) -> str:
    totals: dict[str, list[int]] = {}
    for d in group:
        for tier, (count, size) in d.retrievals.items():
            cell = totals.setdefault(tier, [0, 0])
            cell[0] += count
            cell[1] += size
    return "\n".join(f"{t} {c} ({_size(b)})" for t, (c, b) in sorted(totals.items()))


def _requests(group: list[DayUsage]) -> str:
    totals: dict[str, int] = {}
    for d in group:
        for operation, count in d.requests.items():
            totals[operation] = totals.get(operation, 0) + count
    return "\n".join(f"{op} {n}" for op, n in sorted(totals.items()))


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return ""  # unreachable
