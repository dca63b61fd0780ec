"""Shared click options, built from the Settings fields (config.py is the one source of
their help text); every option is also an OPENGLACIER_* environment variable."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import Field, fields
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from openglacier.cli.startup import SettingsError
from openglacier.config import (
    CHOICES,
    TABLES,
    ConfigError,
    Settings,
    env_name,
    environment_values,
    load_layers,
)

F = TypeVar("F", bound=Callable[..., Any])

_METAVARS = {"tier_delays": "TIER=DURATION", "notify_targets": "TOPIC_ARN=TARGET"}


def settings_field(name: str) -> Field[Any]:
    return next(f for f in fields(Settings) if f.name == name)


def shown_default(spec: Field[Any]) -> str:
    """A field's default as help text and docs word it."""
    if spec.metadata["shown"]:
        return str(spec.metadata["shown"])
    if isinstance(spec.default, float) and spec.default.is_integer():
        return str(int(spec.default))
    return str(spec.default) if spec.default != "" else "none"


def _click_type(spec: Field[Any]) -> Any:
    if spec.name in CHOICES:
        return click.Choice(list(CHOICES[spec.name]))
    if isinstance(spec.default, Path):
        return click.Path(file_okay=False, path_type=Path)
    if isinstance(spec.default, int | float):
        return type(spec.default)
    return None


def setting_option(name: str, help: str | None = None) -> Callable[[F], F]:
    """The option for Settings field `name`: its flag, variable, type and help text.
    `help` replaces the field's text where a command uses the setting differently."""
    spec = settings_field(name)
    text = f"{help or spec.metadata['help']} [{shown_default(spec)}]"
    extra: dict[str, Any] = {}
    if name in TABLES:  # repeatable on the command line; a table in a file
        extra = {"multiple": True, "metavar": _METAVARS[name]}
    return click.option(
        spec.metadata["flag"],
        name,
        envvar=env_name(name),
        type=_click_type(spec),
        help=text,
        **extra,
    )


def _apply(func: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def config_option() -> Callable[[F], F]:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="OPENGLACIER_CONFIG",
        help="TOML file of settings; flags and variables win over it (docs/settings.md).",
    )


def storage_options(func: F) -> F:
    """Where the stores are and how blobs are encoded: every command has these."""
    names = (
        "data_dir",
        "metadata_url",
        "blob_url",
        "replica_blob_url",
        "encryption_key_file",
        "compression",
    )
    return _apply(func, [config_option(), *(setting_option(n) for n in names)])


# What `serve` uses beyond the stores: the listener, time, auth and every job setting.
SERVE_SETTINGS = (
    "host",
    "port",
    "processes",
    "metrics_port",
    "region",
    "timing",
    "clock",
    "auth",
    "tier_delays",
    "job_retention_seconds",
    "job_workers",
    "job_lease_seconds",
    "job_poll_seconds",
    "inventory_before_first",
    "select_output_url",
    "expedited_capacity",
    "free_tier_bytes_per_month",
    "retrieval_spread_hours",
    "notify_targets",
    "scrub_rate",
    "scrub_interval",
    "log_level",
    "log_format",
    "access_log",
    "console",
)


def server_options(func: F) -> F:
    return _apply(func, [setting_option(name) for name in SERVE_SETTINGS])


def worker_options(func: F) -> F:
    """Only what a worker uses: it runs due jobs and delivers notifications. Job
    durations, retention, capacity and retrieval policy are decided when a job is
    initiated or expired, by the API nodes, so a worker has no such options."""
    return _apply(
        func,
        [
            setting_option("region", "Region of the select output store and SNS targets."),
            setting_option("job_workers", "Job runners in this worker process (at least 1 runs)."),
            setting_option("job_lease_seconds"),
            setting_option("job_poll_seconds"),
            setting_option("select_output_url"),
            setting_option("notify_targets"),
            setting_option("metrics_port", "Serve GET /metrics on this port (-1: none)."),
            setting_option("log_level"),
            setting_option("log_format"),
        ],
    )


def settings_from(config_file: Path | None, **overrides: Any) -> Settings:
    return settings_and_sources(config_file, **overrides)[0]


def settings_and_sources(
    config_file: Path | None, **overrides: Any
) -> tuple[Settings, dict[str, str]]:
    """Settings from the command's options, every OPENGLACIER_* variable and the file,
    with where each value came from.

    Settings without a flag (credentials and tokens among them: flags show up in
    process listings) come from the environment or the file only."""
    context = click.get_current_context(silent=True)
    flags: dict[str, Any] = {}
    environment: dict[str, Any] = dict(environment_values(os.environ))
    for name, given in overrides.items():
        # Repeatable options arrive as tuples; the settings take "a,b".
        value = (",".join(given) or None) if isinstance(given, tuple) else given
        if value is None:
            continue
        source = context.get_parameter_source(name) if context is not None else None
        if source is ParameterSource.ENVIRONMENT:
            environment[name] = value
        else:
            flags[name] = value
    try:
        return load_layers(flags, environment, config_file)
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None
