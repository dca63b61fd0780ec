"""Operator commands for tenants and vault governance (issue 4).

`accounts create` makes a new account id with its first access key, so one server
can host several tenants whose cross-account access is decided by vault access
policies. `policies list` shows every vault access policy and vault lock.
Both work against the metadata store directly; the server need not be running.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from openglacier.cli.keys import create_key, list_keys, metadata_tx
from openglacier.cli.options import settings_from, storage_options
from openglacier.clock import SystemClock, iso_ms
from openglacier.ids import new_account_id
from openglacier.records import GovernedVault, VaultLock

console = Console(highlight=False)


@click.group()
def accounts() -> None:
    """Manage tenant accounts (an account is an id with access keys)."""


@accounts.command("create")
@storage_options
@click.option("--account-id", "new_id", help="12-digit id for the account [random].")
@click.option("--description", default="", help="Free text shown by `keys list`.")
def accounts_create(
    config_file: Path | None, new_id: str | None, description: str, **options: Any
) -> None:
    """Create an account with its first access key; prints the secret once."""
    settings = settings_from(config_file, **options)
    account_id = new_id or new_account_id()
    if any(cred.account_id == account_id for cred in list_keys(settings)):
        raise click.ClickException(f"account {account_id} already exists; use `keys create`")
    cred = create_key(settings, account_id, description or f"account {account_id}")
    console.print(f"account id         {cred.account_id}")
    console.print(f"access key id      {cred.access_key_id}")
    console.print(f"secret access key  {cred.secret_access_key}")


@accounts.command("list")
@storage_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per account.")
def accounts_list(config_file: Path | None, as_json: bool, **options: Any) -> None:
    """List accounts that have access keys."""
    counts: dict[str, int] = {}
    for cred in list_keys(settings_from(config_file, **options)):
        counts[cred.account_id] = counts.get(cred.account_id, 0) + 1
    if as_json:
        for account_id, count in sorted(counts.items()):
            click.echo(json.dumps({"AccountId": account_id, "AccessKeys": count}))
        return
    table = Table("account id", "access keys")
    for account_id, count in sorted(counts.items()):
        table.add_row(account_id, str(count))
    console.print(table)


@click.group()
def policies() -> None:
    """Inspect vault access policies and vault locks."""


@policies.command("list")
@storage_options
@click.option("--account-id", "only_account", help="Only vaults of this account.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines with the documents.")
def policies_list(
    config_file: Path | None, only_account: str | None, as_json: bool, **options: Any
) -> None:
    """List vaults with an access policy or a vault lock."""
    settings = settings_from(config_file, **options)
    with metadata_tx(settings, readonly=True) as tx:
        governed = tx.list_governed_vaults()
    rows = [row for row in governed if only_account is None or row.vault.account_id == only_account]
    if as_json:
        for row in rows:
            click.echo(json.dumps(_row_json(row)))
        return
    table = Table("account id", "region", "vault", "access policy", "lock", "lock expires")
    for row in rows:
        lock = row.governance.lock
        policy = row.governance.access_policy
        table.add_row(
            row.vault.account_id,
            row.vault.region,
            row.vault.name,
            f"{len(policy.encode())} bytes" if policy is not None else "-",
            _lock_state(lock),
            iso_ms(lock.expires_at) if lock and lock.expires_at else "-",
        )
    console.print(table)


def _lock_state(lock: VaultLock | None) -> str:
    if lock is None:
        return "-"
    return str(lock.state) if lock.in_force(SystemClock().now()) else f"{lock.state} (expired)"


def _row_json(row: GovernedVault) -> dict[str, Any]:
    lock = row.governance.lock
    return {
        "AccountId": row.vault.account_id,
        "Region": row.vault.region,
        "VaultName": row.vault.name,
        "AccessPolicy": row.governance.access_policy,
        "Lock": None
        if lock is None
        else {
            "Policy": lock.policy,
            "State": _lock_state(lock),
            "CreationDate": iso_ms(lock.created_at),
            "ExpirationDate": iso_ms(lock.expires_at) if lock.expires_at else None,
        },
    }
