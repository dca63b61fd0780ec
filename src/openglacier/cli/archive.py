"""`openglacier archive ...`: the transfer client's archive commands (transfer/)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.filesize import decimal

from openglacier.cli.client_options import endpoint_from, endpoint_options
from openglacier.cli.client_support import (
    EXIT_CODES,
    catalogue_option,
    client_errors,
    connect,
    fail,
    json_option,
    open_catalogue,
    vault_option,
)
from openglacier.transfer import errors
from openglacier.transfer.catalogue import endpoint_key
from openglacier.transfer.files import collect
from openglacier.transfer.multipart import DEFAULT_PART_SIZE, parse_part_size
from openglacier.transfer.naming import (
    DEFAULT_TEMPLATE,
    FIELDS,
    DescriptionError,
    check_template,
    decode_description,
)
from openglacier.transfer.progress import reporter_for
from openglacier.transfer.upload import Summary, Target, Uploader, UploadOptions
from openglacier.transfer.vaults import account_of, describe_vault

console = Console(highlight=False)
ARCHIVE_ID_LEN = 138  # Glacier's archive ids (and OpenGlacier's)


@click.group()
def archive() -> None:
    """archive commands against any Glacier endpoint (OpenGlacier or AWS)."""


def _part_size(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return parse_part_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _template(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        check_template(value)
    except DescriptionError as exc:
        raise click.BadParameter(str(exc)) from exc
    return value


@archive.command("upload", epilog=EXIT_CODES)
@click.argument("paths", nargs=-1, required=True)
@vault_option
@click.option(
    "--part-size",
    default=f"{DEFAULT_PART_SIZE >> 20}MiB",
    show_default=True,
    callback=_part_size,
    envvar="OPENGLACIER_PART_SIZE",
    help="Multipart part size: 1 MiB times a power of two, e.g. 16MiB (raised for files"
    " that would need more than 10,000 parts). Files smaller than one part are sent in one"
    " request. Env: OPENGLACIER_PART_SIZE.",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    envvar="OPENGLACIER_PARALLEL",
    help="Requests in flight at once (parts and small files). Env: OPENGLACIER_PARALLEL.",
)
@click.option(
    "--description",
    "template",
    default=DEFAULT_TEMPLATE,
    show_default=True,
    callback=_template,
    envvar="OPENGLACIER_DESCRIPTION",
    help="Archive description template; fields: "
    + ", ".join("{" + f + "}" for f in FIELDS)
    + ". Characters outside printable ASCII (and %) are percent-encoded."
    " Env: OPENGLACIER_DESCRIPTION.",
)
@click.option(
    "--quiet",
    is_flag=True,
    envvar="OPENGLACIER_QUIET",
    help="No progress bars and no line per file; failures are still shown. Env: OPENGLACIER_QUIET.",
)
@json_option
@catalogue_option
@endpoint_options
def upload(
    *,
    paths: tuple[str, ...],
    vault: str,
    part_size: int,
    parallel: int,
    template: str,
    quiet: bool,
    as_json: bool,
    catalogue_path: Path | None,
    **options: Any,
) -> None:
    """Upload files, and directories recursively, to a vault.

    Files already uploaded unchanged to this vault (same path, size, mtime and
    SHA-256 in the catalogue) are skipped; empty files are skipped (a Glacier
    archive holds at least one byte). An interrupted upload (Ctrl-C, a kill, a
    lost connection) resumes when the same command is run again: parts the
    endpoint already holds are not sent again.
    """
    endpoint = endpoint_from(options)
    glacier = connect(endpoint, parallel=parallel)
    with client_errors(f"vault {vault}"):
        account = account_of(str(describe_vault(glacier, vault, endpoint.account_id)["VaultARN"]))
    catalogue = open_catalogue(catalogue_path)
    target = Target(glacier, endpoint_key(glacier, endpoint), vault, endpoint.account_id, account)
    uploader = Uploader(
        target,
        catalogue,
        UploadOptions(part_size, parallel, template),
        reporter_for(quiet=quiet, as_json=as_json),
    )
    started = time.monotonic()
    with client_errors():
        summary = uploader.run(list(collect(list(paths))))
    if not quiet:
        click.echo(_summary_line(summary, time.monotonic() - started), err=as_json)
    if summary.fatal is not None:
        fail(str(summary.fatal), summary.fatal.code)
    sys.exit(errors.SOME_FAILED if summary.failed else errors.OK)


def _summary_line(summary: Summary, seconds: float) -> str:
    return (
        f"{summary.uploaded} uploaded ({decimal(summary.bytes_uploaded)}),"
        f" {summary.skipped} skipped, {summary.failed} failed in {seconds:.1f} s"
    )


@archive.command("ls", epilog=EXIT_CODES)
@vault_option
@json_option
@catalogue_option
@endpoint_options
def archive_ls(vault: str, as_json: bool, catalogue_path: Path | None, **options: Any) -> None:
    """List the archives uploaded to a vault from this machine, with their files
    (from the local catalogue: no request is made)."""
    endpoint = endpoint_from(options)
    key = endpoint_key(connect(endpoint), endpoint)
    with open_catalogue(catalogue_path) as catalogue:
        entries = catalogue.archives(key, vault)
    if as_json:
        for e in entries:
            click.echo(
                json.dumps(
                    {
                        "ArchiveId": e.archive_id,
                        "Path": e.path,
                        "Size": e.size,
                        "SHA256": e.sha256,
                        "SHA256TreeHash": e.tree_hash,
                        "ArchiveDescription": e.description,
                        "Description": decode_description(e.description),
                        "UploadedAt": e.uploaded_at,
                    }
                )
            )
        return
    # One line per archive, the id last and whole: it is what the other commands
    # take, and a table would have to fold it.
    for e in entries:
        console.print(
            f"{e.uploaded_at}  {decimal(e.size):>10}  {e.path}  {e.archive_id}",
            markup=False,
            soft_wrap=True,
        )


@archive.command("rm", epilog=EXIT_CODES)
@click.argument("archive_id_or_path")
@vault_option
@catalogue_option
@endpoint_options
def archive_rm(
    archive_id_or_path: str, vault: str, catalogue_path: Path | None, **options: Any
) -> None:
    """Delete an archive, named by its id or by the path it was uploaded from (the
    latest upload of that path), on the endpoint and in the catalogue."""
    endpoint = endpoint_from(options)
    glacier = connect(endpoint)
    key = endpoint_key(glacier, endpoint)
    with open_catalogue(catalogue_path) as catalogue:
        entry = catalogue.find_archive(key, vault, archive_id_or_path)
        archive_id = entry.archive_id if entry else archive_id_or_path
        if entry is None and not _looks_like_id(archive_id_or_path):
            fail(
                f"not found: {archive_id_or_path} is not in the catalogue of vault {vault}",
                errors.NOT_FOUND,
            )
        with client_errors(f"vault {vault}"):
            glacier.delete_archive(
                accountId=endpoint.account_id, vaultName=vault, archiveId=archive_id
            )
        catalogue.remove_archive(key, vault, archive_id)
    click.echo(f"deleted {archive_id}" + (f" ({entry.path})" if entry else ""))


def _looks_like_id(text: str) -> bool:
    return len(text) == ARCHIVE_ID_LEN and "/" not in text


# `archive get` lives with the other retrieval commands (cli/retrieve.py).
from openglacier.cli.retrieve import archive_get  # noqa: E402

archive.add_command(archive_get)
