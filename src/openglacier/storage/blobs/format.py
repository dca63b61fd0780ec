"""On-disk blob format, version 1 (design 4 "BlobStore": header with version and codec).

Every blob file is a fixed 32-byte header followed by the codec's body. All
integers are little-endian.

======  =====  ==============================================================
offset  type   field
======  =====  ==============================================================
0       4s     magic ``b"OGLB"``
4       u8     format version, 1
5       u8     codec id (0 = raw; see below)
6       u16    flags; version 1 defines none, readers reject any set bit
8       u32    chunk size in payload bytes (1 MiB: one tree-hash leaf, spec 3.1)
12      u32    CRC-32 of the 32 header bytes with this field set to zero
16      u64    payload length in bytes (written last, at commit)
24      u64    codec field: 0 for codec 0; codecs 1+ use it for the chunk index
======  =====  ==============================================================

The payload length is only known at the end, so the writer first writes the
header with length 0 and rewrites it in place (``pwrite``) before ``fsync``.
The CRC makes a bit flip anywhere in the header an `IntegrityError` instead of
a misread length; the payload itself is covered by the archive's stored tree
hash, which the auditor and GetJobOutput verify (design 1.2).

Codec 0 (raw) stores the payload verbatim right after the header, so payload
byte ``i`` is file byte ``32 + i``: a ranged read is one seek. The file must be
exactly ``32 + payload_length`` bytes long; any other length is reported as
truncation (or trailing garbage) by `check_file_size`.

Codecs 1+ (planned: zstd, AES-256-GCM, zstd then AES-256-GCM) keep this header
and version byte unchanged. The payload is cut into ``chunk_size`` pieces, each
encoded independently into a frame (compressed, then sealed with a nonce and an
AAD binding blob key, chunk number and header, so frames cannot be reordered or
spliced between blobs). Frames are followed by a chunk index of u64 frame end
offsets, whose file offset goes in the codec field at offset 24. A read of
payload bytes ``[start, end)`` then looks up chunks ``start // chunk_size``
through ``(end - 1) // chunk_size`` in the index and decodes only those frames.
A version-1 reader that predates a codec rejects it by its id (`IntegrityError`,
"unsupported codec") rather than misreading it, and codec-0 files mean the
same to every version-1 reader, so no version bump is needed to add codecs.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from openglacier.errors import IntegrityError

MAGIC = b"OGLB"
VERSION = 1
CODEC_RAW = 0
SUPPORTED_CODECS = frozenset({CODEC_RAW})
DEFAULT_CHUNK_SIZE = 1 << 20

_STRUCT = struct.Struct("<4sBBHIIQQ")
HEADER_LEN = _STRUCT.size
_CRC_SLICE = slice(12, 16)

assert HEADER_LEN == 32  # the documented layout depends on it


@dataclass(frozen=True, slots=True)
class BlobHeader:
    payload_length: int
    codec: int = CODEC_RAW
    flags: int = 0
    chunk_size: int = DEFAULT_CHUNK_SIZE
    codec_field: int = 0

    def pack(self) -> bytes:
        raw = bytearray(
            _STRUCT.pack(
                MAGIC,
                VERSION,
                self.codec,
                self.flags,
                self.chunk_size,
                0,
                self.payload_length,
                self.codec_field,
            )
        )
        raw[_CRC_SLICE] = struct.pack("<I", zlib.crc32(raw))
        return bytes(raw)

    @property
    def file_size(self) -> int:
        """Expected file length; codec 0 only (codecs 1+ add their frames and index)."""
        return HEADER_LEN + self.payload_length


def unpack_header(raw: bytes, where: str) -> BlobHeader:
    """Parse and check a header; `where` names the blob in error messages."""
    if len(raw) < HEADER_LEN:
        raise IntegrityError(f"blob {where}: truncated header ({len(raw)} bytes)")
    magic, version, codec, flags, chunk_size, crc, length, codec_field = _STRUCT.unpack_from(raw)
    if magic != MAGIC:
        raise IntegrityError(f"blob {where}: bad magic {magic!r}")
    zeroed = bytearray(raw[:HEADER_LEN])
    zeroed[_CRC_SLICE] = bytes(4)
    if zlib.crc32(zeroed) != crc:
        raise IntegrityError(f"blob {where}: header checksum mismatch")
    if version != VERSION:
        raise IntegrityError(f"blob {where}: unsupported format version {version}")
    if codec not in SUPPORTED_CODECS:
        raise IntegrityError(f"blob {where}: unsupported codec {codec}")
    if flags:
        raise IntegrityError(f"blob {where}: unsupported flags {flags:#06x}")
    if chunk_size <= 0:
        raise IntegrityError(f"blob {where}: invalid chunk size {chunk_size}")
    return BlobHeader(length, codec, flags, chunk_size, codec_field)


def check_file_size(header: BlobHeader, file_size: int, where: str) -> None:
    if file_size != header.file_size:
        raise IntegrityError(
            f"blob {where}: file is {file_size} bytes, header says {header.file_size}"
            " (truncated or trailing garbage)"
        )
