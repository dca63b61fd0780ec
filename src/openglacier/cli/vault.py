"""`openglacier vault ...`: the transfer client's vault commands (transfer/vaults.py)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from openglacier.cli.client_options import endpoint_from, endpoint_options
from openglacier.cli.client_support import (
    EXIT_CODES,
    client_errors,
    connect,
    json_option,
    vault_name,
)
from openglacier.transfer import vaults

console = Console(highlight=False)


@click.group()
def vault() -> None:
    """vault commands against any Glacier endpoint (OpenGlacier or AWS)."""


@vault.command("ls", epilog=EXIT_CODES)
@endpoint_options
@json_option
def vault_ls(as_json: bool, **options: Any) -> None:
    """List the account's vaults (counts and sizes as of each vault's last inventory)."""
    endpoint = endpoint_from(options)
    glacier = connect(endpoint)
    with client_errors():
        found = list(vaults.list_vaults(glacier, endpoint.account_id))
    if as_json:
        for item in found:
            click.echo(json.dumps(item))
        return
    table = Table()
    for header in ("vault", "archives", "size", "created", "last inventory"):
        table.add_column(header, no_wrap=True)
    for item in found:
        table.add_row(
            item["VaultName"],
            str(item["NumberOfArchives"] or 0),
            decimal(int(item["SizeInBytes"] or 0)),
            item["CreationDate"] or "",
            item["LastInventoryDate"] or "never",
        )
    console.print(table)


@vault.command("create", epilog=EXIT_CODES)
@endpoint_options
@click.argument("name", callback=vault_name)
def vault_create(name: str, **options: Any) -> None:
    """Create vault NAME (creating one that exists is not an error, as in Glacier)."""
    endpoint = endpoint_from(options)
    glacier = connect(endpoint)
    with client_errors():
        vaults.create_vault(glacier, name, endpoint.account_id)
    click.echo(f"created vault {name}")


@vault.command("rm", epilog=EXIT_CODES)
@endpoint_options
@click.argument("name", callback=vault_name)
def vault_rm(name: str, **options: Any) -> None:
    """Delete vault NAME. Glacier deletes only a vault that was empty at its last
    inventory and has not been written to since (exit 6 otherwise)."""
    endpoint = endpoint_from(options)
    glacier = connect(endpoint)
    with client_errors(f"vault {name}"):
        vaults.delete_vault(glacier, name, endpoint.account_id)
    click.echo(f"deleted vault {name}")


@vault.command("describe", epilog=EXIT_CODES)
@endpoint_options
@json_option
@click.argument("name", callback=vault_name)
def vault_describe(name: str, as_json: bool, **options: Any) -> None:
    """Show vault NAME: ARN, creation date, and archives and size at its last inventory."""
    endpoint = endpoint_from(options)
    glacier = connect(endpoint)
    with client_errors(f"vault {name}"):
        info = vaults.describe_vault(glacier, name, endpoint.account_id)
    if as_json:
        click.echo(json.dumps(info))
        return
    width = max(len(key) for key in info)
    for key, value in info.items():
        click.echo(f"{key:<{width}}  {'' if value is None else value}")
