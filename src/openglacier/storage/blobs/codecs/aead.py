"""AES-256-GCM per chunk (codecs 3 and 4, format.py): the crypto construction.

- Data key, one per blob: ``HKDF-SHA256(ikm = master key, salt = 16 random
  bytes, info = b"openglacier blob v1" || blob key ASCII)``, 32 bytes. The
  master key is the keyring's key whose id the index records (index.py), so a
  rotated-out key still reads the blobs written with it; the salt is drawn
  fresh for every blob written (every `create()`, also a retry of the same
  key), so no two blobs share a data key, and with it no (key, nonce) pair is
  ever used twice although nonces are chunk numbers.
- Nonce of chunk ``i``: ``i`` as a 96-bit little-endian integer.
- AAD of chunk ``i`` (length-prefixed fields, no ambiguity)::

      header bytes 0-11 (magic, version, codec, flags, chunk size)
      u8 len(key id)   || key id
      u8 len(blob key) || blob key
      u64 i || u8 last (1 for chunk N-1, else 0) || u8 stored-raw flag

- Frame: ``ciphertext || 16-byte tag`` (cryptography's AESGCM layout).

Why this is enough: a frame moved to another position fails (nonce and AAD
carry its number); spliced from another blob it fails (other data key, other
blob key in the AAD); a blob cut at a chunk boundary fails when its new last
chunk is read (encrypted with last = 0); a flipped stored-raw flag or header
field fails (both in the AAD); a swapped key id or salt derives another key
and fails. Nothing of the plaintext is stored outside the ciphertext: the
index carries no checksum for these codecs. What is not hidden: the payload
length, and with codec 4 each chunk's compressed size (as with any compression
before encryption), which says how compressible the chunk was.

A failed tag is an IntegrityError naming the blob and the chunk; a key id the
keyring lacks is a MissingKeyError (keyring.py) naming the id.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openglacier.errors import IntegrityError
from openglacier.keyring import Keyring, MissingKeyError
from openglacier.storage.blobs.codecs.index import SALT_LEN

HKDF_INFO = b"openglacier blob v1"
_CHUNK = struct.Struct("<QBB")


def new_salt() -> bytes:
    return os.urandom(SALT_LEN)


def data_key(master: bytes, salt: bytes, blob_key: str) -> bytes:
    hkdf = HKDF(SHA256(), 32, salt, HKDF_INFO + blob_key.encode("ascii"))
    return hkdf.derive(master)


def master_key(keyring: Keyring | None, key_id: str) -> bytes:
    """The master key of `key_id`; MissingKeyError if nothing configured holds it."""
    if keyring is None:
        raise MissingKeyError(key_id, "the configuration (no --encryption-key-file)")
    return keyring.key(key_id)


class ChunkCipher:
    """Seals and opens the frames of one blob."""

    def __init__(
        self, master: bytes, salt: bytes, blob_key: str, key_id: str, invariant: bytes
    ) -> None:
        self._aead = AESGCM(data_key(master, salt, blob_key))
        self._key = blob_key
        ident, blob = key_id.encode("ascii"), blob_key.encode("ascii")
        self._prefix = invariant + bytes([len(ident)]) + ident + bytes([len(blob)]) + blob

    def _aad(self, number: int, last: bool, raw: bool) -> bytes:
        return self._prefix + _CHUNK.pack(number, last, raw)

    def seal(
        self, number: int, data: bytes | bytearray | memoryview, last: bool, raw: bool
    ) -> bytes:
        return self._aead.encrypt(number.to_bytes(12, "little"), data, self._aad(number, last, raw))

    def open(self, number: int, frame: bytes | memoryview, last: bool, raw: bool) -> bytes:
        try:
            return self._aead.decrypt(
                number.to_bytes(12, "little"), frame, self._aad(number, last, raw)
            )
        except InvalidTag:
            raise IntegrityError(
                f"blob {self._key}: leaf {number} (chunk {number}) fails its AES-GCM tag"
                " (damaged, moved, truncated, or a wrong key)"
            ) from None
