"""Settings -> the blob stores' codec configuration (storage/factory.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openglacier.config import ConfigError, Settings
from openglacier.keyring import create_key_file, derived_key_id
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.blobs.opening import BlobStoreOpenError
from openglacier.storage.factory import KeyFileError, codec_config, open_blobs


def test_defaults_are_codec_1() -> None:
    assert codec_config(None) == CodecConfig()
    assert codec_config(Settings()).codec == 1


@pytest.mark.parametrize(("text", "level"), [("zstd", 1), ("zstd:19", 19), ("off", None)])
def test_compression(text: str, level: int | None) -> None:
    config = codec_config(Settings(compression=text))
    assert config.compression_level == level
    assert config.codec == (2 if level else 1)


def test_bad_compression_is_a_settings_error() -> None:
    with pytest.raises(ConfigError, match="compression"):
        codec_config(Settings(compression="lz4"))


def test_a_bare_32_byte_key_file(tmp_path: Path) -> None:
    key = os.urandom(32)
    (tmp_path / "key").write_bytes(key)
    config = codec_config(Settings(encryption_key_file=str(tmp_path / "key")))
    assert config.codec == 3
    assert config.keyring is not None
    assert config.keyring.current == derived_key_id(key)


def test_a_keyring_with_compression(tmp_path: Path) -> None:
    ring = create_key_file(tmp_path / "ring")
    ring = create_key_file(tmp_path / "ring", add=True)
    config = codec_config(
        Settings(encryption_key_file=str(tmp_path / "ring"), compression="zstd:2")
    )
    assert config.codec == 4
    assert config.keyring is not None
    assert config.keyring.current == ring.current
    assert config.keyring.keys == ring.keys  # the older key still reads its blobs


@pytest.mark.parametrize("content", [None, b"", b"not a key", b"x" * 31])
def test_an_unusable_key_file_is_one_line(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(KeyFileError) as caught:
        codec_config(Settings(encryption_key_file=str(path)))
    assert isinstance(caught.value, BlobStoreOpenError)  # cli/startup.py: one line, exit 1
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message


def test_open_blobs_hands_the_config_to_the_store(tmp_path: Path) -> None:
    settings = Settings(compression="zstd:4")
    store = open_blobs(f"file://{tmp_path / 'blobs'}", settings)
    assert isinstance(store, FilesystemBlobStore)
    assert store.codecs == CodecConfig(4)
    given = CodecConfig(legacy_raw=True)
    store = open_blobs(f"file://{tmp_path / 'blobs'}", settings, codecs=given)
    assert isinstance(store, FilesystemBlobStore)
    assert store.codecs is given


def test_a_current_key_id_a_blob_cannot_record_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ring"
    path.write_text(f'current = "clé"\n[keys]\n"clé" = "{"A" * 43}="\n')
    with pytest.raises(KeyFileError, match="ASCII") as caught:
        codec_config(Settings(encryption_key_file=str(path)))
    assert "\n" not in str(caught.value)
