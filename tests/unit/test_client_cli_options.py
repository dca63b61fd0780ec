"""Every option of the client commands (vault, archive) has help text and an
OPENGLACIER_* variable, and every command documents its exit codes."""

from __future__ import annotations

import click
import pytest

from openglacier.cli.archive import archive
from openglacier.cli.vault import vault

OWN = {"vault": ("ls", "create", "rm", "describe"), "archive": ("upload", "ls", "rm")}
COMMANDS = [
    (f"{group.name} {name}", group.commands[name])
    for group in (vault, archive)
    for name in OWN[str(group.name)]
]


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_options_have_help_and_a_variable(name: str, command: click.Command) -> None:
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        assert param.help, f"{name} {param.opts[0]}: no help text"
        assert isinstance(param.envvar, str), f"{name} {param.opts[0]}: no variable"
        assert param.envvar.startswith("OPENGLACIER_"), f"{name} {param.opts[0]}"
        assert param.envvar in param.help, f"{name} {param.opts[0]}: variable not in its help"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_commands_document_their_exit_codes(name: str, command: click.Command) -> None:
    assert command.epilog is not None, name
    assert "Exit codes" in command.epilog, name
