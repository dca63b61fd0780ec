"""`openglacier blobs migrate --to URL`: move the deployment's blobs to another
store (storage/blob_migration.py) and switch the recorded blob URL.
`openglacier blobs rewrite --key-id ID`: re-encrypt them in place with one key
(storage/blob_rewrite.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    Progress,
)

from openglacier import logs
from openglacier.cli.options import setting_option, settings_from, storage_options
from openglacier.cli.startup import SettingsError, one_line_errors
from openglacier.config import ConfigError, Settings, mask_secrets, validate
from openglacier.config_checks import parse_duration
from openglacier.ports import BlobStore, MetadataStore
from openglacier.progress import byte_progress
from openglacier.server import open_deployment_blobs
from openglacier.storage.blob_migration import Migration, MigrationError, Summary
from openglacier.storage.blob_rewrite import Rewrite, RewriteError, RewriteSummary, writer_codecs
from openglacier.storage.blob_url import canonical_blob_url, check_replica
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.encryption_keys import check_keys, record_keys
from openglacier.storage.factory import codec_config, open_blobs, open_metadata

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
@setting_option("log_format")
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
    _quiet_logging(settings)
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


def _quiet_logging(settings: Settings) -> None:
    # Only our own records at the chosen level: the libraries' INFO lines (the
    # schema check's, boto's) would only crowd the progress bar.
    logs.configure(settings.log_level, settings.log_format, only_ours=True)


@blobs.command("rewrite")
@storage_options
@click.option(
    "--key-id",
    required=True,
    metavar="ID",
    help="The key to encrypt every blob with: an id of the key file (usually its current key).",
)
@click.option(
    "--delete-after",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="How long a re-encrypted blob's old copy stays for reads that began before "
    "the switch (e.g. 30m, 2h; 0: at the next blob collection).",
)
@setting_option("log_level", "debug names each blob rewritten or skipped.")
@setting_option("log_format")
def rewrite(config_file: Path | None, key_id: str, delete_after: str, **options: Any) -> None:
    """Re-encrypt every blob not yet encrypted with key ID (after `encryption-key
    create --add`, or blobs written before encryption was on), and seal the
    stored secrets with it.

    Online: serve and workers may keep running. Each blob is copied under a new
    key, verified against its stored hashes, and only then switched (the old
    blob goes to the deletion queue). Resumable: run it again after an
    interruption; blobs already on ID are skipped. Runs on the recorded blob
    store (--blob-url only counts before any start recorded one).
    """
    settings = settings_from(config_file, **options)
    grace = _grace(delete_after)
    _quiet_logging(settings)
    with one_line_errors(settings):
        try:
            codecs = writer_codecs(codec_config(settings), key_id)
        except RewriteError as exc:
            raise click.ClickException(str(exc)) from None
        with _stores(settings) as store:
            summary = _rewrite_all(settings, store, codecs, (key_id, grace))
    _rewrite_report(summary, key_id)


def _grace(text: str) -> timedelta:
    if text.strip() in ("0", "0s"):
        return timedelta(0)
    try:
        return timedelta(seconds=parse_duration(text.strip()))
    except ValueError as exc:
        raise SettingsError(f"--delete-after: {exc}") from None


def _rewrite_all(
    settings: Settings, store: MetadataStore, codecs: CodecConfig, how: tuple[str, timedelta]
) -> RewriteSummary:
    key_id, grace = how
    with store.transaction(readonly=True) as tx:
        url = tx.recorded_blob_url() or canonical_blob_url(settings.resolved_blob_url)
        recorded_replica = tx.recorded_replica_url()
        census = tx.blob_census()
    # Without the recorded replica, the re-encrypted copies would go to the
    # primary only, and the old blobs leave both stores.
    check_replica(recorded_replica, settings.replica_blob_url or None)
    check_keys(store, codecs.keyring)
    # With --replica-blob-url, the copies go to both stores, as every write does.
    blob_store = open_deployment_blobs(settings, codecs, url)
    try:
        # Secrets re-sealed with the new key too: every node holds it by now.
        record_keys(store, codecs.keyring, datetime.now(UTC), reseal=True)
        console.print(f"re-encrypting the blobs of {mask_secrets(url)} with key id {key_id}")
        with _progress() as progress:
            task = progress.add_task("blobs", total=census.size)
            job = Rewrite(store, blob_store, key_id, lambda n: progress.advance(task, n), grace)
            return job.run()
    except RewriteError as exc:
        raise click.ClickException(mask_secrets(str(exc))) from None
    finally:
        blob_store.close()


def _rewrite_report(summary: RewriteSummary, key_id: str) -> None:
    console.print(
        f"done: {summary.rewritten} blobs ({summary.rewritten_bytes} bytes) re-encrypted with "
        f"key id {key_id}, {summary.skipped} ({summary.skipped_bytes} bytes) were already, "
        f"{summary.gone} deleted meanwhile",
        soft_wrap=True,
    )
    if summary.damaged:
        raise click.ClickException(
            f"{len(summary.damaged)} damaged blob(s) left as they were, e.g. "
            f"{summary.damaged[0]}: restore them (or delete what names them) and run "
            "the rewrite again"
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
    codecs = codec_config(settings)
    check_keys(store, codecs.keyring)  # the copies are encrypted as a start would
    source = open_blobs(source_url, settings, codecs=codecs)
    try:
        dest: BlobStore = open_blobs(target, settings, codecs=codecs)
    except BaseException:
        source.close()
        raise
    console.print(f"copying blobs from {source_url} to {mask_secrets(target)}")
    try:
        record_keys(store, codecs.keyring, datetime.now(UTC))
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
    return byte_progress(console, transient=False)
