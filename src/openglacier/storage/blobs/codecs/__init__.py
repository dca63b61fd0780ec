"""Blob codecs 1-4 (format.py): per-chunk frames, the chunk index, AES-GCM.

Shared by every blob store: `CodecConfig` says how new blobs are encoded;
`stream.py` turns a writer's payload into frames and an index and a reader's
frames back into checked payload chunks, over whatever I/O the store does.
"""

from __future__ import annotations

from dataclasses import dataclass

from openglacier.keyring import Keyring
from openglacier.storage.blobs.codecs.index import MAX_KEY_ID_LEN
from openglacier.storage.blobs.format import (
    CODEC_AES,
    CODEC_CHECKED,
    CODEC_RAW,
    CODEC_ZSTD,
    CODEC_ZSTD_AES,
    DEFAULT_CHUNK_SIZE,
)

__all__ = ["CodecConfig"]


@dataclass(frozen=True)
class CodecConfig:
    """How a store encodes new blobs; every codec stays readable whatever this says.

    - `compression_level`: zstd level per chunk (config_checks.parse_compression),
      None for no compression.
    - `keyring`: encryption is on iff given; its `current` key encrypts new
      blobs, and any key it holds decrypts old ones (also with encryption off:
      a store without a keyring reading an encrypted blob raises MissingKeyError).
    - `legacy_raw`: write codec 0 (no per-chunk checks), for tests and tools
      that need the old layout; not with compression or encryption.
    - `chunk_size`: payload bytes per chunk; 1 MiB (a tree-hash leaf) except
      in tests that want small chunks.
    """

    compression_level: int | None = None
    keyring: Keyring | None = None
    legacy_raw: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        if self.legacy_raw and (self.compression_level is not None or self.keyring is not None):
            raise ValueError("codec 0 (legacy raw) has no compression or encryption")
        if not 0 < self.chunk_size < 1 << 31:
            raise ValueError(f"chunk size {self.chunk_size} out of range")
        current = self.keyring.current if self.keyring else "k"
        if not (current.isascii() and 0 < len(current) <= MAX_KEY_ID_LEN):
            # Blobs record the id in ASCII (codecs/index.py).
            raise ValueError(f"key id {current!r}: new blobs need an ASCII id of 1-64 characters")

    @property
    def codec(self) -> int:
        """The codec id new blobs get."""
        if self.legacy_raw:
            return CODEC_RAW
        if self.keyring is not None:
            return CODEC_ZSTD_AES if self.compression_level is not None else CODEC_AES
        return CODEC_ZSTD if self.compression_level is not None else CODEC_CHECKED
