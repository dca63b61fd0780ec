"""`openglacier archive get` and `openglacier job get|ls`: retrievals through
jobs (transfer/retrieve.py), a status line while waiting, a progress bar while
downloading."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    Progress,
    TaskID,
)

from openglacier.cli.client_options import endpoint_from, endpoint_options
from openglacier.cli.client_support import (
    EXIT_CODES,
    catalogue_option,
    client_errors,
    connect,
    fail,
    json_option,
    open_catalogue,
    poll_seconds_option,
    vault_option,
)
from openglacier.progress import byte_progress
from openglacier.transfer import errors, jobs, retrieve
from openglacier.transfer.catalogue import endpoint_key
from openglacier.transfer.download import DEFAULT_RANGE_SIZE, ChecksumMismatch, check_range_size
from openglacier.transfer.multipart import parse_part_size

F = TypeVar("F", bound=Callable[..., Any])
ARCHIVE_ID_LEN = 138


class Display:
    """What a person (or a log) sees: notes and job status on stderr; a status
    line that updates in place and a progress bar on a terminal, a line per
    status change otherwise."""

    def __init__(self, tier: str, *, quiet: bool = False) -> None:
        self.console = Console(file=sys.stderr, highlight=False)
        self.live = self.console.is_terminal and not quiet
        self.quiet = quiet
        self.tier = tier
        self._last_status = ""
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._spinner: Any = None

    def note(self, line: str) -> None:
        if not self.quiet:
            self.console.print(line, markup=False, soft_wrap=True)

    def status(self, job: dict[str, Any], elapsed: float) -> None:
        tier = job.get("Tier") or self.tier
        kind = "Inventory" if job.get("Action") == "InventoryRetrieval" else tier
        code = str(job.get("StatusCode"))
        # The id's start is enough to tell jobs apart: the whole 92 characters
        # would wrap the line that updates in place (the full id was printed).
        line = (
            f"job {str(job.get('JobId'))[:12]}… ({kind}; AWS completes in"
            f" {jobs.expected_completion(kind)}): {code}, {_clock(elapsed)} elapsed"
        )
        if self.live:
            if self._spinner is None:
                self._spinner = self.console.status(line)
                self._spinner.start()
            self._spinner.update(line)
            if code != "InProgress":
                self._spinner.stop()
                self._spinner = None
                self.note(line)
        elif code != self._last_status:
            self.note(line)
        self._last_status = code

    def waiting_ended(self) -> None:
        if self._spinner is not None:  # an error or Ctrl-C while the job ran
            self._spinner.stop()
            self._spinner = None

    def download_started(self, total: int) -> None:
        if not self.live:
            return
        self._progress = byte_progress(self.console, "download")
        self._progress.start()
        self._task = self._progress.add_task("download", total=total)

    def resumed(self, nbytes: int) -> None:
        self.note(f"resuming: {decimal(nbytes)} already downloaded")
        self.advance(nbytes)

    def advance(self, nbytes: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, nbytes)

    def download_ended(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def _range_size(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        size = parse_part_size(value)
        check_range_size(size)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    return size


def download_options(func: F) -> F:
    """-o, --parallel, --range-size, --poll-seconds, --force, --quiet."""
    options = [
        click.option(
            "-o",
            "--output",
            "output",
            required=True,
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="OPENGLACIER_OUTPUT",
            help="File to write. It appears only once complete and verified; until then"
            " FILE.part and FILE.part.state hold the download. Env: OPENGLACIER_OUTPUT.",
        ),
        click.option(
            "--parallel",
            type=click.IntRange(1, 64),
            default=4,
            show_default=True,
            envvar="OPENGLACIER_PARALLEL",
            help="Ranges downloaded at once. Env: OPENGLACIER_PARALLEL.",
        ),
        click.option(
            "--range-size",
            default=f"{DEFAULT_RANGE_SIZE >> 20}MiB",
            show_default=True,
            callback=_range_size,
            envvar="OPENGLACIER_RANGE_SIZE",
            help="Bytes per GetJobOutput request: 1 MiB times a power of two (so each range"
            " has a tree-hash checksum). Env: OPENGLACIER_RANGE_SIZE.",
        ),
        poll_seconds_option,
        click.option(
            "--force",
            is_flag=True,
            envvar="OPENGLACIER_FORCE",
            help="Replace the output file if it exists. Env: OPENGLACIER_FORCE.",
        ),
        click.option(
            "--quiet",
            is_flag=True,
            envvar="OPENGLACIER_QUIET",
            help="No status line, progress bar or notes; errors are still shown."
            " Env: OPENGLACIER_QUIET.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@contextmanager
def retrieval_errors(what: str = "") -> Iterator[None]:
    """client_errors plus the retrieval's own: a failed job (8), a checksum
    mismatch (9)."""
    with client_errors(what):
        try:
            yield
        except jobs.JobFailed as exc:
            fail(str(exc), errors.JOB_FAILED)
        except ChecksumMismatch as exc:
            fail(f"{exc}; nothing was kept", errors.CHECKSUM)


def _check_output(output: Path, force: bool) -> None:
    if output.exists() and not force:
        fail(f"{output} exists; use --force to replace it", errors.LOCAL)


@click.command("get", epilog=EXIT_CODES)
@click.argument("archive_id_or_path")
@vault_option
@click.option(
    "--tier",
    type=click.Choice(jobs.TIERS, case_sensitive=False),
    default="Standard",
    show_default=True,
    envvar="OPENGLACIER_TIER",
    help="Retrieval tier (AWS: Expedited 1-5 minutes, Standard 3-5 hours, Bulk 5-12 hours)."
    " Env: OPENGLACIER_TIER.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    envvar="OPENGLACIER_NO_WAIT",
    help="Initiate the job, print its id and exit; finish later with `job get` or by"
    " running the same command again. Env: OPENGLACIER_NO_WAIT.",
)
@download_options
@catalogue_option
@endpoint_options
def archive_get(
    *,
    archive_id_or_path: str,
    vault: str,
    tier: str,
    no_wait: bool,
    output: Path,
    parallel: int,
    range_size: int,
    poll_seconds: float,
    force: bool,
    quiet: bool,
    catalogue_path: Path | None,
    **options: Any,
) -> None:
    """Retrieve an archive (by id, or by the path it was uploaded from) into a file.

    Initiates a retrieval job, waits for it, downloads its output in parallel
    ranges with each range's checksum verified, and checks the whole file's tree
    hash before the file appears. Killed or interrupted, the same command
    continues: the same job, and only the ranges not yet downloaded.
    """
    endpoint = endpoint_from(options)
    glacier = connect(endpoint, parallel=parallel)
    key = endpoint_key(glacier, endpoint)
    tier = tier.capitalize()
    archive_id = _resolve(catalogue_path, key, vault, archive_id_or_path)
    _check_output(output, force)
    where = retrieve.Where(glacier, key, endpoint.account_id, vault)
    display = Display(tier, quiet=quiet)
    transfer = retrieve.Transfer(poll_seconds, parallel, range_size)
    with retrieval_errors(f"archive {archive_id} in vault {vault}"):
        if no_wait:
            job_id = retrieve.archive_job(where, archive_id, tier, output, display)
            click.echo(job_id)
            display.note(f"finish with: openglacier job get {job_id} --vault {vault} -o {output}")
            return
        tree_hash = retrieve.get_archive(
            where,
            archive_id,
            tier,
            output,
            transfer,
            events=display,
        )
    display.note(f"retrieved {archive_id} into {output} (tree hash {tree_hash} verified)")


def _resolve(catalogue_path: Path | None, key: str, vault: str, name: str) -> str:
    """An archive id: from the catalogue when it knows `name`, else `name` itself
    if it looks like an id."""
    with open_catalogue(catalogue_path) as catalogue:
        entry = catalogue.find_archive(key, vault, name)
    if entry is not None:
        return entry.archive_id
    if len(name) != ARCHIVE_ID_LEN or "/" in name:
        fail(f"not found: {name} is not in the catalogue of vault {vault}", errors.NOT_FOUND)
    return name


@click.command("get", epilog=EXIT_CODES)
@click.argument("job_id")
@vault_option
@download_options
@endpoint_options
def job_get(
    *,
    job_id: str,
    vault: str,
    output: Path,
    parallel: int,
    range_size: int,
    poll_seconds: float,
    force: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Finish a job: wait for it if it runs, then download its output to a file
    (an archive's bytes, verified; or the inventory document). Resumable."""
    endpoint = endpoint_from(options)
    glacier = connect(endpoint, parallel=parallel)
    _check_output(output, force)
    where = retrieve.Where(glacier, endpoint_key(glacier, endpoint), endpoint.account_id, vault)
    display = Display("Standard", quiet=quiet)
    transfer = retrieve.Transfer(poll_seconds, parallel, range_size)
    with retrieval_errors(f"job {job_id} in vault {vault}"):
        job = retrieve.wait(where, job_id, transfer, display)
        digest = retrieve.download(where, job, output, transfer, display)
    verified = " verified" if job.get("SHA256TreeHash") else ""
    display.note(f"job {job_id} output in {output} (tree hash {digest}{verified})")


@click.command("ls", epilog=EXIT_CODES)
@vault_option
@json_option
@endpoint_options
def job_ls(vault: str, as_json: bool, **options: Any) -> None:
    """List the vault's jobs (Glacier keeps finished jobs for about a day)."""
    endpoint = endpoint_from(options)
    glacier = connect(endpoint)
    with client_errors(f"vault {vault}"):
        for job in jobs.list_jobs(glacier, endpoint.account_id, vault):
            if as_json:
                click.echo(json.dumps(job))
                continue
            kind = "inventory" if job.get("Action") == "InventoryRetrieval" else "archive"
            size = job.get("ArchiveSizeInBytes") or job.get("InventorySizeInBytes") or 0
            click.echo(
                f"{job.get('CreationDate')}  {kind:<9}  {job.get('StatusCode'):<10}"
                f"  {job.get('Tier') or '-':<9}  {decimal(int(size)):>10}  {job.get('JobId')}"
            )
