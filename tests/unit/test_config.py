"""Settings: file < environment/flag precedence, validation naming the setting."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from openglacier.cli.main import main
from openglacier.cli.options import settings_from
from openglacier.clock import parse_duration
from openglacier.config import ConfigError, load_settings


def test_file_values_are_overridden_by_explicit_ones(tmp_path: Path) -> None:
    cfg = tmp_path / "og.toml"
    cfg.write_text('port = 8080\ntiming = "aws"\nregion = "eu-west-1"\n')
    settings = load_settings({"port": "9090", "region": None}, cfg)
    assert settings.port == 9090  # explicit wins
    assert settings.timing == "aws"  # from the file
    assert settings.region == "eu-west-1"  # None means "not given"


def test_section_form_is_accepted(tmp_path: Path) -> None:
    cfg = tmp_path / "og.toml"
    cfg.write_text('[openglacier]\ndata-dir = "/srv/og"\n')
    assert str(load_settings({}, cfg).data_dir) == "/srv/og"


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"timing": "slow"}, "timing"),
        ({"port": "x"}, "port"),
        ({"account_id": "12"}, "account_id"),
        ({"access_key_id": "AK"}, "access_key_id"),
        ({"processes": "0"}, "processes"),
        ({"processes": "2", "clock": "manual"}, "processes = 1"),
    ],
)
def test_invalid_values_name_the_setting(overrides: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(overrides)


def test_unknown_file_setting_is_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "og.toml"
    cfg.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="colour"):
        load_settings({}, cfg)


def test_environment_variables_reach_every_serve_option(monkeypatch: pytest.MonkeyPatch) -> None:
    from openglacier.cli.main import serve

    names = {p.name for p in serve.params}
    for param in serve.params:
        assert (
            param.envvar == f"OPENGLACIER_{param.name.upper().replace('CONFIG_FILE', 'CONFIG')}"
        ), param.name
    assert {"host", "port", "data_dir", "region", "timing", "config_file"} <= names


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENGLACIER_ACCESS_KEY_ID", "OGAKENV")
    monkeypatch.setenv("OPENGLACIER_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("OPENGLACIER_ACCOUNT_ID", "210987654321")
    settings = settings_from(None)
    assert (settings.access_key_id, settings.account_id) == ("OGAKENV", "210987654321")


def test_cli_reports_bad_config_as_usage_error(tmp_path: Path) -> None:

    cfg = tmp_path / "og.toml"
    cfg.write_text('timing = "never"\n')
    result = CliRunner().invoke(
        main, ["keys", "list", "--data-dir", str(tmp_path), "--config", str(cfg)]
    )
    assert result.exit_code == 2
    assert "timing" in result.output
    result = CliRunner().invoke(
        main, ["serve", "--data-dir", str(tmp_path)], env={"OPENGLACIER_TIMING": "never"}
    )
    assert result.exit_code == 2
    assert "never" in result.output


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("0.5", 0.5), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("45s", 45)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5x", "1h 30m", "-5", "m5", "nan", "1.5.2h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_tier_delays_override_the_profile(tmp_path: Path) -> None:
    settings = load_settings({"timing": "aws", "tier_delays": "bulk=30m, Inventory=10"})
    assert settings.profile.bulk == timedelta(minutes=30)
    assert settings.profile.inventory_job == timedelta(seconds=10)
    assert settings.profile.standard == timedelta(hours=4)  # not overridden
    cfg = tmp_path / "og.toml"
    cfg.write_text(
        'tier_delays = { Expedited = "5s", Standard = "1h" }\njob_retention_seconds = 60\n'
    )
    from_file = load_settings({}, cfg)
    assert from_file.profile.expedited == timedelta(seconds=5)
    assert from_file.profile.job_delay("Standard") == timedelta(hours=1)
    assert from_file.profile.job_retention == timedelta(seconds=60)
    with pytest.raises(ConfigError, match="tier_delays"):
        load_settings({"tier_delays": "Glacial=1h"})
    with pytest.raises(ConfigError, match="notify_targets"):
        load_settings({"notify_targets": "not-an-arn=log"})


def test_repeatable_flags_are_joined() -> None:
    settings = settings_from(None, tier_delays=("Bulk=1h", "Standard=5m"), notify_targets=())
    assert settings.profile.bulk == timedelta(hours=1)
    assert settings.profile.standard == timedelta(minutes=5)
    assert settings.notify_targets == ""
    # The variable form separates items with spaces (click splits repeatable options so).
    spaced = load_settings({"tier_delays": "Bulk=2h Expedited=1s"}).profile
    assert (spaced.bulk, spaced.expedited) == (timedelta(hours=2), timedelta(seconds=1))
