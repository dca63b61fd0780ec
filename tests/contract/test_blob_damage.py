"""Damage at rest, on both blob stores and every checked codec (1-4): a read of a
damaged chunk raises IntegrityError before yielding any of its bytes, and the
undamaged chunks of the blob still read. The blob's bytes are changed where
they are stored (the file, the S3 object) as a failing disk or a bad copy
would; which bytes to hit comes from the layout (support/codecs.py).
Truncation loses the index at the blob's end: the whole blob is refused at
open (IntegrityError), and the other blobs are untouched."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from openglacier.errors import IntegrityError
from openglacier.ids import new_blob_key
from openglacier.ports import BlobStore
from openglacier.storage.blobs import put_blob
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.blobs.s3 import S3BlobStore
from support.codecs import CHECKED_CODECS, CODECS, codec_params, file_offset_of, mixed_payload
from support.seaweed import Seaweed

MIB = 1 << 20
BUCKET = "blob-contract"
SIZE = 3 * MIB + 5


@dataclass
class Stored:
    """A blob store and raw access to the bytes it stores."""

    store: BlobStore
    get: Callable[[str], bytes]
    put: Callable[[str, bytes], None]


def _filesystem(tmp_path: Path, codec: str) -> Stored:
    store = FilesystemBlobStore(tmp_path / "blobs", CODECS[codec])

    def path(key: str) -> Path:
        return store.root / "objects" / key[0:2] / key[2:4] / key

    return Stored(store, lambda key: path(key).read_bytes(), lambda k, b: path(k).write_bytes(b))


def _s3(seaweed: Seaweed, codec: str) -> Stored:
    prefix = f"damage/{uuid.uuid4().hex}"
    store: S3BlobStore = seaweed.blob_store(BUCKET, prefix, part_size=5 * MIB, codecs=CODECS[codec])

    def get(key: str) -> bytes:
        return bytes(
            store.client.get_object(Bucket=BUCKET, Key=store.object_key(key))["Body"].read()
        )

    def put(key: str, body: bytes) -> None:
        store.client.put_object(Bucket=BUCKET, Key=store.object_key(key), Body=body)

    return Stored(store, get, put)


@pytest.fixture(params=["filesystem", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=codec_params(CHECKED_CODECS))
def stored(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> Iterator[Stored]:
    if backend == "filesystem":
        result = _filesystem(tmp_path, request.param)
    else:
        seaweed: Seaweed = request.getfixturevalue("seaweed_store")
        result = _s3(seaweed, request.param)
    yield result
    result.store.close()


DATA = mixed_payload(SIZE, 11)


def _blob(stored: Stored) -> str:
    key = new_blob_key()
    put_blob(stored.store, key, [DATA])
    return key


def _read_until_error(store: BlobStore, key: str, start: int = 0) -> tuple[bytes, Exception]:
    got = bytearray()

    def drain() -> None:
        for piece in store.open(key, start):
            got.extend(piece)

    with pytest.raises(IntegrityError) as caught:
        drain()
    return bytes(got), caught.value


def _chunks_read(store: BlobStore, key: str, chunks: list[int]) -> None:
    for chunk in chunks:
        start, end = chunk * MIB, min((chunk + 1) * MIB, SIZE)
        assert b"".join(store.open(key, start, end)) == DATA[start:end], chunk


@pytest.mark.parametrize("chunk", [0, 2])
def test_a_bit_flip_fails_its_chunk_only(stored: Stored, chunk: int) -> None:
    key = _blob(stored)
    blob = bytearray(stored.get(key))
    blob[file_offset_of(bytes(blob), key, chunk * MIB + 1234)] ^= 0x20
    stored.put(key, bytes(blob))
    got, error = _read_until_error(stored.store, key)
    assert got == DATA[: chunk * MIB]  # everything before the damaged chunk, nothing of it
    assert f"blob {key}: leaf {chunk} (chunk {chunk})" in str(error)
    _chunks_read(stored.store, key, [c for c in range(4) if c != chunk])
    _, error = _read_until_error(stored.store, key, chunk * MIB + MIB // 2)  # a range inside it
    assert f"chunk {chunk}" in str(error)


def test_a_zeroed_range_fails_the_chunks_it_covers(stored: Stored) -> None:
    key = _blob(stored)
    blob = bytearray(stored.get(key))
    first = file_offset_of(bytes(blob), key, MIB + 100)
    blob[first : first + 4096] = bytes(4096)
    stored.put(key, bytes(blob))
    got, error = _read_until_error(stored.store, key)
    assert got == DATA[:MIB]
    assert "chunk 1" in str(error)
    _chunks_read(stored.store, key, [0, 2, 3])


@pytest.mark.parametrize("keep", [0.3, 0.9, -1])
def test_a_truncated_blob_is_refused_and_others_still_read(stored: Stored, keep: float) -> None:
    key, other = _blob(stored), _blob(stored)
    blob = stored.get(key)
    stored.put(key, blob[: int(len(blob) * keep) if keep > 0 else len(blob) - 1])
    with pytest.raises(IntegrityError, match=f"blob {key}: .*(truncated|index)"):
        stored.store.open(key)
    with pytest.raises(IntegrityError):
        stored.store.stat(key)
    assert b"".join(stored.store.open(other)) == DATA
