"""docs/settings.md and README's settings table are generated from Settings, and
every option of every command is documented and has its variable."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import click
from click.testing import CliRunner

from openglacier.cli.entry import cli
from openglacier.cli.main import main
from openglacier.cli.options import SERVE_SETTINGS
from openglacier.cli.settings_doc import (
    README_BEGIN,
    README_END,
    render_readme_table,
    render_reference,
)
from openglacier.config import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run `python -m openglacier.cli.settings_doc --write` in the repository"

# Per-invocation arguments, not settings: a variable would silently apply them to
# every command run (and OPENGLACIER_ACCOUNT_ID already names the root account).
NOT_SETTINGS = {
    "add",  # encryption-key create --add
    "delete_after",  # blobs rewrite
    "key_id",  # blobs rewrite
    "as_json",
    "description",
    "key_account",
    "new_id",
    "only_account",
    "readme_table",
    "to_url",
}

CLIENT_COMMANDS = {"migrate", "archive", "vault", "job", "inventory"}  # Glacier clients
# `openglacier usage`'s report options: not settings, each its OPENGLACIER_USAGE_* variable.
USAGE_OPTIONS = {"account", "since", "until", "as_json", "cost", "prices_file"}


def test_docs_settings_md_is_generated_from_settings() -> None:
    assert (ROOT / "docs" / "settings.md").read_text() == render_reference(), REGENERATE


def test_readme_settings_table_is_generated_from_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(README_BEGIN), readme.index(README_END) + len(README_END)
    assert readme[start:end] + "\n" == render_readme_table(), REGENERATE


def test_the_reference_names_every_setting_and_its_variable() -> None:
    reference = render_reference()
    for spec in fields(Settings):
        assert f"| `{spec.name}`" in reference
        assert f"`{env_name(spec.name)}`" in reference
        assert spec.metadata["help"], spec.name
    result = CliRunner().invoke(main, ["config", "reference"])
    assert result.exit_code == 0
    assert result.output == reference


def _commands(group: click.Group, path: str = "") -> list[tuple[str, click.Command]]:
    """Every command under `group`, the lazily loaded ones included."""
    found: list[tuple[str, click.Command]] = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found += _commands(command, f"{path}{name} ")
        else:
            found.append((f"{path}{name}", command))
    return found


def test_every_option_has_help_and_a_variable() -> None:
    settings = {f.name for f in fields(Settings)}
    commands = _commands(cli)
    assert len(commands) >= 10
    assert {path.split()[0] for path, _ in commands} >= set(CLIENT_COMMANDS)
    for path, command in commands:
        for param in command.params:
            if not isinstance(param, click.Option) or param.name in ("help", "version"):
                continue
            assert param.help, f"{path} {param.opts[0]} has no help"
            if path == "usage" and param.name in USAGE_OPTIONS:
                assert str(param.envvar).startswith("OPENGLACIER_USAGE_"), param.opts[0]
                continue
            if param.name in NOT_SETTINGS:
                continue
            if path.split()[0] in CLIENT_COMMANDS:
                # Client commands configure no server: their own OPENGLACIER_* variables.
                assert str(param.envvar).startswith("OPENGLACIER_"), f"{path} {param.opts[0]}"
                continue
            expected = "OPENGLACIER_CONFIG" if param.name == "config_file" else None
            if param.name in settings:
                expected = env_name(str(param.name))
                # One source: the option's help is the field's (or says more for worker).
                assert param.help.endswith("]"), path
            assert expected is not None, f"{path} {param.opts[0]} is not a setting"
            assert param.envvar == expected, f"{path} {param.opts[0]}"


def test_the_worker_offers_only_what_a_worker_uses() -> None:
    worker = main.commands["worker"]
    names = {p.name for p in worker.params}
    assert names == {
        "config_file",
        "data_dir",
        "metadata_url",
        "blob_url",
        "replica_blob_url",
        "encryption_key_file",
        "compression",
        "region",
        "job_workers",
        "job_lease_seconds",
        "job_poll_seconds",
        "select_output_url",
        "notify_targets",
        "metrics_port",
        "log_level",
        "log_format",
    }
    help_text = CliRunner().invoke(main, ["worker", "--help"], terminal_width=200).output
    assert "inside the server process" not in help_text
    assert "--tier-delay" not in help_text
    assert "in this worker process" in help_text


def test_serve_offers_every_flagged_setting() -> None:
    flagged = {f.name for f in fields(Settings) if f.metadata["flag"]}
    serve = {p.name for p in main.commands["serve"].params}
    assert flagged <= serve
    assert set(SERVE_SETTINGS) <= flagged
