"""Bit rot in a stored blob of any blob store, as disks and buckets suffer it:
a flipped bit, a zeroed range, a truncation.

A `StoredBlob` is one blob's stored object, read and written whole: a file of
a filesystem store, or an S3 object (through the test's own S3 client, behind
OpenGlacier's back). Payload offsets are mapped to stored offsets with the
blob's own header and chunk index (support/codecs.file_offset_of): the byte
itself for codecs 0 and 1, a byte in the middle of the frame holding it for
the transforming codecs, so every fault lands in the MiB the test names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from support.codecs import file_offset_of
from support.seaweed import Seaweed


class StoredBlob(Protocol):
    key: str

    def read(self) -> bytes: ...

    def write(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class FileBlob:
    key: str
    path: Path

    def read(self) -> bytes:
        return self.path.read_bytes()

    def write(self, data: bytes) -> None:
        self.path.write_bytes(data)


@dataclass(frozen=True)
class S3Blob:
    key: str
    seaweed: Seaweed
    bucket: str
    name: str  # the object's name in the bucket (prefix + key)

    def read(self) -> bytes:
        client = self.seaweed.client()
        try:
            return bytes(client.get_object(Bucket=self.bucket, Key=self.name)["Body"].read())
        finally:
            client.close()

    def write(self, data: bytes) -> None:
        client = self.seaweed.client()
        try:
            client.put_object(Bucket=self.bucket, Key=self.name, Body=data)
        finally:
            client.close()


def flip_bit(blob: StoredBlob, payload_offset: int, bit: int = 0) -> None:
    data = bytearray(blob.read())
    data[file_offset_of(bytes(data), blob.key, payload_offset)] ^= 1 << bit
    blob.write(bytes(data))


def zero_range(blob: StoredBlob, payload_offset: int, length: int) -> None:
    data = bytearray(blob.read())
    at = file_offset_of(bytes(data), blob.key, payload_offset)
    data[at : at + length] = bytes(length)
    blob.write(bytes(data))


def truncate(blob: StoredBlob, keep_payload_bytes: int) -> None:
    """Cut the stored object at payload byte `keep_payload_bytes` (in the
    middle of its frame for the transforming codecs): the chunk index after
    the payload goes too."""
    data = blob.read()
    blob.write(data[: file_offset_of(data, blob.key, keep_payload_bytes)])
