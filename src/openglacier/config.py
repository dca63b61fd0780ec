"""One validated Settings object, from a TOML file, OPENGLACIER_* variables and flags.

Precedence (highest first): command-line flag, environment variable, config file,
default. The CLI (click) resolves flags and variables; `load_settings` merges the
file underneath and validates the result once, so the rest of the code never sees
an unchecked value.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from openglacier.clock import PROFILES, TimingProfile, parse_tier_delays

ENV_PREFIX = "OPENGLACIER_"
DEFAULT_PORT = 7979


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    processes: int = 1  # API server processes sharing the port (`serve --processes`)
    data_dir: Path = Path("data")
    region: str = "us-east-1"
    partition: str = "aws"
    timing: str = "instant"
    clock: str = "system"  # "manual": time moves only through the admin API
    metadata_url: str = ""  # default: SQLite file in data_dir
    blob_url: str = ""  # default: file:// directory in data_dir
    auth: str = "sigv4"  # "none": every request acts as the root account (tests only)
    max_clock_skew_seconds: int = 900
    body_timeout_seconds: float = 60.0
    max_json_body_bytes: int = 1 << 20
    maintenance_interval_seconds: float = 1.0
    # Unreferenced blobs (left by a crash between a blob's commit and its metadata's)
    # are deleted once older than this; it must exceed any upload's commit-to-metadata time.
    orphan_blob_min_age_seconds: float = 86400.0
    credential_cache_seconds: float = 5.0
    access_key_id: str = ""
    secret_access_key: str = ""
    account_id: str = ""
    admin_token: str = ""
    log_level: str = "info"
    # jobs (issue 3)
    tier_delays: str = ""  # "Bulk=3600,Standard=5m,Inventory=1h": overrides the profile
    job_retention_seconds: float = 86400.0  # completed jobs and their output (spec 4.2)
    job_workers: int = 1  # in-process job runners; 0: only `openglacier worker` processes
    job_lease_seconds: float = 60.0  # a runner's claim on a job; renewed while it runs
    job_poll_seconds: float = 1.0  # how often idle runners look for due jobs
    inventory_before_first: str = "error"  # "empty": accept, output an empty inventory
    select_output_url: str = ""  # s3+http://host:port, s3+https://..., or file:///dir
    select_output_access_key_id: str = ""
    select_output_secret_access_key: str = ""
    notify_targets: str = (
        ""  # "TOPIC_ARN=TARGET,...": TARGET log | http(s)://... | sns+http(s)://...
    )
    notify_max_attempts: int = 10
    notify_retry_seconds: float = 2.0  # first retry delay; doubles per attempt
    # data retrieval policy and capacity model (issue 4; spec 6.4, 6.5)
    free_tier_bytes_per_month: int = 10 << 30  # FreeTier allowance, prorated per day
    retrieval_spread_hours: float = 4.0  # a Standard retrieval's bytes per hour = size / this
    expedited_capacity: str = "unlimited"  # "strict": Expedited needs provisioned capacity

    @property
    def profile(self) -> TimingProfile:
        base = PROFILES[self.timing].with_delays(parse_tier_delays(self.tier_delays))
        return replace(base, job_retention=timedelta(seconds=self.job_retention_seconds))

    @property
    def resolved_metadata_url(self) -> str:
        return self.metadata_url or f"sqlite:///{(self.data_dir / 'metadata.db').resolve()}"

    @property
    def resolved_blob_url(self) -> str:
        return self.blob_url or f"file://{(self.data_dir / 'blobs').resolve()}"

    @property
    def max_clock_skew(self) -> timedelta:
        return timedelta(seconds=self.max_clock_skew_seconds)


_CHOICES = {
    "timing": tuple(PROFILES),
    "clock": ("system", "manual"),
    "auth": ("sigv4", "none"),
    "partition": ("aws", "aws-cn", "aws-us-gov"),
    "log_level": ("critical", "error", "warning", "info", "debug"),
    "inventory_before_first": ("error", "empty"),
    "expedited_capacity": ("unlimited", "strict"),
}

# Settings whose file form may be a TOML table; flags and variables give "k=v,k=v".
_TABLES = ("tier_delays", "notify_targets")


def _coerce(name: str, value: Any) -> Any:
    """Turn a file or flag value into the field's type, naming the field on error."""
    default = getattr(Settings(), name)
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes"}
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, Path):
            return Path(str(value)).expanduser()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: {value!r} is not a valid value") from exc
    return str(value)


def _flatten_table(value: Any) -> Any:
    """A TOML table or list becomes the flag form "k=v,k=v"."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML file: top-level keys, or the same keys under [openglacier]."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    section = data.get("openglacier", data)
    return {str(k).replace("-", "_"): v for k, v in section.items()}


def load_settings(overrides: dict[str, Any], config_file: Path | None = None) -> Settings:
    """Merge file values under explicit overrides (None means "not given")."""
    known = {f.name for f in fields(Settings)}
    merged: dict[str, Any] = {}
    if config_file is not None:
        for key, value in read_config_file(config_file).items():
            if key not in known:
                raise ConfigError(f"config file {config_file}: unknown setting {key!r}")
            merged[key] = value
    merged.update({k: v for k, v in overrides.items() if v is not None and k in known})
    for name in _TABLES:
        merged[name] = _flatten_table(merged.get(name, ""))
    settings = replace(Settings(), **{k: _coerce(k, v) for k, v in merged.items()})
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    for name, allowed in _CHOICES.items():
        if getattr(settings, name) not in allowed:
            raise ConfigError(f"setting {name!r} must be one of {', '.join(allowed)}")
    if not 0 <= settings.port <= 65535:
        raise ConfigError("setting 'port' must be between 0 and 65535")
    account = settings.account_id
    if account and not (account.isdigit() and len(account) == 12):
        raise ConfigError("setting 'account_id' must be 12 digits")
    try:
        parse_tier_delays(settings.tier_delays)
    except ValueError as exc:
        raise ConfigError(f"setting 'tier_delays': {exc}") from None
    from openglacier.notify.targets import parse_targets  # noqa: PLC0415 - heavy imports

    try:
        parse_targets(settings.notify_targets).close()
    except ValueError as exc:
        raise ConfigError(f"setting 'notify_targets': {exc}") from None
    for name in ("job_retention_seconds", "job_lease_seconds", "job_poll_seconds"):
        if not getattr(settings, name) > 0:
            raise ConfigError(f"setting {name!r} must be greater than 0")
    if settings.notify_max_attempts < 1 or settings.notify_retry_seconds < 0:
        raise ConfigError("notify_max_attempts must be >= 1 and notify_retry_seconds >= 0")
    if settings.free_tier_bytes_per_month < 0 or not settings.retrieval_spread_hours > 0:
        raise ConfigError("free_tier_bytes_per_month must be >= 0 and retrieval_spread_hours > 0")
    _validate_processes(settings)
    if settings.job_workers < 0:
        raise ConfigError("setting 'job_workers' must be 0 or more")
    if bool(settings.access_key_id) != bool(settings.secret_access_key):
        raise ConfigError("set both access_key_id and secret_access_key, or neither")


def _validate_processes(settings: Settings) -> None:
    if settings.processes < 1:
        raise ConfigError("setting 'processes' must be 1 or more")
    if settings.processes > 1 and settings.clock == "manual":
        # Each process would keep its own clock; the admin API moves only one.
        raise ConfigError("clock 'manual' needs processes = 1: the clock lives in one process")
