"""Blob codec configurations for tests: one per codec, and test data that
exercises them (compressible and incompressible chunks)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from openglacier.keyring import Keyring
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.codecs.index import index_length, parse_index
from openglacier.storage.blobs.format import CODEC_CHECKED, CODEC_RAW, HEADER_LEN, unpack_header

MIB = 1 << 20

# Two keys: "k-old" stays readable after "k-new" became current (rotation).
KEYRING = Keyring(
    {"k-old": bytes(range(32)), "k-new": bytes(range(100, 132))}, "k-new", "the test keyring"
)
OLD_KEYRING = Keyring({"k-old": bytes(range(32))}, "k-old", "the old test keyring")

CODECS: dict[str, CodecConfig] = {
    "raw": CodecConfig(legacy_raw=True),
    "checked": CodecConfig(),
    "zstd": CodecConfig(compression_level=3),
    "aes": CodecConfig(keyring=KEYRING),
    "zstd-aes": CodecConfig(compression_level=3, keyring=KEYRING),
}
CODEC_IDS = {name: config.codec for name, config in CODECS.items()}
CHECKED_CODECS = [name for name in CODECS if name != "raw"]


def codec_params(names: list[str] | None = None) -> list[object]:
    return [pytest.param(name, id=name) for name in names or CODECS]


def mixed_payload(size: int, seed: int = 0) -> bytes:
    """Alternating 64 KiB runs of random and repetitive bytes, the pattern
    shifting with the MiB: every chunk compresses (some well, some barely),
    and no two chunks are equal."""
    rng = random.Random(seed)
    out = bytearray()
    block = 0
    while len(out) < size:
        if (block + block // 16) % 3 == 0:
            out += rng.randbytes(1 << 16)
        else:
            out += (b"glacier %d " % rng.randrange(1 << 30)) * (1 << 12)
            del out[(block + 1) << 16 :]
        block += 1
    return bytes(out[:size])


def random_payload(size: int, seed: int = 0) -> bytes:
    """Incompressible: zstd stores every chunk raw."""
    return random.Random(seed).randbytes(size)


def codec1_object_size(payload_length: int, chunk_size: int = MIB) -> int:
    """Bytes of a codec-1 blob (the default): header, payload verbatim, index."""
    chunks = -(-payload_length // chunk_size)
    return HEADER_LEN + payload_length + index_length(chunks, None)


def codec1_payload(blob: bytes) -> bytes:
    """The payload of a stored codec-1 blob, checking its layout on the way:
    the payload verbatim after the header, the index after it."""
    header = unpack_header(blob, "under test")
    assert header.codec == CODEC_CHECKED, header
    assert header.codec_field == HEADER_LEN + header.payload_length, header
    assert len(blob) == codec1_object_size(header.payload_length, header.chunk_size)
    return blob[HEADER_LEN : header.codec_field]


def file_offset_of(blob: bytes, key: str, payload_offset: int) -> int:
    """Where a damage test flips a bit to damage payload byte `payload_offset`:
    that byte itself for codecs 0 and 1 (payload verbatim from offset 32), else
    a byte in the middle of the frame holding it."""
    header = unpack_header(blob, key)
    if header.codec in (CODEC_RAW, CODEC_CHECKED):
        return HEADER_LEN + payload_offset
    index = parse_index(blob[header.codec_field :], header, key)
    start, end = index.frame_span(payload_offset // header.chunk_size)
    return (start + end) // 2


def flip_bit(path: Path, offset: int, mask: int = 0x01) -> None:
    with path.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ mask]))
