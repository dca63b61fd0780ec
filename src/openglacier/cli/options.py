"""Shared click options: every option is also an OPENGLACIER_* environment variable."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from openglacier.clock import PROFILES
from openglacier.config import ConfigError, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def _env(name: str) -> str:
    return "OPENGLACIER_" + name.upper()


def _region_option() -> Callable[[F], F]:
    return click.option("--region", envvar=_env("region"), help="Region served [us-east-1].")


def _log_level_option() -> Callable[[F], F]:
    return click.option(
        "--log-level",
        envvar=_env("log_level"),
        type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    )


def storage_options(func: F) -> F:
    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar=_env("config"),
            help="TOML file of settings (flags and variables win).",
        ),
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            envvar=_env("data_dir"),
            help="Where metadata, blobs and keys live [data].",
        ),
        click.option(
            "--metadata-url",
            envvar=_env("metadata_url"),
            help="sqlite:///FILE (default: in the data dir) or postgresql://...",
        ),
        click.option(
            "--blob-url",
            envvar=_env("blob_url"),
            help="file:///DIR (default: blobs/ in the data dir).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def server_options(func: F) -> F:
    options = [
        click.option("--host", envvar=_env("host"), help="Address to listen on [127.0.0.1]."),
        click.option("--port", type=int, envvar=_env("port"), help="Port to listen on [7979]."),
        click.option(
            "--processes",
            type=int,
            envvar=_env("processes"),
            help="API server processes sharing the port, e.g. one per core [1].",
        ),
        _region_option(),
        click.option(
            "--timing",
            type=click.Choice(list(PROFILES)),
            envvar=_env("timing"),
            help="Job and inventory timing profile [instant].",
        ),
        click.option(
            "--clock",
            type=click.Choice(["system", "manual"]),
            envvar=_env("clock"),
            help="manual: time moves only through the admin API (tests).",
        ),
        click.option(
            "--auth",
            type=click.Choice(["sigv4", "none"]),
            envvar=_env("auth"),
            help="none: accept every request as the root account (tests only).",
        ),
        *job_options(),
        _log_level_option(),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def worker_options(func: F) -> F:
    options = [
        _region_option(),
        *job_options(),
        _log_level_option(),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def job_options() -> list[Callable[[F], F]]:
    """Job timing, runners and outputs (issue 3); shared by `serve` and `worker`."""
    return [
        click.option(
            "--tier-delay",
            "tier_delays",
            multiple=True,
            envvar=_env("tier_delays"),
            metavar="TIER=DURATION",
            help="Override a tier's job duration (Expedited, Standard, Bulk, Inventory), "
            "in seconds or like 5m, 1h30m. Repeatable.",
        ),
        click.option(
            "--job-retention",
            "job_retention_seconds",
            type=float,
            envvar=_env("job_retention_seconds"),
            help="Seconds completed jobs and their output are kept [86400].",
        ),
        click.option(
            "--job-workers",
            type=int,
            envvar=_env("job_workers"),
            help="Job runners inside this process; 0 leaves jobs to `openglacier worker` [1].",
        ),
        click.option(
            "--job-lease",
            "job_lease_seconds",
            type=float,
            envvar=_env("job_lease_seconds"),
            help="Seconds a runner's claim on a job lasts without renewal [60].",
        ),
        click.option(
            "--job-poll",
            "job_poll_seconds",
            type=float,
            envvar=_env("job_poll_seconds"),
            help="Seconds between idle runners' looks for due jobs and notifications [1].",
        ),
        click.option(
            "--inventory-before-first",
            type=click.Choice(["error", "empty"]),
            envvar=_env("inventory_before_first"),
            help="Inventory job before a vault's first inventory: 404 error, or an empty "
            "inventory [error].",
        ),
        click.option(
            "--select-output-url",
            envvar=_env("select_output_url"),
            help="Where select jobs write: s3+http://HOST:PORT (S3-compatible) or file:///DIR.",
        ),
        click.option(
            "--expedited-capacity",
            type=click.Choice(["unlimited", "strict"]),
            envvar=_env("expedited_capacity"),
            help="strict: Expedited retrievals need provisioned capacity (3 per unit per "
            "5 minutes), else 503 InsufficientCapacityException [unlimited].",
        ),
        click.option(
            "--free-tier-bytes-per-month",
            type=int,
            envvar=_env("free_tier_bytes_per_month"),
            help="FreeTier data retrieval allowance, prorated per day [10 GiB].",
        ),
        click.option(
            "--retrieval-spread-hours",
            type=float,
            envvar=_env("retrieval_spread_hours"),
            help="A Standard retrieval counts as its bytes / this many hours against a "
            "BytesPerHour policy [4].",
        ),
        click.option(
            "--notify",
            "notify_targets",
            multiple=True,
            envvar=_env("notify_targets"),
            metavar="TOPIC_ARN=TARGET",
            help="Deliver a topic's notifications to log, an http(s):// webhook, or "
            "sns+http(s)://HOST:PORT (SNS Publish). TOPIC_ARN may be * . Repeatable.",
        ),
    ]


def settings_from(config_file: Path | None, **overrides: Any) -> Settings:
    """Credentials and tokens are read from the environment only, never from flags
    (flags show up in process listings)."""
    for name in (
        "access_key_id",
        "secret_access_key",
        "account_id",
        "admin_token",
        "select_output_access_key_id",
        "select_output_secret_access_key",
    ):
        overrides.setdefault(name, os.environ.get(_env(name)) or None)
    for name, value in list(overrides.items()):
        if isinstance(value, tuple):  # repeatable options
            overrides[name] = ",".join(value) if value else None
    try:
        return load_settings(overrides, config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
