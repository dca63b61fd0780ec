"""The `openglacier` command as installed: the transfer client's commands load
only their own modules.

`cli/main.py` imports the whole server (SQLAlchemy, uvicorn, the stores),
most of a second before anything runs. `openglacier archive upload` or
`vault ls` need none of it, and scripts run them in loops; so this group knows
where the client commands live and hands every other name to `cli.main`.
"""

from __future__ import annotations

import importlib

import click

from openglacier import __version__

# Command name -> "module:attribute" of its click command (no server imports).
CLIENT_COMMANDS = {
    "archive": "openglacier.cli.archive:archive",
    "inventory": "openglacier.cli.inventory:inventory",
    "job": "openglacier.cli.job:job",
    "migrate": "openglacier.cli.migrate:migrate",
    "vault": "openglacier.cli.vault:vault",
}


def _load(target: str) -> click.Command:
    module, attr = target.split(":")
    command = getattr(importlib.import_module(module), attr)
    assert isinstance(command, click.Command)
    return command


def _server_group() -> click.Group:
    from openglacier.cli.main import main  # noqa: PLC0415 - the point is to load it late

    return main


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*CLIENT_COMMANDS, *_server_group().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in CLIENT_COMMANDS:
            return _load(CLIENT_COMMANDS[cmd_name])
        return _server_group().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="openglacier")
def cli() -> None:
    """OpenGlacier: an Amazon Glacier compatible archive server, and a client for
    any Glacier endpoint (vault, archive, job, inventory, migrate)."""
