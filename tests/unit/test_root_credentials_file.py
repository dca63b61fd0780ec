"""The generated root key pair's file (`<data-dir>/credentials.json`): with an
encryption key configured its secret is sealed like the metadata store's, a
plaintext one from before is sealed at the next start, and a sealed one needs
the key file."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from openglacier.auth.credentials import CREDENTIALS_FILE, load_or_create_root
from openglacier.keyring import Keyring, KeyringError

RING = Keyring({"k-a": os.urandom(32), "k-b": os.urandom(32)}, "k-a", "keys.toml")


def stored(data: Path) -> dict[str, str]:
    return dict(json.loads((data / CREDENTIALS_FILE).read_text()))


def test_a_generated_secret_is_stored_sealed_and_read_back(tmp_path: Path) -> None:
    root = load_or_create_root(tmp_path, "", "", "", RING)
    raw = stored(tmp_path)
    assert raw["secret_access_key"].startswith("og1:k-a:")
    assert root.secret_access_key not in (tmp_path / CREDENTIALS_FILE).read_text()
    assert raw["access_key_id"] == root.access_key_id
    assert load_or_create_root(tmp_path, "", "", "", RING) == root
    assert stored(tmp_path) == raw  # already sealed with the current key: not rewritten
    with pytest.raises(KeyringError, match="is sealed: start with --encryption-key-file"):
        load_or_create_root(tmp_path, "", "", "", None)


def test_a_plaintext_file_is_sealed_and_follows_the_current_key(tmp_path: Path) -> None:
    root = load_or_create_root(tmp_path, "", "", "")  # before encryption was on
    assert stored(tmp_path)["secret_access_key"] == root.secret_access_key
    assert load_or_create_root(tmp_path, "", "", "", RING) == root
    assert stored(tmp_path)["secret_access_key"].startswith("og1:k-a:")
    assert load_or_create_root(tmp_path, "", "", "", replace(RING, current="k-b")) == root
    assert stored(tmp_path)["secret_access_key"].startswith("og1:k-b:")


def test_a_sealed_secret_does_not_open_with_another_key(tmp_path: Path) -> None:
    load_or_create_root(tmp_path, "", "", "", RING)
    other = Keyring({"k-a": os.urandom(32)}, "k-a", "other.toml")
    with pytest.raises(KeyringError, match=r"does not open with key id 'k-a' of other\.toml"):
        load_or_create_root(tmp_path, "", "", "", other)
