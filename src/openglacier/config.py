"""One validated Settings object, from a TOML file, OPENGLACIER_* variables and flags.

Precedence (highest first): command-line flag, environment variable, config file,
default. The CLI (click) resolves flags and variables; `load_settings` merges the
file underneath and validates the result once, so the rest of the code never sees
an unchecked value.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from openglacier.clock import PROFILES, TimingProfile, parse_tier_delays

ENV_PREFIX = "OPENGLACIER_"
DEFAULT_PORT = 7979
MIN_ORPHAN_AGE_SECONDS = 3600.0
DEFAULT_DATA_DIR = Path("data")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the setting."""


T = TypeVar("T")


def setting(
    default: T,
    help: str,
    *,
    flag: str | None = None,
    secret: bool = False,
    shown: str | None = None,
) -> T:
    """A Settings field with its documentation: the one source for click's option
    help, docs/settings.md and README's table (openglacier.cli.settings_doc).

    `flag`: the command-line option, if any (every field has its OPENGLACIER_*
    variable and TOML key); `secret`: masked by `config show`; `shown`: the
    default as the docs should word it, when the raw value says too little.
    """
    meta = {"help": help, "flag": flag, "secret": secret, "shown": shown}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    host: str = setting("127.0.0.1", "Address to listen on.", flag="--host")
    port: int = setting(DEFAULT_PORT, "Port to listen on (0: any free port).", flag="--port")
    processes: int = setting(
        1,
        "API server processes sharing the port, e.g. one per core, each on its own "
        "SO_REUSEPORT socket; they share only the stores. A process that dies is "
        "replaced. A manual clock needs 1 process (the clock lives in one process).",
        flag="--processes",
    )
    metrics_port: int = setting(
        -1,
        "Serve GET /metrics on this port of --host instead of the API port (0: any free "
        "port; -1: on the API port). A worker serves its metrics only there.",
        flag="--metrics-port",
    )
    data_dir: Path = setting(  # noqa: RUF009 - setting() is a dataclasses.field
        DEFAULT_DATA_DIR,
        "Where metadata, blobs, generated keys and the admin token live (made mode 0700).",
        flag="--data-dir",
    )
    region: str = setting(
        "us-east-1",
        "Region served; requests signed for another region are refused.",
        flag="--region",
    )
    partition: str = setting("aws", "ARN partition: aws, aws-cn or aws-us-gov.")
    timing: str = setting(
        "instant", "Job and inventory timing profile: instant, fast or aws.", flag="--timing"
    )
    clock: str = setting(
        "system",
        "manual: time moves only through the admin API (tests).",
        flag="--clock",
    )
    metadata_url: str = setting(
        "",
        "sqlite:///FILE or postgresql://USER@HOST/DB.",
        flag="--metadata-url",
        shown="SQLite file metadata.db in the data dir",
    )
    blob_url: str = setting(
        "",
        "Where archive bytes live: file:///DIRECTORY, or s3+http://HOST:PORT/BUCKET[/PREFIX] "
        "(or s3+https://) on an S3-compatible store; the bucket is created if missing.",
        flag="--blob-url",
        shown="file://DATA_DIR/blobs",
    )
    blob_access_key_id: str = setting(
        "",
        "Access key id for an s3+http(s) blob store (environment or file only).",
        shown="AWS_ACCESS_KEY_ID",
    )
    blob_secret_access_key: str = setting(
        "",
        "Secret key for an s3+http(s) blob store (environment or file only).",
        secret=True,
        shown="AWS_SECRET_ACCESS_KEY",
    )
    blob_region: str = setting(
        "",
        "Region of an s3+http(s) blob store (signing, bucket creation).",
        shown="AWS_REGION, else us-east-1",
    )
    replica_blob_url: str = setting(
        "",
        "A second blob store (same URL forms as --blob-url): every new blob is written to "
        "both, reads fall back to the good copy, and the scrubber repairs a damaged copy "
        "from the other.",
        flag="--replica-blob-url",
    )
    encryption_key_file: str = setting(
        "",
        "Key file (32 random bytes, or a keyring of several keys with ids; make one with "
        "'openglacier encryption-key create FILE') that encrypts new blobs with "
        "AES-256-GCM and seals stored secret keys. Empty: blobs are stored unencrypted.",
        flag="--encryption-key-file",
    )
    compression: str = setting(
        "",
        "Compress new blobs per 1 MiB chunk: zstd (level 1) or zstd:LEVEL (1-22); a chunk "
        "that does not shrink is stored raw. Empty or off: no compression.",
        flag="--compression",
    )
    scrub_rate: float = setting(
        16.0,
        "Most MiB per second the background scrubber reads, so it never starves requests "
        "(0: no background scrubbing).",
        flag="--scrub-rate",
    )
    scrub_interval: str = setting(
        "30d",
        "How often every stored byte is verified: a scrub pass starts this long after the "
        "previous one started (e.g. 30d, 12h, 90m, 3600s).",
        flag="--scrub-interval",
    )
    auth: str = setting(
        "sigv4", "none: accept every request as the root account (tests only).", flag="--auth"
    )
    max_clock_skew_seconds: int = setting(
        900, "Seconds a signed request's time may differ from the server's."
    )
    body_timeout_seconds: float = setting(
        60.0,
        "Seconds a request body may pause before the upload is abandoned with 408 "
        "RequestTimeoutException (checked lazily: within 1.5 times this).",
    )
    max_json_body_bytes: int = setting(1 << 20, "Largest JSON request body accepted, in bytes.")
    maintenance_interval_seconds: float = setting(
        1.0, "Seconds between maintenance passes (inventories, expiries, sweeps)."
    )
    # Unreferenced blobs (left by a crash between a blob's commit and its metadata's)
    # are deleted once older than this; it must exceed any upload's commit-to-metadata time.
    orphan_blob_min_age_seconds: float = setting(
        86400.0,
        "Unreferenced blobs (left by a crash) are deleted once older than this many "
        "seconds; it must exceed the time any upload takes.",
    )
    credential_cache_seconds: float = setting(
        5.0, "Seconds an access key lookup is cached (a deleted key works that long)."
    )
    access_key_id: str = setting(
        "", "Root access key id (environment or file only).", shown="generated, credentials.json"
    )
    secret_access_key: str = setting(
        "",
        "Root secret access key (environment or file only).",
        secret=True,
        shown="generated, credentials.json",
    )
    account_id: str = setting(
        "", "Root account id, 12 digits (environment or file only).", shown="generated"
    )
    admin_token: str = setting(
        "",
        "Bearer token for /_admin (environment or file only).",
        secret=True,
        shown="generated, DATA_DIR/admin-token",
    )
    log_level: str = setting(
        "info", "Log level: critical, error, warning, info or debug.", flag="--log-level"
    )
    log_format: str = setting(
        "text",
        "Log line format on stderr: text (TIME LEVEL LOGGER MESSAGE) or json (one object "
        "per line); see docs/operations.md, Logs.",
        flag="--log-format",
    )
    access_log: str = setting(
        "on",
        "One log line per API request at info (method, path, operation, account, status, "
        "bytes, duration, request id): on or off.",
        flag="--access-log",
    )
    console: str = setting(
        "on",
        "The web console at /console/ on the API port (docs/console.md): on or off.",
        flag="--console",
    )
    # jobs
    tier_delays: str = setting(
        "",
        "Override a tier's job duration (Expedited, Standard, Bulk, Inventory) as "
        "TIER=DURATION, in seconds or like 5m, 1h30m. Repeatable.",
        flag="--tier-delay",
        shown="the timing profile's",
    )
    job_retention_seconds: float = setting(
        86400.0, "Seconds completed jobs and their output are kept.", flag="--job-retention"
    )
    job_workers: int = setting(
        1,
        "Job runners inside the server process; 0 leaves jobs to `openglacier worker`.",
        flag="--job-workers",
    )
    job_lease_seconds: float = setting(
        60.0,
        "Seconds a runner's claim on a job lasts without renewal; a dead runner's "
        "jobs are retried after it.",
        flag="--job-lease",
    )
    job_poll_seconds: float = setting(
        1.0,
        "Seconds between idle runners' looks for due jobs and notifications.",
        flag="--job-poll",
    )
    inventory_before_first: str = setting(
        "error",
        "Inventory job before a vault's first inventory: error (404) or empty.",
        flag="--inventory-before-first",
    )
    select_output_url: str = setting(
        "",
        "Where select jobs write: s3+http://HOST:PORT (S3-compatible; its keys in "
        "OPENGLACIER_SELECT_OUTPUT_ACCESS_KEY_ID and ..._SECRET_ACCESS_KEY) or file:///DIR.",
        flag="--select-output-url",
        shown="none (select jobs refused)",
    )
    select_output_access_key_id: str = setting(
        "", "Access key id for the select output store (environment or file only)."
    )
    select_output_secret_access_key: str = setting(
        "",
        "Secret key for the select output store (environment or file only).",
        secret=True,
    )
    notify_targets: str = setting(
        "",
        "Deliver a topic's notifications as TOPIC_ARN=TARGET: TARGET is log, an "
        "http(s):// webhook or sns+http(s)://[KEY:SECRET@]HOST:PORT (SNS Publish); "
        "TOPIC_ARN may be *. Repeatable.",
        flag="--notify",
        shown="log",
    )
    notify_max_attempts: int = setting(10, "Delivery attempts per notification.")
    notify_retry_seconds: float = setting(
        2.0, "Seconds before a notification's first retry; doubles per attempt."
    )
    # data retrieval policy and capacity model
    free_tier_bytes_per_month: int = setting(
        10 << 30,
        "FreeTier data retrieval allowance in bytes, prorated per day.",
        flag="--free-tier-bytes-per-month",
        shown="10737418240 (10 GiB)",
    )
    retrieval_spread_hours: float = setting(
        4.0,
        "A Standard retrieval counts as its bytes / this many hours against a BytesPerHour policy.",
        flag="--retrieval-spread-hours",
    )
    expedited_capacity: str = setting(
        "unlimited",
        "strict: Expedited retrievals need provisioned capacity (3 per unit per "
        "5 minutes), else 503 InsufficientCapacityException.",
        flag="--expedited-capacity",
    )

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


CHOICES = {
    "timing": tuple(PROFILES),
    "clock": ("system", "manual"),
    "auth": ("sigv4", "none"),
    "partition": ("aws", "aws-cn", "aws-us-gov"),
    "log_level": ("critical", "error", "warning", "info", "debug"),
    "log_format": ("text", "json"),
    "access_log": ("on", "off"),
    "console": ("on", "off"),
    "inventory_before_first": ("error", "empty"),
    "expedited_capacity": ("unlimited", "strict"),
}

# Settings whose file form may be a TOML table; flags and variables give "k=v,k=v".
TABLES = ("tier_delays", "notify_targets")
# Tables of the config file that are not settings: `[prices]`, the usage
# report's price table (domain/usage_report.py reads it).
NOT_SETTINGS = ("prices",)


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


def env_name(name: str) -> str:
    """The OPENGLACIER_* variable of a Settings field."""
    return ENV_PREFIX + name.upper()


def file_aliases() -> dict[str, str]:
    """TOML keys that name a field by its flag (`job-retention` = `job_retention_seconds`),
    so a file can use the words of the README's table as well as the field names."""
    aliases = {}
    for f in fields(Settings):
        flag = f.metadata["flag"]
        if flag and flag[2:].replace("-", "_") != f.name:
            aliases[flag[2:].replace("-", "_")] = f.name
    return aliases


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML file: top-level keys, or the same keys under [openglacier].

    A key is a field name or its flag's name, with - or _ (docs/settings.md)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    known, aliases = {f.name for f in fields(Settings)}, file_aliases()
    values: dict[str, Any] = {}
    for key, value in data.get("openglacier", data).items():
        if key in NOT_SETTINGS:
            continue
        word = str(key).replace("-", "_")
        name = word if word in known else aliases.get(word)
        if name is None:
            raise ConfigError(
                f"config file {path}: unknown setting {key!r}; the keys are in docs/settings.md"
            )
        if name in values:
            raise ConfigError(f"config file {path}: setting {name!r} is given twice")
        values[name] = value
    return values


def environment_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Every field's OPENGLACIER_* variable that is set (an empty one counts as unset,
    as click treats it)."""
    names = (f.name for f in fields(Settings))
    return {name: environ[env_name(name)] for name in names if environ.get(env_name(name))}


def load_settings(overrides: dict[str, Any], config_file: Path | None = None) -> Settings:
    """Merge file values under explicit overrides (None means "not given")."""
    return load_layers(overrides, {}, config_file)[0]


def load_layers(
    flags: dict[str, Any], environment: Mapping[str, Any], config_file: Path | None = None
) -> tuple[Settings, dict[str, str]]:
    """Settings from default < file < environment < flags (None means "not given"),
    and where each field's value came from: default, file, environment or flag."""
    known = {f.name for f in fields(Settings)}
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    layers: list[tuple[str, Mapping[str, Any]]] = [("environment", environment), ("flag", flags)]
    if config_file is not None:
        layers.insert(0, ("file", read_config_file(config_file)))
    for source, layer in layers:
        for name, value in layer.items():
            if value is not None and name in known:
                merged[name], sources[name] = value, source
    for name in TABLES:
        merged[name] = _flatten_table(merged.get(name, ""))
    settings = replace(Settings(), **{k: _coerce(k, v) for k, v in merged.items()})
    validate(settings)
    return settings, {name: sources.get(name, "default") for name in sorted(known)}


_USERINFO_PASSWORD = re.compile(r"(://[^/@\s:,]*:)[^/@\s,]*@")


def mask_secrets(text: str) -> str:
    """`text` with the password of every URL in it (user:password@host) masked:
    database URLs, sns+http://KEY:SECRET@HOST targets."""
    return _USERINFO_PASSWORD.sub(r"\1***@", text)


def shown_value(settings: Settings, name: str) -> Any:
    """A field's value fit for printing: secrets masked, URL passwords masked."""
    value = getattr(settings, name)
    spec = next(f for f in fields(Settings) if f.name == name)
    if spec.metadata["secret"] and value:
        return "***"
    return mask_secrets(value) if isinstance(value, str) else value


def validate(settings: Settings) -> None:
    """Every setting checked once (config_checks.py), before anything runs."""
    from openglacier.config_checks import check_settings  # noqa: PLC0415 - it imports Settings

    check_settings(settings)
