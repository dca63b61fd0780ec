"""`openglacier` command line: serve, worker, keys, accounts, policies."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from uvicorn.supervisors import Multiprocess

from openglacier import __version__, logs
from openglacier.auth.credentials import RootKeys
from openglacier.cli.blobs import blobs
from openglacier.cli.config_cmd import config
from openglacier.cli.encryption import encryption_key
from openglacier.cli.governance import accounts, policies
from openglacier.cli.keys import create_key, delete_key, list_keys
from openglacier.cli.options import (
    server_options,
    settings_from,
    storage_options,
    worker_options,
)
from openglacier.cli.processes import (
    Supervisor,
    keeper_socket,
    process_app,
    reuse_port_supported,
    uvicorn_config,
)
from openglacier.cli.scrub import scrub
from openglacier.cli.startup import AnnouncingServer, listen_socket, one_line_errors
from openglacier.cli.usage import usage
from openglacier.clock import SystemClock
from openglacier.config import Settings, mask_secrets
from openglacier.domain.services import Services
from openglacier.domain.usage_report import Prices, PriceTableError, load_prices
from openglacier.metrics.exposition import MetricsServer, multiprocess_dir
from openglacier.records import Credential
from openglacier.server import build_deps, build_runtime, job_setup

console = Console(highlight=False)
NOT_SHOWN = "(configured; not shown)"


# The server's commands only: `cli/entry.py` adds the client's (archive,
# inventory, job, migrate, vault), so a server process never imports them
# (httpx and boto3's transfer manager, about 10 MiB of RSS per process).
@click.group()
@click.version_option(__version__, prog_name="openglacier")
def main() -> None:
    """OpenGlacier: an Amazon Glacier compatible archive server."""


@main.command()
@storage_options
@server_options
def serve(config_file: Path | None, **options: Any) -> None:
    """Run the Glacier API server.

    The port is taken first, so a taken port fails before anything is created;
    the banner is printed once the server serves.
    """
    settings = settings_from(config_file, **options)
    logs.configure(settings.log_level, settings.log_format)
    prices = server_prices(config_file)
    if settings.processes > 1:
        sys.exit(serve_processes(settings, prices))
    with listen_socket(settings.host, settings.port) as sock:
        settings = replace(settings, port=int(sock.getsockname()[1]))
        with one_line_errors(settings):
            runtime = build_runtime(settings, prices=prices)
        try:
            with metrics_server(settings):
                banner = partial(print_banner, settings, runtime.root, runtime.admin_token)
                AnnouncingServer(uvicorn_config(settings, runtime.app), banner).run(sockets=[sock])
        finally:
            runtime.close()


def server_prices(config_file: Path | None) -> Prices:
    """The console's price table: the config file's `[prices]` over AWS's."""
    try:
        return load_prices(config_file)
    except PriceTableError as exc:
        raise click.ClickException(str(exc)) from None


def serve_processes(settings: Settings, prices: Prices) -> int:
    """`--processes N`; the exit status.

    Processes share nothing in memory, as separate API nodes would: metadata
    and blobs are the shared state, and SQLite writers of all of them queue on
    one lock file (storage/metadata/writer_lock.py). Each listens on its own
    SO_REUSEPORT socket (cli/processes.py); where the platform has none,
    uvicorn's supervisor shares one socket among them. The parent takes the
    port, migrates and writes the key and token files before any process starts;
    each process builds its own runtime (runtimes hold connection pools and
    threads, which must not cross a process start).
    """
    if not reuse_port_supported():
        return _serve_shared_socket(settings, prices)
    keeper = keeper_socket(settings.host, settings.port)
    settings = replace(settings, port=int(keeper.getsockname()[1]))
    try:
        with one_line_errors(settings):
            runtime = build_runtime(settings)
        runtime.close()
    except BaseException:
        keeper.close()
        raise
    banner = partial(print_banner, settings, runtime.root, runtime.admin_token)
    # Every process's metrics in one directory, merged by whichever answers a scrape.
    with multiprocess_dir(), metrics_server(settings):
        return Supervisor(settings, keeper, banner, prices).run()


def _serve_shared_socket(settings: Settings, prices: Prices) -> int:
    with listen_socket(settings.host, settings.port) as sock:
        settings = replace(settings, port=int(sock.getsockname()[1]))
        with one_line_errors(settings):
            runtime = build_runtime(settings)
        runtime.close()
        print_banner(settings, runtime.root, runtime.admin_token)
        config = uvicorn_config(
            settings,
            partial(process_app, settings, prices),
            factory=True,
            workers=settings.processes,
        )
        with multiprocess_dir(), metrics_server(settings):
            Multiprocess(config, sockets=[sock]).run()
    return 0


@contextmanager
def metrics_server(settings: Settings) -> Iterator[None]:
    """GET /metrics on --metrics-port, if one is set, for as long as the block runs."""
    if settings.metrics_port < 0:
        yield
        return
    try:
        server = MetricsServer(settings.host, settings.metrics_port)
    except OSError as exc:
        where = f"{settings.host}:{settings.metrics_port}"
        raise click.ClickException(
            f"cannot serve metrics on {where}: {exc.strerror or exc}; choose another --metrics-port"
        ) from None
    try:
        yield
    finally:
        server.close()


def print_banner(settings: Settings, root: RootKeys, admin: str) -> None:
    """Where to connect and with what. Generated credentials are printed for their
    first use; configured ones are the operator's already, and printing them would
    only copy them into logs."""
    key, secret, account = root.access_key_id, root.secret_access_key, root.account_id
    if settings.secret_access_key:
        secret = NOT_SHOWN
    if settings.admin_token:
        admin = NOT_SHOWN
    endpoint = f"http://{settings.host}:{settings.port}"
    console.print(f"[bold]OpenGlacier {__version__}[/bold] on {endpoint}")
    processes = f"   processes {settings.processes}" if settings.processes > 1 else ""
    console.print(f"  region     {settings.region}   timing {settings.timing}{processes}")
    console.print(f"  account id {account}")
    console.print(f"  access key {key}")
    console.print(f"  secret key {secret}")
    console.print(f"  admin token (for /_admin and the console) {admin}")
    if settings.metrics_port >= 0:
        console.print(f"  metrics    http://{settings.host}:{settings.metrics_port}/metrics")
    else:
        console.print(f"  metrics    {endpoint}/metrics   health {endpoint}/health/ready")
    if settings.console == "on":
        console.print(f"  console    {endpoint}/console/  (sign in with the key above)")
    console.print(f"  metadata   {mask_secrets(settings.resolved_metadata_url)}")
    console.print(f"  blobs      {mask_secrets(settings.resolved_blob_url)}")
    console.print("Try it:")
    console.print(
        f"  AWS_ACCESS_KEY_ID={key} "
        f"AWS_SECRET_ACCESS_KEY={'...' if settings.secret_access_key else secret} "
        f"aws glacier create-vault --account-id - --vault-name demo "
        f"--endpoint-url {endpoint} --region {settings.region}",
        soft_wrap=True,
    )


@main.command()
@storage_options
@worker_options
def worker(config_file: Path | None, **options: Any) -> None:
    """Run retrieval jobs and deliver notifications, without serving the API.

    Start any number of workers against the same metadata store and blob store
    as the API nodes (typically PostgreSQL + shared blobs); run the API nodes
    with --job-workers 0 to leave all jobs to workers.
    """
    settings = settings_from(config_file, **options)
    logs.configure(settings.log_level, settings.log_format)
    with one_line_errors(settings):
        services = Services.build(build_deps(settings, SystemClock()), job_setup(settings))
    console.print(
        f"[bold]OpenGlacier {__version__} worker[/bold]: {max(1, settings.job_workers)} "
        f"runner(s) on {mask_secrets(settings.resolved_metadata_url)}"
    )
    try:
        with metrics_server(settings):
            asyncio.run(run_worker(services, settings.job_poll_seconds))
    except KeyboardInterrupt:
        pass
    finally:
        services.deliverer.targets.close()
        services.deps.store.close()
        services.deps.blobs.close()


async def run_worker(services: Services, poll_seconds: float) -> None:
    loops = [runner.loop(poll_seconds) for runner in services.runners]
    await asyncio.gather(*loops, services.deliverer.loop(poll_seconds))


@main.group()
def keys() -> None:
    """Manage access keys (each tied to an account id)."""


@keys.command("create")
@storage_options
@click.option("--account-id", "key_account", help="Account of the new key [the root account].")
@click.option("--description", default="", help="Free text shown by `keys list`.")
def keys_create(
    config_file: Path | None, key_account: str | None, description: str, **options: Any
) -> None:
    """Create an access key and print its secret (shown only once)."""
    settings = settings_from(config_file, **options)
    cred = create_key(settings, key_account, description)
    console.print(f"access key id      {cred.access_key_id}")
    console.print(f"secret access key  {cred.secret_access_key}")
    console.print(f"account id         {cred.account_id}")


@keys.command("list")
@storage_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per key.")
def keys_list(config_file: Path | None, as_json: bool, **options: Any) -> None:
    """List access keys (secrets are not shown)."""
    creds = list_keys(settings_from(config_file, **options))
    if as_json:
        for cred in creds:
            click.echo(json.dumps(_key_json(cred)))
        return
    # Ids and times are never cut (a cut id is useless); the description wraps.
    table = Table()
    for header in ("access key id", "account id", "created"):
        table.add_column(header, no_wrap=True)
    table.add_column("description", overflow="fold")
    for cred in creds:
        table.add_row(
            cred.access_key_id,
            cred.account_id,
            iso_seconds(cred.created_at),
            cred.description + (" (root)" if cred.is_root else ""),
        )
    console.print(table)


def _key_json(cred: Credential) -> dict[str, Any]:
    return {
        "AccessKeyId": cred.access_key_id,
        "AccountId": cred.account_id,
        "CreationDate": iso_seconds(cred.created_at),
        "Description": cred.description,
        "IsRoot": cred.is_root,
    }


def iso_seconds(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@keys.command("delete")
@storage_options
@click.argument("access_key_id")
def keys_delete(config_file: Path | None, access_key_id: str, **options: Any) -> None:
    """Delete an access key."""
    if not delete_key(settings_from(config_file, **options), access_key_id):
        raise click.ClickException(f"no such key: {access_key_id}")
    console.print(f"deleted {access_key_id}")


main.add_command(accounts)
main.add_command(blobs)
main.add_command(config)
main.add_command(encryption_key)
main.add_command(policies)
main.add_command(scrub)
main.add_command(usage)
