"""`openglacier scrub status | now`: the scrubber from the command line
(domain/scrub/), against the stores, with or without a server running.

`now` runs a full pass in the foreground at full speed, with a progress bar,
prints each damaged archive (vault and id) and exits 1 when it found damage,
0 otherwise: fit for cron. It takes the scrubber's lease like any serve
process, so it refuses (one line) while another process is scrubbing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from openglacier import logs
from openglacier.cli.keys import metadata_tx
from openglacier.cli.options import setting_option, settings_from, storage_options
from openglacier.cli.startup import one_line_errors
from openglacier.clock import SystemClock
from openglacier.config_checks import parse_duration
from openglacier.domain.context import Deps
from openglacier.domain.scrub import PassReport, Scrubber, ScrubBusy, damage_dict, status
from openglacier.errors import StorageError
from openglacier.ports import DamageRecord
from openglacier.progress import byte_progress
from openglacier.server import build_deps

console = Console(highlight=False, soft_wrap=True)
SHOWN_RECORDS = 1000  # per state; `GET /_admin/damage` pages through any number


@click.group()
def scrub() -> None:
    """Verify every stored byte against its hashes; list the damage found."""


@scrub.command("status")
@storage_options
@setting_option("scrub_interval")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def scrub_status(config_file: Path | None, as_json: bool, **options: Any) -> None:
    """The pass in progress, the last pass, and the damage records (open and
    repaired)."""
    settings = settings_from(config_file, **options)
    interval = timedelta(seconds=parse_duration(settings.scrub_interval))
    with metadata_tx(settings, readonly=True) as tx:
        state, counts = tx.scrub_state(), tx.count_damage()
        records = [
            *tx.list_damage(repaired=False, after_id=None, limit=SHOWN_RECORDS),
            *tx.list_damage(repaired=True, after_id=None, limit=SHOWN_RECORDS),
        ]
    shown = status(state, counts, interval, SystemClock().now())
    if as_json:
        click.echo(json.dumps({**shown, "records": [damage_dict(r) for r in records]}))
        return
    _print_status(shown)
    for record in records:
        console.print(_record_line(record), markup=False)


def _print_status(shown: dict[str, Any]) -> None:
    current, last, lease = shown["current_pass"], shown["last_pass"], shown["lease"]
    if current is None:
        console.print("current pass  none")
    else:
        console.print(
            f"current pass  started {current['started_at']}: {current['blobs_done']} blobs, "
            f"{_mib(current['bytes_done'])} verified, {current['damage_found']} damaged"
        )
    if last is None:
        console.print("last pass     none")
    else:
        console.print(
            f"last pass     {last['started_at']} to {last['finished_at']}: {last['blobs']} "
            f"blobs, {_mib(last['bytes'])} verified, {last['damage_found']} damaged"
        )
    console.print(
        f"passes        {shown['passes_completed']} completed; next due {shown['next_pass_due']}"
    )
    holder = f"{lease['holder']} until {lease['until']}" if lease else "none"
    console.print(f"scrubbing     {holder}")
    damage = shown["damage"]
    console.print(f"damage        {damage['open']} open, {damage['repaired']} repaired")


def _record_line(record: DamageRecord) -> str:
    owner = f"archive {record.archive_id}" if record.archive_id else f"upload {record.upload_id}"
    if record.repaired_at is None:
        state = "OPEN" + (" (quarantined)" if record.quarantined else "")
    else:
        state = f"repaired {record.repaired_at:%Y-%m-%dT%H:%M:%SZ}"
    note = f" [{record.repair_note}]" if record.repair_note else ""
    return (
        f"{state}: {owner} in vault {record.vault}: {record.problem} "
        f"(found by {record.found_by} {record.found_at:%Y-%m-%dT%H:%M:%SZ}){note}"
    )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


@scrub.command("now")
@storage_options
@setting_option("log_format")
def scrub_now(config_file: Path | None, **options: Any) -> None:
    """Run a full scrub pass now, at full speed, from the first blob.

    Prints each damaged archive's vault and id; exits 1 if it found damage
    (repaired or not), 0 if everything verified.
    """
    settings = settings_from(config_file, **options)
    logs.configure("warning", settings.log_format)  # the progress bar says the rest
    # The command prints each finding itself; the damage log's ERROR lines
    # (a server's record of them) would say everything twice.
    logging.getLogger("openglacier.damage").setLevel(logging.CRITICAL)
    with one_line_errors(settings):
        deps = build_deps(settings, SystemClock())
    try:
        report = _run(deps)
    finally:
        deps.store.close()
        deps.blobs.close()
    for record in report.damage:
        console.print(_record_line(record), markup=False)
    console.print(
        f"done: {report.blobs} blobs ({report.bytes} bytes) verified, "
        f"{len(report.damage)} damaged, {report.repaired} repaired"
    )
    if report.damage:
        sys.exit(1)


def _run(deps: Deps) -> PassReport:
    with deps.store.transaction(readonly=True) as tx:
        _, total = tx.scrub_census()
    progress = byte_progress(console, transient=False)
    try:
        with progress:
            task = progress.add_task("verifying", total=total)
            scrubber = Scrubber(deps, progress=lambda n: progress.advance(task, n))
            return asyncio.run(scrubber.run_now())
    except ScrubBusy as exc:
        raise click.ClickException(str(exc)) from None
    except StorageError as exc:
        raise click.ClickException(
            f"the scrub stopped: {exc}; run it again once the store answers"
        ) from None
