"""`openglacier inventory VAULT`: the vault's latest inventory, through an
inventory job, printed as it streams (or saved to a file)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.filesize import decimal

from openglacier.cli.client_options import endpoint_from, endpoint_options
from openglacier.cli.client_support import (
    EXIT_CODES,
    connect,
    json_option,
    poll_seconds_option,
    vault_name,
)
from openglacier.cli.retrieve import Display, retrieval_errors
from openglacier.transfer import jobs, retrieve
from openglacier.transfer.catalogue import endpoint_key
from openglacier.transfer.download import DEFAULT_RANGE_SIZE, stream_job_output
from openglacier.transfer.inventory_read import iter_inventory
from openglacier.transfer.inventory_stream import InventoryFormatError
from openglacier.transfer.vaults import describe_vault


@click.command(epilog=EXIT_CODES)
@click.argument("vault", callback=vault_name)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv"], case_sensitive=False),
    default="json",
    show_default=True,
    envvar="OPENGLACIER_INVENTORY_FORMAT",
    help="Inventory format asked of Glacier. Without -o or --json: json prints a line per"
    " archive, csv prints the CSV document as it comes. Env: OPENGLACIER_INVENTORY_FORMAT.",
)
@click.option(
    "--job-id",
    envvar="OPENGLACIER_JOB_ID",
    help="Use this inventory job instead of finding or initiating one. Env: OPENGLACIER_JOB_ID.",
)
@click.option(
    "--new-job",
    is_flag=True,
    envvar="OPENGLACIER_NEW_JOB",
    help="Always initiate a new inventory job (by default a job of the same format started"
    " since the vault's last inventory is reused, finished or not). Env: OPENGLACIER_NEW_JOB.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    envvar="OPENGLACIER_NO_WAIT",
    help="Print the job id and exit; run again with --job-id (or without) to print the"
    " inventory. Env: OPENGLACIER_NO_WAIT.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OPENGLACIER_OUTPUT",
    help="Save the inventory document as Glacier returns it to FILE (parallel, resumable)"
    " instead of printing it. Env: OPENGLACIER_OUTPUT.",
)
@poll_seconds_option
@json_option
@endpoint_options
def inventory(
    *,
    vault: str,
    fmt: str,
    job_id: str | None,
    new_job: bool,
    no_wait: bool,
    output: Path | None,
    poll_seconds: float,
    as_json: bool,
    **options: Any,
) -> None:
    """Print VAULT's latest inventory (one archive per line; with --json one JSON
    object per archive with Glacier's field names), streaming: however large the
    inventory, it is never held in memory."""
    endpoint = endpoint_from(options)
    glacier = connect(endpoint)
    where = retrieve.Where(glacier, endpoint_key(glacier, endpoint), endpoint.account_id, vault)
    display = Display("Inventory")
    fmt = fmt.upper()
    # The endpoint's own message says what is missing: the vault, or (for a
    # vault never inventoried) the inventory.
    with retrieval_errors():
        job_id = job_id or _inventory_job(where, fmt, new_job, display)
        if no_wait:
            click.echo(job_id)
            return
        transfer = retrieve.Transfer(poll_seconds, 4, DEFAULT_RANGE_SIZE)
        job = retrieve.wait(where, job_id, transfer, display)
        fmt = str((job.get("InventoryRetrievalParameters") or {}).get("Format") or fmt).upper()
        if output is not None:
            retrieve.download(where, job, output, transfer, display)
            display.note(f"inventory ({fmt}, {decimal(jobs.output_size(job))}) saved to {output}")
            return
        chunks = stream_job_output(glacier, endpoint.account_id, vault, job_id)
        try:
            _print(fmt, chunks, as_json=as_json)
        except InventoryFormatError as exc:
            raise click.ClickException(f"job {job_id}: {exc}") from exc
        except BrokenPipeError:  # `| head`: the reader has all it wanted
            sys.stderr.close()


def _inventory_job(where: retrieve.Where, fmt: str, new_job: bool, display: Display) -> str:
    if not new_job:
        since = describe_vault(where.client, where.vault, where.account_id).get("LastInventoryDate")
        found = jobs.find_inventory_job(where.client, where.account_id, where.vault, fmt, since)
        if found is not None:
            display.note(f"using inventory job {found['JobId']} ({found['StatusCode']})")
            return str(found["JobId"])
    job_id = jobs.initiate_inventory(where.client, where.account_id, where.vault, fmt)
    display.note(f"initiated inventory job {job_id}")
    return job_id


def _print(fmt: str, chunks: Any, *, as_json: bool) -> None:
    out = sys.stdout
    if fmt == "CSV" and not as_json:
        for chunk in chunks:  # the document as it comes
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        return
    for item in iter_inventory(fmt, chunks):
        if as_json:
            out.write(json.dumps(item) + "\n")
        else:
            out.write(
                f"{item.get('CreationDate')}  {int(item.get('Size') or 0):>14}"
                f"  {item.get('ArchiveDescription')}  {item.get('ArchiveId')}\n"
            )
    out.flush()
