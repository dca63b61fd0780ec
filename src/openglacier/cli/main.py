"""`openglacier` command line: serve, worker, keys, accounts, policies."""

from __future__ import annotations

import asyncio
import logging
import sys
from functools import partial
from pathlib import Path
from typing import Any

import click
import uvicorn
from rich.console import Console
from rich.table import Table
from uvicorn.supervisors import Multiprocess

from openglacier import __version__
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
    process_app,
    reuse_port_supported,
    uvicorn_config,
)
from openglacier.clock import SystemClock
from openglacier.config import Settings
from openglacier.domain.services import Services
from openglacier.server import build_deps, build_runtime, job_setup

console = Console(highlight=False)


@click.group()
@click.version_option(__version__, prog_name="openglacier")
def main() -> None:
    """OpenGlacier: an Amazon Glacier compatible archive server."""


@main.command()
@storage_options
@server_options
def serve(config_file: Path | None, **options: Any) -> None:
    """Run the Glacier API server."""
    settings = settings_from(config_file, **options)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    runtime = build_runtime(settings)
    print_banner(
        settings,
        runtime.root.access_key_id,
        runtime.root.secret_access_key,
        runtime.root.account_id,
        runtime.admin_token,
    )
    if settings.processes > 1:
        # The parent only migrated, wrote the key and token files and printed
        # the banner; each process builds its own runtime (runtimes hold
        # connection pools and threads, which must not cross a process start).
        runtime.close()
        sys.exit(serve_processes(settings))
    config = uvicorn_config(settings, runtime.app)
    try:
        uvicorn.Server(config).run()
    finally:
        runtime.close()


def serve_processes(settings: Settings) -> int:
    """`--processes N`; the exit status.

    Processes share nothing in memory, as separate API nodes would: metadata
    and blobs are the shared state, and SQLite writers of all of them queue on
    one lock file (storage/metadata/writer_lock.py). Each listens on its own
    SO_REUSEPORT socket (cli/processes.py); where the platform has none,
    uvicorn's supervisor shares one socket among them.
    """
    if reuse_port_supported():
        return Supervisor(settings).run()
    config = uvicorn_config(
        settings, partial(process_app, settings), factory=True, workers=settings.processes
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()
    return 0


def print_banner(settings: Settings, key: str, secret: str, account: str, admin: str) -> None:
    endpoint = f"http://{settings.host}:{settings.port}"
    console.print(f"[bold]OpenGlacier {__version__}[/bold] on {endpoint}")
    processes = f"   processes {settings.processes}" if settings.processes > 1 else ""
    console.print(f"  region     {settings.region}   timing {settings.timing}{processes}")
    console.print(f"  account id {account}")
    console.print(f"  access key {key}")
    console.print(f"  secret key {secret}")
    console.print(f"  admin token (for /_admin) {admin}")
    console.print(f"  metadata   {settings.resolved_metadata_url}")
    console.print(f"  blobs      {settings.resolved_blob_url}")
    console.print("Try it:")
    console.print(
        f"  AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret} "
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
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    services = Services.build(build_deps(settings, SystemClock()), job_setup(settings))
    console.print(
        f"[bold]OpenGlacier {__version__} worker[/bold]: "
        f"{max(1, settings.job_workers)} runner(s) on {settings.resolved_metadata_url}"
    )
    try:
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
def keys_list(config_file: Path | None, **options: Any) -> None:
    """List access keys (secrets are not shown)."""
    table = Table("access key id", "account id", "created", "description")
    for cred in list_keys(settings_from(config_file, **options)):
        table.add_row(
            cred.access_key_id,
            cred.account_id,
            cred.created_at.isoformat(),
            cred.description + (" (root)" if cred.is_root else ""),
        )
    console.print(table)


@keys.command("delete")
@storage_options
@click.argument("access_key_id")
def keys_delete(config_file: Path | None, access_key_id: str, **options: Any) -> None:
    """Delete an access key."""
    if not delete_key(settings_from(config_file, **options), access_key_id):
        raise click.ClickException(f"no such key: {access_key_id}")
    console.print(f"deleted {access_key_id}")


main.add_command(accounts)
main.add_command(policies)
