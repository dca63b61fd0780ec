"""Encryption keys: the keyring file, key ids, check values and sealed secrets.

A key file is either exactly 32 random bytes (one key, whose id is derived
from it) or a keyring, a small TOML text file::

    # OpenGlacier keyring: new blobs use `current`; every key listed stays readable.
    current = "k3f9a0c1d2e4b"

    [keys]
    k3f9a0c1d2e4b = "<base64 of 32 random bytes>"
    k0123456789ab = "<an older key, still needed to read blobs written with it>"

`openglacier encryption-key create FILE` writes a keyring with one new key
(mode 0600); `--add` adds a key to an existing keyring and makes it current
(rotation; `openglacier blobs rewrite --key-id` then re-encrypts old blobs).

Key material never leaves this module except as AES-256-GCM keys handed to
the blob codecs. The metadata store keeps, per key id, a *check value*
(HMAC-SHA256 of a constant under the key) so a start with the wrong key for
an id fails with one line instead of every read failing later.

Secrets stored in the metadata store (access keys' secret keys) are sealed
with the current key: ``og1:<key id>:<base64(nonce || ciphertext || tag)>``,
with the column's context (e.g. the access key id) as AAD, so a sealed value
copied to another row does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openglacier.errors import StorageError

KEY_BYTES = 32
SEALED_PREFIX = "og1:"
_NONCE_BYTES = 12
_ID_INFO = b"openglacier key id v1"
_CHECK_INFO = b"openglacier key check v1"


class KeyringError(ValueError):
    """The key file cannot be used; the message is one line saying what to do."""


class MissingKeyError(StorageError, KeyringError):
    """Data needs a key id the keyring does not hold.

    A configuration problem, never damage: the start-up check refuses a
    keyring without a recorded id, so this is met at read time only for a
    blob another node wrote under a key added after this process started.
    As a `StorageError` it is what an outage is to every reader: a download
    answers ServiceUnavailableException naming the key id (not an internal
    error), a retrieval job is retried (by a node that has the key, or once
    this one is restarted with it), a scrub pass stops and resumes later, and
    nothing is recorded as damage or quarantined. Still a `KeyringError` (a
    `ValueError`) for the start-up paths that print one line for those."""

    def __init__(self, key_id: str, where: str) -> None:
        super().__init__(
            f"key id {key_id!r} is needed but {where} does not hold it: add that key to "
            "the keyring (--encryption-key-file)"
        )
        self.key_id = key_id
        # The key file's path stays in the log; the id is no secret.
        self.client_message = (
            f"The data is encrypted with key id {key_id!r}, which this server's keyring "
            "does not hold. Please retry."
        )


def derived_key_id(key: bytes) -> str:
    """The id of a bare 32-byte key file: stable, and reveals nothing of the key."""
    return "k" + hmac.new(key, _ID_INFO, hashlib.sha256).hexdigest()[:12]


def _is_key_id(text: str) -> bool:
    return 1 <= len(text) <= 64 and all(c.isalnum() or c in "-_." for c in text)


@dataclass(frozen=True)
class Keyring:
    """Keys by id; `current` encrypts new data. `source` names the file in errors."""

    keys: dict[str, bytes]
    current: str
    source: str = "the key file"

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise MissingKeyError(key_id, self.source) from None

    def check_value(self, key_id: str) -> str:
        """What the metadata store records for `key_id` (hex, 32 chars)."""
        return hmac.new(self.key(key_id), _CHECK_INFO, hashlib.sha256).hexdigest()[:32]

    def seal(self, plaintext: str, context: str) -> str:
        """`plaintext` encrypted under the current key, bound to `context`."""
        nonce = os.urandom(_NONCE_BYTES)
        aead = AESGCM(self.key(self.current))
        body = aead.encrypt(nonce, plaintext.encode(), _aad(self.current, context))
        encoded = base64.b64encode(nonce + body).decode("ascii")
        return f"{SEALED_PREFIX}{self.current}:{encoded}"

    def unseal(self, sealed: str, context: str) -> str:
        """The plaintext of `seal`'s output; KeyringError if it was not sealed
        with a key of this keyring for this context (wrong key, tampered, moved)."""
        if not is_sealed(sealed):
            raise KeyringError("value is not sealed")
        key_id, _, encoded = sealed[len(SEALED_PREFIX) :].partition(":")
        try:
            raw = base64.b64decode(encoded, validate=True)
            aead = AESGCM(self.key(key_id))
            plain = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(key_id, context))
        except (binascii.Error, ValueError, InvalidTag):
            raise KeyringError(
                f"a sealed secret does not open with key id {key_id!r} of {self.source}: "
                "wrong key, or the stored value was altered"
            ) from None
        return plain.decode()


def _aad(key_id: str, context: str) -> bytes:
    return f"openglacier sealed v1\0{key_id}\0{context}".encode()


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)


def load_keyring(path: Path) -> Keyring:
    """The keyring in `path` (either form); KeyringError with one line if unusable."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyringError(
            f"cannot read key file {where}: {exc.strerror or exc}; create one with "
            "'openglacier encryption-key create FILE' (--encryption-key-file)"
        ) from None
    if len(raw) == KEY_BYTES:
        key_id = derived_key_id(raw)
        return Keyring({key_id: raw}, key_id, where)
    return _parse_keyring(raw, where)


def _parse_keyring(raw: bytes, where: str) -> Keyring:
    bad = (
        f"key file {where} is neither 32 raw bytes nor a keyring (TOML with 'current' "
        "and a [keys] table of base64 32-byte keys)"
    )
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise KeyringError(bad) from None
    table, current = doc.get("keys"), doc.get("current")
    if not isinstance(table, dict) or not table or not isinstance(current, str):
        raise KeyringError(bad)
    keys: dict[str, bytes] = {}
    for key_id, encoded in table.items():
        if not _is_key_id(key_id) or not isinstance(encoded, str):
            raise KeyringError(f"key file {where}: key id {key_id!r} is not valid")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise KeyringError(f"key file {where}: key {key_id!r} is not base64 of 32 bytes")
        keys[key_id] = key
    if current not in keys:
        raise KeyringError(f"key file {where}: current key {current!r} is not in [keys]")
    return Keyring(keys, current, where)


def render_keyring(keyring: Keyring) -> str:
    lines = [
        "# OpenGlacier keyring: new blobs use `current`; every key listed stays readable.",
        "# Keep a copy somewhere safe: without it, encrypted archives cannot be read.",
        f'current = "{keyring.current}"',
        "",
        "[keys]",
    ]
    for key_id, key in keyring.keys.items():
        lines.append(f'{key_id} = "{base64.b64encode(key).decode("ascii")}"')
    return "\n".join(lines) + "\n"


def new_key_id() -> str:
    return "k" + secrets.token_hex(6)


def create_key_file(path: Path, *, add: bool = False) -> Keyring:
    """Write a keyring with one new key (mode 0600, never over an existing
    file), or with `add` a new current key in an existing keyring."""
    key_id, key = new_key_id(), os.urandom(KEY_BYTES)
    if add:
        old = load_keyring(path)
        ring = Keyring({**old.keys, key_id: key}, key_id, str(path))
        _write_private(path, render_keyring(ring), replace=True)
        return ring
    ring = Keyring({key_id: key}, key_id, str(path))
    _write_private(path, render_keyring(ring), replace=False)
    return ring


def _write_private(path: Path, text: str, *, replace: bool) -> None:
    """0600 from the first byte; a replacement goes through a temp file and rename."""
    target = path.with_name(path.name + ".tmp") if replace else path
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyringError(
            f"{target} already exists: not overwriting a key file (use --add to add a key)"
        ) from None
    except OSError as exc:
        raise KeyringError(f"cannot create {target}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    if replace:
        os.replace(target, path)
