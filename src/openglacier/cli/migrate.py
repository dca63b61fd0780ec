"""`openglacier migrate`: copy a vault from one Glacier endpoint to another (docs/migration.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import click
import httpx
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import (
    Progress,
    TaskID,
)

from openglacier.progress import byte_progress
from openglacier.transfer.endpoint import Endpoint, EndpointError, glacier_client
from openglacier.transfer.migrate import TIERS, Migration, MigrationError, Options, Report, Source
from openglacier.transfer.migrate_dest import (
    AdminImport,
    GlacierUpload,
    WriteRefused,
    vault_account,
)
from openglacier.transfer.migrate_state import Entry, MigrationState, StateMismatch
from openglacier.treehash import MIB


class ByteSize(click.ParamType[int]):
    """`100G`, `1.5T`, `500000000`: binary units, as sizes on disk are shown."""

    name = "SIZE"
    UNITS: ClassVar[dict[str, int]] = {
        "": 1,
        "K": 1 << 10,
        "M": 1 << 20,
        "G": 1 << 30,
        "T": 1 << 40,
    }

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("B").removesuffix("I")
        unit = text[-1:] if text[-1:] in self.UNITS else ""
        try:
            size = int(float(text.removesuffix(unit)) * self.UNITS[unit])
        except ValueError:
            size = 0
        if size < 1:
            self.fail(f"{value!r} is not a size (e.g. 500000000, 100G, 1.5T)", param, ctx)
        return size


def _env(name: str) -> str:
    return "OPENGLACIER_MIGRATE_" + name


def _endpoint_options(side: str, label: str) -> list[Any]:
    up = side.upper()
    return [
        click.option(
            f"--{side}-endpoint",
            envvar=_env(f"{up}_ENDPOINT"),
            help=f"{label} Glacier endpoint URL [AWS's]. Env: {_env(up + '_ENDPOINT')}.",
        ),
        click.option(
            f"--{side}-vault",
            envvar=_env(f"{up}_VAULT"),
            required=True,
            help=f"{label} vault name. Env: {_env(up + '_VAULT')}.",
        ),
        click.option(
            f"--{side}-profile",
            envvar=_env(f"{up}_PROFILE"),
            help=f"AWS profile for the {label.lower()}'s credentials. "
            f"Env: {_env(up + '_PROFILE')}.",
        ),
        click.option(
            f"--{side}-region",
            envvar=_env(f"{up}_REGION"),
            help=f"{label} region [the profile's, else us-east-1]. Env: {_env(up + '_REGION')}.",
        ),
    ]


OPTIONS = [
    *_endpoint_options("from", "Source"),
    *_endpoint_options("to", "Destination"),
    click.option(
        "--to-admin-token",
        envvar="OPENGLACIER_ADMIN_TOKEN",
        help="The destination OpenGlacier's admin token: archives are imported "
        "keeping their ids. Without it they are uploaded anew and a mapping file "
        "is written. Env: OPENGLACIER_ADMIN_TOKEN.",
    ),
    click.option(
        "--tier",
        type=click.Choice(TIERS),
        default="Bulk",
        show_default=True,
        envvar=_env("TIER"),
        help=f"Retrieval tier (price and speed; docs/migration.md). Env: {_env('TIER')}.",
    ),
    click.option(
        "--max-bytes-per-day",
        type=ByteSize(),
        envvar=_env("MAX_BYTES_PER_DAY"),
        help="Retrieve at most this much in any 24 hours: bytes, or with K, M, G, T "
        f"(powers of 1024), e.g. 100G [no limit]. Env: {_env('MAX_BYTES_PER_DAY')}.",
    ),
    click.option(
        "--parallel",
        type=click.IntRange(1, 64),
        default=4,
        show_default=True,
        envvar=_env("PARALLEL"),
        help=f"Archives moved at once. Env: {_env('PARALLEL')}.",
    ),
    click.option(
        "--max-jobs",
        type=click.IntRange(min=1),
        default=100,
        show_default=True,
        envvar=_env("MAX_JOBS"),
        help="Retrieval jobs outstanding at once (an output "
        f"not downloaded within 24 hours expires). Env: {_env('MAX_JOBS')}.",
    ),
    click.option(
        "--poll-interval",
        type=click.FloatRange(min=0),
        default=60.0,
        show_default=True,
        envvar=_env("POLL_INTERVAL"),
        help=f"Seconds between looks at the source's jobs. Env: {_env('POLL_INTERVAL')}.",
    ),
    click.option(
        "--part-size-mib",
        type=click.Choice(
            ["1", "2", "4", "8", "16", "32", "64", "128", "256", "512", "1024", "2048", "4096"]
        ),
        default="64",
        show_default=True,
        envvar=_env("PART_SIZE_MIB"),
        help="Download range size (each range's checksum verified), and part size of "
        f"uploads without the admin token. Env: {_env('PART_SIZE_MIB')}.",
    ),
    click.option(
        "--state",
        "state_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("openglacier-migrate.sqlite"),
        show_default=True,
        envvar=_env("STATE"),
        help="The state file: rerun with the same one to resume. "
        f"Downloads wait in STATE.d/. Env: {_env('STATE')}.",
    ),
    click.option(
        "--mapping",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=_env("MAPPING"),
        help="CSV of source id -> destination id, written "
        "when ids cannot be kept [STATE without .sqlite + -mapping.csv]. "
        f"Env: {_env('MAPPING')}.",
    ),
    click.option(
        "--retry-failed",
        is_flag=True,
        envvar=_env("RETRY_FAILED"),
        help=f"Try the archives that failed in an earlier run again. Env: {_env('RETRY_FAILED')}.",
    ),
    click.option(
        "-v",
        "--verbose",
        is_flag=True,
        envvar=_env("VERBOSE"),
        help=f"One line per step on stderr. Env: {_env('VERBOSE')}.",
    ),
]


def _options(func: Any) -> Any:
    for option in reversed(OPTIONS):
        func = option(func)
    return func


class ConsoleEvents:
    """Rich progress on a terminal; plain step lines with --verbose."""

    def __init__(self, console: Console, progress: Progress, total: TaskID, verbose: bool) -> None:
        self.console = console
        self.progress = progress
        self.total = total
        self.verbose = verbose

    def begin(self, archives: int, size: int) -> None:
        self.progress.update(self.total, total=size, description=f"{archives} archives")

    def step(self, kind: str, entry: Entry | None, detail: str = "") -> None:
        if self.verbose or kind in ("failed", "expired", "budget", "inventory"):
            who = entry.archive_id if entry is not None else "-"
            # print, not the console: ids are 138 characters and must stay on one line.
            print(f"migrate: {kind} {who} {detail}".rstrip(), file=sys.stderr, flush=True)

    def transferred(self, count: int) -> None:
        self.progress.advance(self.total, count)


@click.command()
@_options
def migrate(**kw: Any) -> None:
    """Copy a vault to another Glacier endpoint, keeping archive ids when it is OpenGlacier.

    Takes the source's inventory, retrieves each archive (tier, daily byte budget),
    downloads it with its tree hash checked and writes it to the destination. Kill it
    at any time and run the same command again: it resumes from the state file.
    """
    try:
        report = _run(kw)
    except (MigrationError, StateMismatch, EndpointError, WriteRefused) as exc:
        raise click.ClickException(str(exc)) from None
    except (httpx.HTTPError, BotoCoreError, ClientError, OSError) as exc:
        # The network, an endpoint or the disk: what was done is in the state file.
        raise click.ClickException(
            f"{exc.__class__.__name__}: {exc} (run the same command again to resume)"
        ) from None
    _print_report(report, Console(stderr=True))
    if report.not_migrated:
        sys.exit(1)


def _run(kw: dict[str, Any]) -> Report:
    console = Console(stderr=True)
    parallel = kw["parallel"]
    source_ep = Endpoint(kw["from_endpoint"], kw["from_profile"], kw["from_region"])
    source_client = glacier_client(source_ep, max_pool_connections=parallel * 2)
    source = Source(source_client, "-", kw["from_vault"])
    state_path: Path = kw["state_path"]
    state = MigrationState(state_path)
    try:
        state.bind(
            {
                side: f"{kw[side + '_endpoint'] or 'aws'}|{kw[side + '_region'] or ''}|"
                f"{kw[side + '_vault']}"
                for side in ("from", "to")
            }
        )
        destination, existing, mapping = _destination(kw, console)
        options = Options(
            tier=kw["tier"],
            max_bytes_per_day=kw["max_bytes_per_day"],
            parallel=parallel,
            max_jobs=kw["max_jobs"],
            poll_interval=kw["poll_interval"],
            part_size=int(kw["part_size_mib"]) * MIB,
            retry_failed=kw["retry_failed"],
        )
        with byte_progress(
            console, "{task.description}", disable=not console.is_terminal
        ) as progress:
            total = progress.add_task("migrating", total=None)
            events = ConsoleEvents(console, progress, total, kw["verbose"])
            work_dir = state_path.with_name(state_path.name + ".d")
            migration = Migration(
                source,
                destination,
                state,
                work_dir,
                options=options,
                events=events,
                mapping=mapping,
            )
            return migration.run(existing)
    finally:
        state.close()


def _destination(
    kw: dict[str, Any], console: Console
) -> tuple[AdminImport | GlacierUpload, dict[str, str] | None, Path | None]:
    """The destination writer, what it already holds (admin import), the mapping file
    (plain uploads); says at the start which of the two it is."""
    dest_ep = Endpoint(kw["to_endpoint"], kw["to_profile"], kw["to_region"])
    dest_client = glacier_client(dest_ep, max_pool_connections=kw["parallel"] * 2)
    account = vault_account(dest_client, kw["to_vault"])
    if kw["to_admin_token"]:
        if not kw["to_endpoint"]:
            raise MigrationError("--to-admin-token needs --to-endpoint (an OpenGlacier server)")
        importer = AdminImport(kw["to_endpoint"], kw["to_admin_token"], account, kw["to_vault"])
        existing = importer.existing()
        console.print(
            f"Importing into {kw['to_vault']} with the admin API: archive ids, "
            "descriptions and creation dates are kept."
        )
        return importer, existing, None
    part_size = int(kw["part_size_mib"]) * MIB
    state_path: Path = kw["state_path"]
    mapping: Path = kw["mapping"] or state_path.with_name(
        state_path.name.removesuffix(".sqlite") + "-mapping.csv"
    )
    console.print(
        "[bold]No --to-admin-token: the destination issues new archive ids.[/] "
        f"Archives are uploaded anew; old id -> new id goes to {mapping}.",
        soft_wrap=True,
    )
    return GlacierUpload(dest_client, kw["to_vault"], part_size, kw["parallel"]), None, mapping


def _print_report(report: Report, console: Console) -> None:
    console.print(
        f"Archives in the source inventory: {report.archives}\n"
        f"Migrated: {report.migrated} ({report.migrated_bytes} bytes)\n"
        f"Skipped (already at the destination): {report.skipped} ({report.skipped_bytes} bytes)\n"
        f"Failed: {len(report.failed)}\n"
        f"Time: {report.seconds:.1f} s",
        highlight=False,
    )
    if report.not_migrated:
        console.print("Not migrated:", highlight=False)
        for e in report.not_migrated:
            # print: one line per archive, whatever the terminal's width.
            print(f"  {e.archive_id} {e.size} {e.state}: {e.reason or ''}", file=sys.stderr)
