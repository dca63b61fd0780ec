"""`openglacier encryption-key create FILE [--add]` and `show FILE`: the key
file that --encryption-key-file names (keyring.py has its forms).

`create` writes a keyring with one new key (mode 0600, never over an existing
file); `--add` adds a new key to an existing keyring and makes it current:
new blobs and sealed secrets use it from the next start, every older key
stays readable, and `openglacier blobs rewrite --key-id ID` re-encrypts what
was written before.
"""

from __future__ import annotations

from pathlib import Path

import click

from openglacier.keyring import KeyringError, create_key_file, load_keyring


@click.group("encryption-key")
def encryption_key() -> None:
    """Manage the encryption key file (--encryption-key-file)."""


@encryption_key.command("create")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--add",
    is_flag=True,
    help="Add a new key to the existing keyring FILE and make it current (key rotation).",
)
def create(file: Path, add: bool) -> None:
    """Write a new random key to FILE (a keyring, mode 0600; an existing file is
    never overwritten), or with --add, add one to the keyring FILE."""
    try:
        ring = create_key_file(file, add=add)
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None
    if add:
        click.echo(
            f"added key id {ring.current} to {file}; it is the current key from the next "
            f"start (then `openglacier blobs rewrite --key-id {ring.current}` re-encrypts "
            "older blobs)"
        )
    else:
        click.echo(f"created key id {ring.current} in {file}")
    click.echo(
        f"Back up {file} now, apart from the data: without it, encrypted archives cannot be read."
    )


@encryption_key.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def show(file: Path) -> None:
    """List the key ids of FILE with their check values (never the keys): a
    deployment records the check value of every key id it used, and refuses a
    key file whose values differ."""
    try:
        ring = load_keyring(file)
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None
    for key_id in sorted(ring.keys):
        current = "  (current)" if key_id == ring.current else ""
        click.echo(f"{key_id}  {ring.check_value(key_id)}{current}")
