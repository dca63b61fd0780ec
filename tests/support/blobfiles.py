"""Damaging blob files of a filesystem blob store the way disks do: a flipped
bit, a zeroed range, a truncation, a lost file.

Payload offsets go through `file_offset`, which reads the blob's header with
the format module: where the payload sits in the file is the format's
business (codecs may add frames or a chunk index), never hard-coded here.
"""

from __future__ import annotations

import os
from pathlib import Path

from openglacier.storage.blobs.format import CODEC_CHECKED, CODEC_RAW, HEADER_LEN, unpack_header


def blob_file(root: Path, key: str) -> Path:
    """A committed blob's file (storage/blobs/filesystem.py's layout)."""
    return root / "objects" / key[0:2] / key[2:4] / key


def file_offset(path: Path, payload_offset: int) -> int:
    """The file offset of payload byte `payload_offset`."""
    with path.open("rb") as fh:
        header = unpack_header(fh.read(HEADER_LEN), path.name)
    # Codecs 0 and 1 keep payload byte i at HEADER_LEN + i (codec 1 adds its
    # chunk index after the payload); the others transform the bytes.
    if header.codec not in (CODEC_RAW, CODEC_CHECKED):
        raise AssertionError(f"{path.name}: codec {header.codec} stores no raw payload bytes")
    if not 0 <= payload_offset < header.payload_length:
        raise AssertionError(f"{path.name}: no payload byte {payload_offset}")
    return HEADER_LEN + payload_offset


def flip_bit(path: Path, payload_offset: int, bit: int = 0) -> None:
    at = file_offset(path, payload_offset)
    with path.open("r+b") as fh:
        fh.seek(at)
        byte = fh.read(1)[0]
        fh.seek(at)
        fh.write(bytes([byte ^ (1 << bit)]))


def zero_range(path: Path, payload_offset: int, length: int) -> None:
    with path.open("r+b") as fh:
        fh.seek(file_offset(path, payload_offset))
        fh.write(bytes(length))


def truncate(path: Path, keep_payload_bytes: int) -> None:
    """Cut the file right after `keep_payload_bytes` bytes of payload."""
    os.truncate(path, file_offset(path, keep_payload_bytes))
