"""How the S3 blob store reads (s3_reader.py), on the session's real SeaweedFS:
one ranged GET per read, the layout cache and its ETag check, and a body cut
short by the network being an outage (StorageError), not damage."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from openglacier.errors import IntegrityError, StorageError
from openglacier.ids import new_blob_key
from openglacier.storage.blobs import BlobNotFoundError, put_blob
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.codecs.index import ENTRY_LEN, SALT_LEN, ChunkIndex
from openglacier.storage.blobs.codecs.stream import BlobLayout
from openglacier.storage.blobs.format import CODEC_CHECKED, BlobHeader
from openglacier.storage.blobs.s3 import S3BlobStore
from openglacier.storage.blobs.s3_client import S3Location
from openglacier.storage.blobs.s3_reader import LayoutCache
from support.seaweed import Seaweed
from support.stall import StallingProxy

MIB = 1 << 20
BUCKET = "blob-contract"


class Gets:
    """The Range header of every GetObject a store's (real) client sends."""

    def __init__(self, store: S3BlobStore) -> None:
        self.ranges: list[str] = []
        store.client.meta.events.register("before-send.s3.GetObject", self._seen)

    def _seen(self, request: Any, **_: Any) -> None:
        value = request.headers.get("Range", b"")
        self.ranges.append(value.decode() if isinstance(value, bytes) else str(value))

    def take(self) -> list[str]:
        ranges, self.ranges = self.ranges, []
        return ranges


@pytest.fixture
def prefix(seaweed_store: Seaweed) -> Iterator[str]:
    prefix = f"s3-reads/{uuid.uuid4().hex}"
    yield prefix
    seaweed_store.empty(BUCKET, prefix)


@pytest.fixture
def store(seaweed_store: Seaweed, prefix: str) -> Iterator[S3BlobStore]:
    store = seaweed_store.blob_store(BUCKET, prefix)
    yield store
    store.close()


def _payload(size: int) -> bytes:
    return uuid.uuid4().bytes * (size // 16) + b"x" * (size % 16)


def _spans(ranges: list[str]) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in (r.removeprefix("bytes=").split("-") for r in ranges)]


def test_a_read_is_one_ranged_get_of_the_frames_it_touches(store: S3BlobStore) -> None:
    data = _payload(7 * MIB + 5)
    key = new_blob_key()
    put_blob(store, key, [data])
    gets = Gets(store)
    assert b"".join(store.open(key)) == data
    header, index, whole = _spans(gets.take())
    assert header == (0, 31)
    assert index[0] == whole[1] + 1  # the chunk index, right after the frames
    assert whole == (32, 32 + len(data) - 1)  # codec 1: the payload in place
    # A range: only the frames (1 MiB chunks) it touches, in one GET.
    assert b"".join(store.open(key, 3 * MIB - 1, 3 * MIB + 1)) == data[3 * MIB - 1 : 3 * MIB + 1]
    assert _spans(gets.take()) == [(32 + 2 * MIB, 32 + 4 * MIB - 1)]


def test_an_open_with_a_cached_layout_is_one_get(store: S3BlobStore) -> None:
    data = _payload(3 * MIB)
    key = new_blob_key()
    put_blob(store, key, [data])
    gets = Gets(store)
    assert b"".join(store.open(key, 0, MIB)) == data[:MIB]
    assert len(gets.take()) == 3  # header, index, data
    assert b"".join(store.open(key, MIB)) == data[MIB:]
    assert len(gets.take()) == 1
    store.client.delete_object(Bucket=BUCKET, Key=store.object_key(key))  # not via the store
    for start, end in ((0, None), (3 * MIB, None), (MIB, MIB), (0, 0)):  # empty ranges too
        with pytest.raises(BlobNotFoundError):
            store.open(key, start, end)


def test_a_replaced_object_is_read_anew(store: S3BlobStore, seaweed_store: Seaweed) -> None:
    """The scrubber's repair writes a key again (possibly encoded otherwise): a
    layout cached before must not be used for the new object (If-Match)."""
    key = new_blob_key()
    put_blob(store, key, [_payload(2 * MIB)])
    assert len(b"".join(store.open(key))) == 2 * MIB  # its layout is cached
    name = store.object_key(key)
    store.client.delete_object(Bucket=BUCKET, Key=name)  # behind the store's back
    again = _payload(3 * MIB + 7)
    other = seaweed_store.blob_store(
        BUCKET, store.location.prefix.rstrip("/"), codecs=CodecConfig(chunk_size=256 << 10)
    )
    try:
        put_blob(other, key, [again])
    finally:
        other.close()
    assert b"".join(store.open(key)) == again
    assert b"".join(store.open(key, MIB, MIB + 3)) == again[MIB : MIB + 3]
    store.client.delete_object(Bucket=BUCKET, Key=name)
    with pytest.raises(BlobNotFoundError):
        store.open(key)


def test_a_body_cut_by_the_network_is_an_outage_not_damage(
    seaweed_store: Seaweed, prefix: str
) -> None:
    """A connection dropped mid-body: StorageError (retryable), never
    IntegrityError (which would quarantine the archive); reads succeed again
    once the network does."""
    key = new_blob_key()
    data = _payload(6 * MIB)
    with StallingProxy(("127.0.0.1", seaweed_store.s3_port)) as proxy:
        url = f"s3+http://127.0.0.1:{proxy.port}/{BUCKET}/{prefix}"
        store = S3BlobStore(S3Location.parse(url), seaweed_store.credentials)
        try:
            put_blob(store, key, [data])
            store.stat(key)  # the layout is cached: the open is the data's GET only
            proxy.cut_after(MIB // 2)
            with pytest.raises(StorageError) as caught:
                b"".join(store.open(key))
            assert not isinstance(caught.value, IntegrityError)
            proxy.resume()
            assert b"".join(store.open(key)) == data
        finally:
            store.close()


def _layout(key: str, chunks: int) -> BlobLayout:
    header = BlobHeader(chunks * MIB, CODEC_CHECKED, codec_field=32 + chunks * MIB)
    index = None
    if chunks:
        entries = bytes(ENTRY_LEN * chunks)
        index = ChunkIndex(header, bytes(SALT_LEN), None, entries, chunks)
    return BlobLayout(key, header, index)


def test_the_layout_cache_is_bounded_by_entries_and_by_index_bytes() -> None:
    cache = LayoutCache(max_bytes=10 * ENTRY_LEN, max_entries=3)
    for name in "abcd":
        cache.put(name, f'"{name}"', _layout(name, 0))
    assert cache.get("a") is None  # the least recently used went
    assert cache.get("b") is not None  # used: now the most recent
    cache.put("e", '"e"', _layout("e", 0))
    assert [cache.get(k) is not None for k in "bcde"] == [True, False, True, True]
    cache.put("big", '"big"', _layout("big", 6))
    cache.put("bigger", '"bigger"', _layout("bigger", 6))  # 12 entries > 10: "big" goes
    assert cache.get("big") is None
    assert cache.get("bigger") is not None
    cache.put("huge", '"huge"', _layout("huge", 11))  # alone over the bound: not kept
    assert cache.get("huge") is None
    cache.put("no-etag", "", _layout("no-etag", 0))  # nothing to check it against
    assert cache.get("no-etag") is None
    cache.forget("bigger")
    assert cache.get("bigger") is None


def _pumps() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "og-s3-read"]


def test_a_reader_reads_ahead_and_closing_it_early_stops_its_pump(store: S3BlobStore) -> None:
    """The body is read ahead on a thread of its own (s3_reader.BodySource),
    which ends with the reader: read to the end, or closed part-way."""
    data = _payload(24 * MIB)
    key = new_blob_key()
    put_blob(store, key, [data])
    assert b"".join(store.open(key)) == data
    for pump in _pumps():
        pump.join(10)
    assert _pumps() == []
    reader = store.open(key)
    assert next(reader) == data[:MIB]
    (pump,) = _pumps()
    reader.close()  # 23 MiB unread: the pump stops after at most one more read
    pump.join(10)
    assert not pump.is_alive()
    assert b"".join(store.open(key, 5 * MIB, 6 * MIB + 7)) == data[5 * MIB : 6 * MIB + 7]
