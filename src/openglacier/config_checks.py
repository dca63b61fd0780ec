"""Validation of a Settings object: one message per bad setting, naming it and its flag."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from openglacier.clock import parse_tier_delays
from openglacier.config import CHOICES, MIN_ORPHAN_AGE_SECONDS, ConfigError, mask_secrets

if TYPE_CHECKING:
    from openglacier.config import Settings

_METADATA_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")


def _validate_urls(settings: Settings) -> None:
    """Storage URLs are checked before anything touches the disk or the network."""
    if settings.metadata_url:
        parsed = urlsplit(settings.metadata_url)
        shown = mask_secrets(settings.metadata_url)
        if parsed.scheme not in _METADATA_SCHEMES:
            raise ConfigError(
                f"metadata_url {shown!r} is not supported: use sqlite:///FILE or "
                "postgresql://USER@HOST/DB (--metadata-url)"
            )
        if parsed.scheme == "sqlite" and parsed.path in ("", "/", "/:memory:"):
            raise ConfigError(
                f"metadata_url {shown!r} names no file: use sqlite:///path/to/metadata.db"
            )
    if settings.blob_url:
        _validate_blob_url(settings.blob_url)
    if bool(settings.blob_access_key_id) != bool(settings.blob_secret_access_key):
        raise ConfigError("set both blob_access_key_id and blob_secret_access_key, or neither")


def _validate_blob_url(url: str, name: str = "blob_url", flag: str = "--blob-url") -> None:
    parsed = urlsplit(url)
    shown = mask_secrets(url)
    if parsed.scheme in ("s3+http", "s3+https"):
        from openglacier.storage.blobs.s3_client import S3Location  # noqa: PLC0415 - boto3

        try:
            S3Location.parse(url)
        except ValueError as exc:
            raise ConfigError(f"{name} {shown!r}: {exc} ({flag})") from None
    elif parsed.scheme != "file" or parsed.path in ("", "/") or parsed.netloc:
        raise ConfigError(
            f"{name} {shown!r} is not supported: use file:///DIRECTORY or "
            f"s3+http://HOST:PORT/BUCKET[/PREFIX] ({flag})"
        )


def _check_ports(settings: Settings) -> None:
    if not 0 <= settings.port <= 65535:
        raise ConfigError("setting 'port' must be between 0 and 65535")
    if not -1 <= settings.metrics_port <= 65535:
        raise ConfigError("setting 'metrics_port' must be -1 (the API port) or 0 to 65535")


def check_settings(settings: Settings) -> None:
    for name, allowed in CHOICES.items():
        if getattr(settings, name) not in allowed:
            raise ConfigError(f"setting {name!r} must be one of {', '.join(allowed)}")
    _check_ports(settings)
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
        raise ConfigError(f"setting 'notify_targets': {mask_secrets(str(exc))}") from None
    for name in ("job_retention_seconds", "job_lease_seconds", "job_poll_seconds"):
        if not getattr(settings, name) > 0:
            raise ConfigError(f"setting {name!r} must be greater than 0")
    if settings.notify_max_attempts < 1 or settings.notify_retry_seconds < 0:
        raise ConfigError("notify_max_attempts must be >= 1 and notify_retry_seconds >= 0")
    if settings.free_tier_bytes_per_month < 0 or not settings.retrieval_spread_hours > 0:
        raise ConfigError("free_tier_bytes_per_month must be >= 0 and retrieval_spread_hours > 0")
    _validate_orphan_age(settings)
    _validate_processes(settings)
    _validate_urls(settings)
    _validate_data_at_rest(settings)
    if settings.job_workers < 0:
        raise ConfigError("setting 'job_workers' must be 0 or more")
    if bool(settings.access_key_id) != bool(settings.secret_access_key):
        raise ConfigError("set both access_key_id and secret_access_key, or neither")


def _validate_orphan_age(settings: Settings) -> None:
    if settings.orphan_blob_min_age_seconds < MIN_ORPHAN_AGE_SECONDS:
        # Below this a blob between its commit and its metadata's (a stalled
        # writer, a clock step between nodes) could be taken for an orphan.
        raise ConfigError(
            f"setting 'orphan_blob_min_age_seconds' must be at least {MIN_ORPHAN_AGE_SECONDS:.0f}"
        )


def _validate_processes(settings: Settings) -> None:
    if settings.processes < 1:
        raise ConfigError("setting 'processes' must be 1 or more")
    if settings.processes > 1 and settings.clock == "manual":
        # Each process would keep its own clock; the admin API moves only one.
        raise ConfigError("clock 'manual' needs processes = 1: the clock lives in one process")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_ZSTD_LEVEL = 22


def parse_duration(text: str) -> float:
    """Seconds in '30d', '12h', '90m', '3600s' or '3600'; ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 30d, 12h, 90m, 3600s)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than 0")
    return seconds


def parse_compression(text: str) -> int | None:
    """The zstd level of a compression setting, None when off. Plain 'zstd' is
    level 1: archives are mostly compressed already, and level 1 stored within
    about 1 % of level 3 at over twice its speed (docs/performance.md)."""
    value = text.strip().lower()
    if value in ("", "off", "none"):
        return None
    name, _, level = value.partition(":")
    if name != "zstd":
        raise ValueError(f"{text!r} is not supported: use zstd or zstd:LEVEL")
    if not level:
        return 1
    if not level.isdigit() or not 1 <= int(level) <= MAX_ZSTD_LEVEL:
        raise ValueError(f"level in {text!r} must be 1 to {MAX_ZSTD_LEVEL}")
    return int(level)


def _validate_data_at_rest(settings: Settings) -> None:
    try:
        parse_compression(settings.compression)
    except ValueError as exc:
        raise ConfigError(f"setting 'compression': {exc} (--compression)") from None
    try:
        parse_duration(settings.scrub_interval)
    except ValueError as exc:
        raise ConfigError(f"setting 'scrub_interval': {exc} (--scrub-interval)") from None
    if settings.scrub_rate < 0:
        raise ConfigError("setting 'scrub_rate' must be 0 (off) or more MiB/s (--scrub-rate)")
    if settings.replica_blob_url:
        _validate_blob_url(settings.replica_blob_url, "replica_blob_url", "--replica-blob-url")
        if settings.replica_blob_url == settings.resolved_blob_url:
            raise ConfigError("replica_blob_url must name another store than blob_url")
