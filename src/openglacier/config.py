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

from openglacier.clock import PROFILES, TimingProfile

ENV_PREFIX = "OPENGLACIER_"
DEFAULT_PORT = 7979


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
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
    credential_cache_seconds: float = 5.0
    access_key_id: str = ""
    secret_access_key: str = ""
    account_id: str = ""
    admin_token: str = ""
    log_level: str = "info"

    @property
    def profile(self) -> TimingProfile:
        return PROFILES[self.timing]

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
}


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
    if bool(settings.access_key_id) != bool(settings.secret_access_key):
        raise ConfigError("set both access_key_id and secret_access_key, or neither")
