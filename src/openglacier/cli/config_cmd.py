"""`openglacier config`: the effective settings and the settings reference."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from openglacier.cli.options import server_options, settings_and_sources, storage_options
from openglacier.cli.settings_doc import render_readme_table, render_reference
from openglacier.config import Settings, shown_value

console = Console(highlight=False)


@click.group()
def config() -> None:
    """Show the effective settings, or the reference of every setting."""


@config.command("show")
@storage_options
@server_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object: setting -> value, source."
)
def config_show(config_file: Path | None, as_json: bool, **options: Any) -> None:
    """Print every setting `serve` would use with these options, and where each
    came from (default, file, environment, flag); secrets are masked."""
    settings, sources = settings_and_sources(config_file, **options)
    rows = {
        f.name: {"value": _jsonable(shown_value(settings, f.name)), "source": sources[f.name]}
        for f in fields(Settings)
    }
    if as_json:
        click.echo(json.dumps({"config_file": _jsonable(config_file), "settings": rows}))
        return
    if config_file is not None:
        console.print(f"config file {config_file}")
    table = Table("setting", "value", "source")
    for name, row in rows.items():
        table.add_row(name, str(row["value"]), str(row["source"]))
    console.print(table)


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


@config.command("reference")
@click.option(
    "--readme-table", is_flag=True, help="Print README's table of flags instead of the reference."
)
def config_reference(readme_table: bool) -> None:
    """Print the settings reference (docs/settings.md) generated from the code."""
    click.echo(render_readme_table() if readme_table else render_reference(), nl=False)
