"""`openglacier blobs migrate --to URL`: move the deployment's blobs to another
store (storage/blob_migration.py) and switch the recorded blob URL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from openglacier.cli.options import setting_option, settings_from, storage_options
from openglacier.cli.startup import SettingsError, one_line_errors
from openglacier.config import ConfigError, Settings, mask_secrets, validate
from openglacier.ports import BlobStore, MetadataStore
from openglacier.storage.blob_migration import Migration, MigrationError, Summary
from openglacier.storage.blob_url import canonical_blob_url
from openglacier.storage.factory import open_blobs, open_metadata

console = Console(highlight=False)


@click.group()
def blobs() -> None:
    """Manage the deployment's blob store."""


@blobs.command("migrate")
@storage_options
@click.option(
    "--to",
    "to_url",
    required=True,
    metavar="URL",
    help="The new blob store: file:///DIRECTORY or s3+http(s)://HOST:PORT/BUCKET[/PREFIX] "
    "(its keys: OPENGLACIER_BLOB_ACCESS_KEY_ID / _SECRET_ACCESS_KEY).",
)
@setting_option("log_level", "debug names each blob copied or skipped.")
def migrate(config_file: Path | None, to_url: str, **options: Any) -> None:
    """Copy every blob the metadata names to the store at URL, verify each
    against its stored hashes, then make URL the deployment's blob store.

    Stop every serve and worker first, and start them again with
    --blob-url URL afterwards: the migration refuses to switch if the metadata
    changed while it copied. The current store is the recorded one (--blob-url
    only counts before any start recorded it); it is only read, and left as it
    was. Resumable: run it again after an interruption, and blobs already
    copied and verified are skipped. Blobs nothing names (orphans, blobs queued
    for deletion) are not copied.
    """
    settings = settings_from(config_file, **options)
    # Only our own records at the chosen level: the libraries' INFO lines (the
    # schema check's, boto's) would only crowd the progress bar.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("openglacier").setLevel(settings.log_level.upper())
    _check_destination(settings, to_url)
    with one_line_errors(settings), _stores(settings) as store:
        with store.transaction(readonly=True) as tx:
            recorded = tx.recorded_blob_url()
        source_url = recorded or canonical_blob_url(settings.resolved_blob_url)
        target = canonical_blob_url(to_url)
        if source_url == target:
            console.print(f"the blob store is {target} already; nothing to do")
            return
        summary = _copy_and_switch(settings, store, (recorded, source_url, target))
    console.print(
        f"done: {summary.copied} blobs ({summary.copied_bytes} bytes) copied, "
        f"{summary.skipped} ({summary.skipped_bytes} bytes) already there and verified; "
        f"the blob store is now {target}: start serve and workers with --blob-url {target}"
    )


def _check_destination(settings: Settings, to_url: str) -> None:
    try:
        validate(replace(settings, blob_url=to_url))
    except ConfigError as exc:
        raise SettingsError(f"--to: {str(exc).replace(' (--blob-url)', '')}") from None


@contextmanager
def _stores(settings: Settings) -> Iterator[MetadataStore]:
    store = open_metadata(settings.resolved_metadata_url)
    try:
        yield store
    finally:
        store.close()


def _copy_and_switch(
    settings: Settings, store: MetadataStore, urls: tuple[str | None, str, str]
) -> Summary:
    recorded, source_url, target = urls
    source = open_blobs(source_url, settings)
    try:
        dest: BlobStore = open_blobs(target, settings)
    except BaseException:
        source.close()
        raise
    console.print(f"copying blobs from {source_url} to {mask_secrets(target)}")
    try:
        with _progress() as progress:
            migration = Migration(store, source, dest)
            before = migration.census()
            task = progress.add_task("blobs", total=before.size)
            migration.advance = lambda n: progress.advance(task, n)
            summary = migration.copy_all()
        migration.switch(recorded, target, before)
        return summary
    except MigrationError as exc:
        raise click.ClickException(mask_secrets(str(exc))) from None
    finally:
        dest.close()
        source.close()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
