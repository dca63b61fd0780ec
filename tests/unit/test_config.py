"""Settings: file < environment/flag precedence, validation naming the setting."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from openglacier.cli.main import main
from openglacier.cli.options import settings_from
from openglacier.clock import parse_duration
from openglacier.config import ConfigError, load_layers, load_settings


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
        ({"orphan_blob_min_age_seconds": "60"}, "orphan_blob_min_age_seconds"),
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


@pytest.mark.parametrize("key", ["job-retention", "job_retention", "job_retention_seconds"])
def test_the_file_takes_a_flag_name_or_a_field_name(tmp_path: Path, key: str) -> None:
    cfg = tmp_path / "og.toml"
    cfg.write_text(f'{key} = 60\ntier-delay = {{ Bulk = "1h" }}\nnotify = "*=log"\n')
    settings = load_settings({}, cfg)
    assert settings.job_retention_seconds == 60
    assert settings.profile.bulk == timedelta(hours=1)
    assert settings.notify_targets == "*=log"


def test_a_setting_given_twice_in_the_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "og.toml"
    cfg.write_text("job-retention = 60\njob_retention_seconds = 70\n")
    with pytest.raises(ConfigError, match="given twice"):
        load_settings({}, cfg)


def test_settings_without_a_flag_have_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENGLACIER_MAX_CLOCK_SKEW_SECONDS", "60")
    monkeypatch.setenv("OPENGLACIER_NOTIFY_MAX_ATTEMPTS", "3")
    settings = settings_from(None)
    assert (settings.max_clock_skew_seconds, settings.notify_max_attempts) == (60, 3)


def test_sources_follow_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "og.toml"
    cfg.write_text("port = 1\nregion = 'eu-west-1'\ntiming = 'fast'\n")
    settings, sources = load_layers({"port": "3"}, {"port": "2", "region": "eu-north-1"}, cfg)
    assert (settings.port, sources["port"]) == (3, "flag")
    assert (settings.region, sources["region"]) == ("eu-north-1", "environment")
    assert (settings.timing, sources["timing"]) == ("fast", "file")
    assert (settings.host, sources["host"]) == ("127.0.0.1", "default")


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"blob_url": "s3://bucket"}, "use file:///DIRECTORY"),
        ({"blob_url": "file://host/dir"}, "use file:///DIRECTORY"),
        ({"metadata_url": "mysql://db/x"}, "use sqlite:///FILE or postgresql://"),
        ({"metadata_url": "sqlite:///:memory:"}, "names no file"),
        ({"metadata_url": "mysql://u:hunter2@db/x"}, "u:\\*\\*\\*@db"),
    ],
)
def test_storage_urls_are_checked_with_the_settings(overrides: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        load_settings(overrides)
    assert "hunter2" not in str(info.value)


def test_config_show_names_sources_and_masks_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "og.toml"
    cfg.write_text(
        "job-retention = 60\n"
        'notify_targets = { "*" = "sns+http://KEY:topsecret@127.0.0.1:9" }\n'
        'select_output_secret_access_key = "s3secret"\n'
    )
    env = {
        "OPENGLACIER_ADMIN_TOKEN": "admintoken",
        "OPENGLACIER_SECRET_ACCESS_KEY": "rootsecret",
        "OPENGLACIER_ACCESS_KEY_ID": "OGAKROOT",
        "OPENGLACIER_PORT": "8081",
    }
    args = ["config", "show", "--config", str(cfg), "--metadata-url", "postgresql://u:pw1@h/d"]
    result = CliRunner().invoke(main, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["settings"]
    assert shown["job_retention_seconds"] == {"value": 60.0, "source": "file"}
    assert shown["port"] == {"value": 8081, "source": "environment"}
    assert shown["metadata_url"] == {"value": "postgresql://u:***@h/d", "source": "flag"}
    assert shown["admin_token"] == {"value": "***", "source": "environment"}
    assert shown["secret_access_key"]["value"] == "***"
    assert shown["access_key_id"]["value"] == "OGAKROOT"  # an id, not a secret
    assert shown["notify_targets"]["value"] == "*=sns+http://KEY:***@127.0.0.1:9"
    assert shown["region"] == {"value": "us-east-1", "source": "default"}
    table = CliRunner().invoke(main, args, env=env, terminal_width=200)
    assert table.exit_code == 0, table.output
    for secret in ("admintoken", "rootsecret", "topsecret", "s3secret", "pw1"):
        assert secret not in result.output
        assert secret not in table.output
    assert "job_retention_seconds" in table.output


def test_a_bad_notify_target_is_refused_with_its_secret_masked() -> None:
    with pytest.raises(ConfigError, match="notify_targets") as info:
        load_settings({"notify_targets": "not-an-arn=sns+http://KEY:topsecret@127.0.0.1:9"})
    assert "topsecret" not in str(info.value)
    assert "KEY:***@127.0.0.1:9" in str(info.value)


def test_orphan_blob_age_reaches_the_collector(tmp_path: Path) -> None:
    from openglacier.server import build_deps

    settings = load_settings(
        {"data_dir": str(tmp_path / "d"), "orphan_blob_min_age_seconds": "7200"}
    )
    deps = build_deps(settings)
    try:
        assert deps.orphan_blob_min_age == timedelta(hours=2)
    finally:
        deps.store.close()
        deps.blobs.close()


def test_a_prices_table_is_not_a_setting(tmp_path: Path) -> None:
    """`[prices]` is the usage report's (docs/operations.md): every command
    reading the file passes over it, top level or under [openglacier]."""
    top = tmp_path / "top.toml"
    top.write_text("port = 9100\n[prices]\nstorage_gb_month = 0.01\n")
    nested = tmp_path / "nested.toml"
    nested.write_text("[openglacier]\nport = 9101\n[openglacier.prices]\nupload_per_1000 = 1\n")
    assert load_settings({}, top).port == 9100
    assert load_settings({}, nested).port == 9101
