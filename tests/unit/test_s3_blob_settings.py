"""The s3 blob store's settings: URL checks before anything starts, keys from
the environment or the TOML file, the secret never shown, and what reaches the
store (factory.blob_credentials)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from openglacier.cli.main import main
from openglacier.config import ConfigError, load_layers, load_settings
from openglacier.storage.blobs.s3_client import S3Credentials
from openglacier.storage.factory import blob_credentials


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("s3+http://127.0.0.1:8333/", "not a valid S3 bucket name"),
        ("s3+http://127.0.0.1:8333/Under_Score", "not a valid S3 bucket name"),
        ("s3+http://KEY:hunter2@127.0.0.1:8333/bucket", "OPENGLACIER_BLOB_ACCESS_KEY_ID"),
        ("s3+ftp://127.0.0.1/bucket", "use file:///DIRECTORY or s3\\+http://"),
    ],
)
def test_bad_s3_blob_urls_are_refused_with_the_settings(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        load_settings({"blob_url": url})
    assert "hunter2" not in str(info.value)


def test_good_s3_blob_urls_are_accepted() -> None:
    for url in ("s3+http://127.0.0.1:8333/bucket", "s3+https://s3.example.com/b.k-t/a/prefix"):
        assert load_settings({"blob_url": url}).blob_url == url


def test_blob_keys_come_in_pairs() -> None:
    with pytest.raises(ConfigError, match="blob_access_key_id and blob_secret_access_key"):
        load_settings({"blob_access_key_id": "KEY"})


def test_blob_settings_from_environment_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "og.toml"
    cfg.write_text('blob-region = "eu-west-3"\nblob_secret_access_key = "filesecret"\n')
    env = {"blob_access_key_id": "ENVKEY"}
    settings, sources = load_layers({}, env, cfg)
    assert (settings.blob_access_key_id, sources["blob_access_key_id"]) == ("ENVKEY", "environment")
    assert (settings.blob_secret_access_key, sources["blob_secret_access_key"]) == (
        "filesecret",
        "file",
    )
    assert blob_credentials(settings, {}) == S3Credentials("ENVKEY", "filesecret", "eu-west-3")


def test_credentials_fall_back_to_the_aws_chain_and_region() -> None:
    settings = load_settings({})
    # Empty keys leave boto3 its chain (AWS_ACCESS_KEY_ID...); the region falls back too.
    assert blob_credentials(settings, {"AWS_REGION": "ap-south-1"}) == S3Credentials(
        "", "", "ap-south-1"
    )
    assert blob_credentials(settings, {"AWS_DEFAULT_REGION": "eu-north-1"}).region == "eu-north-1"
    assert blob_credentials(None, {}) == S3Credentials()


def test_config_show_masks_the_blob_secret() -> None:
    env = {
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": "BLOBKEY",
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": "blobsecret",
        "OPENGLACIER_BLOB_URL": "s3+http://127.0.0.1:8333/archive",
    }
    result = CliRunner().invoke(main, ["config", "show", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert "blobsecret" not in result.output
    shown = json.loads(result.output)
    assert "BLOBKEY" in json.dumps(shown)
