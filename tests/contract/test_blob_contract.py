"""BlobStore contract (design 4, 6): one suite, run over every adapter and codec.

To add an adapter, append its name to `_BACKENDS` and a factory to `_FACTORIES`.
The S3 adapter runs on the session's SeaweedFS (tests/support/seaweed.py; it
skips without `weed`, except in CI), each test under its own key prefix, with
5 MiB parts so the multi-MiB cases go through multipart uploads.

Every test runs once per adapter and codec configuration (support/codecs.py:
codec 0 "raw" as legacy blobs have it, 1 "checked" the default, 2 "zstd",
3 "aes", 4 "zstd-aes"); the payloads mix compressible and incompressible
runs so zstd both shrinks chunks and stores some raw.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openglacier.ids import new_blob_key
from openglacier.keyring import MissingKeyError
from openglacier.ports import BlobInfo, BlobStore
from openglacier.storage.blobs import (
    BlobAlreadyExistsError,
    BlobNotFoundError,
    BlobWriterClosedError,
    put_blob,
)
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from support.codecs import CODECS, OLD_KEYRING, codec_params, mixed_payload
from support.seaweed import Seaweed

MIB = 1 << 20

# (request, tmp_path, codec config, location): a store over `location` (a
# directory name, an S3 prefix) with that config; the same location again
# is the same store, as another process would open it.
StoreFactory = Callable[[pytest.FixtureRequest, Path, CodecConfig, str], BlobStore]


def _filesystem(
    request: pytest.FixtureRequest, tmp_path: Path, codecs: CodecConfig, location: str
) -> BlobStore:
    return FilesystemBlobStore(tmp_path / location, codecs)


def _seaweed_s3(
    request: pytest.FixtureRequest, tmp_path: Path, codecs: CodecConfig, location: str
) -> BlobStore:
    seaweed: Seaweed = request.getfixturevalue("seaweed_store")
    prefix = f"contract/{location}"
    request.addfinalizer(lambda: seaweed.empty(CONTRACT_BUCKET, prefix))
    return seaweed.blob_store(CONTRACT_BUCKET, prefix, part_size=5 * MIB, codecs=codecs)


_FACTORIES: dict[str, StoreFactory] = {"filesystem": _filesystem, "s3": _seaweed_s3}
_BACKENDS = ["filesystem", "s3"]
CONTRACT_BUCKET = "blob-contract"


@pytest.fixture(params=_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=codec_params())
def codec(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> Iterator[Callable[[CodecConfig], BlobStore]]:
    """Opens the test's store (one location) with a given codec config."""
    opened: list[BlobStore] = []
    location = uuid.uuid4().hex

    def opener(codecs: CodecConfig) -> BlobStore:
        opened.append(_FACTORIES[backend](request, tmp_path, codecs, location))
        return opened[-1]

    yield opener
    for blob_store in opened:
        blob_store.close()


@pytest.fixture
def store(open_store: Callable[[CodecConfig], BlobStore], codec: str) -> BlobStore:
    return open_store(CODECS[codec])


def _info(store: BlobStore, key: str, size: int) -> BlobInfo:
    """What stat() and commit() say of a blob `store` wrote."""
    config: CodecConfig = getattr(store, "codecs")  # noqa: B009 - not in the port
    key_id = config.keyring.current if config.keyring else None
    return BlobInfo(key, size, config.codec, key_id)


def _payload(size: int, seed: int = 0) -> bytes:
    return mixed_payload(size, seed)


def _read(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.open(key, start, end))


def _chunked(data: bytes, size: int) -> Iterator[memoryview]:
    view = memoryview(data)
    for i in range(0, len(data), size):
        yield view[i : i + size]


# --- round trips ----------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 5 * MIB + 12345])
def test_round_trip(store: BlobStore, size: int) -> None:
    data = _payload(size, size)
    key = new_blob_key()
    info = put_blob(store, key, [data])
    assert info == _info(store, key, size)
    assert store.stat(key) == _info(store, key, size)
    assert _read(store, key) == data


@pytest.mark.parametrize("write_size", [1000, 64 * 1024, 256 * 1024 - 1, 256 * 1024, 3 * MIB])
def test_round_trip_whatever_the_write_sizes(store: BlobStore, write_size: int) -> None:
    data = _payload(2 * MIB + 777, write_size)
    key = new_blob_key()
    assert put_blob(store, key, _chunked(data, write_size)).size == len(data)
    assert _read(store, key) == data


def test_round_trip_mixed_write_sizes(store: BlobStore) -> None:
    data = _payload(6 * MIB, 3)
    sizes = random.Random(3).choices([1, 7, 4096, 300_000, MIB, 2 * MIB + 1], k=200)
    key = new_blob_key()
    writer = store.create(key)
    pos = 0
    for size in sizes:
        writer.write(data[pos : pos + size])
        pos = min(pos + size, len(data))
    assert writer.commit() == _info(store, key, pos)
    assert _read(store, key) == data[:pos]


def test_write_accepts_bytes_bytearray_and_memoryview(store: BlobStore) -> None:
    key = new_blob_key()
    writer = store.create(key)
    writer.write(b"ab")
    writer.write(bytearray(b"cd"))
    writer.write(memoryview(b"xxefxx")[2:4])
    assert writer.commit() == _info(store, key, 6)
    assert _read(store, key) == b"abcdef"


def test_read_chunks_are_at_most_one_mib(store: BlobStore) -> None:
    data = _payload(3 * MIB + 10)
    key = new_blob_key()
    put_blob(store, key, [data])
    chunks = list(store.open(key))
    assert all(0 < len(c) <= MIB for c in chunks)
    assert b"".join(chunks) == data


# --- ranged reads ---------------------------------------------------------

_RANGED_SIZE = 3 * MIB + 4321


@pytest.fixture
def ranged_blob(store: BlobStore) -> tuple[BlobStore, str, bytes]:
    data = _payload(_RANGED_SIZE, 7)
    key = new_blob_key()
    put_blob(store, key, [data])
    return store, key, data


_EDGES = [0, 1, MIB - 1, MIB, MIB + 1, 2 * MIB, 3 * MIB, _RANGED_SIZE - 1, _RANGED_SIZE]


@pytest.mark.parametrize("start", _EDGES)
def test_ranged_reads_at_edges(ranged_blob: tuple[BlobStore, str, bytes], start: int) -> None:
    store, key, data = ranged_blob
    for end in [e for e in _EDGES if e >= start]:
        assert _read(store, key, start, end) == data[start:end], (start, end)
    assert _read(store, key, start) == data[start:]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(0, _RANGED_SIZE), st.integers(0, _RANGED_SIZE + MIB))
def test_ranged_reads_random(
    ranged_blob: tuple[BlobStore, str, bytes], start: int, length: int
) -> None:
    store, key, data = ranged_blob
    end = start + length
    assert _read(store, key, start, end) == data[start:end]  # end past the size is clamped


def test_range_validation(ranged_blob: tuple[BlobStore, str, bytes]) -> None:
    store, key, _ = ranged_blob
    assert _read(store, key, _RANGED_SIZE) == b""
    assert _read(store, key, 10, 10) == b""
    with pytest.raises(ValueError, match="start"):
        store.open(key, _RANGED_SIZE + 1)
    with pytest.raises(ValueError, match="range"):
        store.open(key, -1)
    with pytest.raises(ValueError, match="range"):
        store.open(key, 10, 9)


# --- visibility and lifecycle ---------------------------------------------


def test_uncommitted_blob_is_invisible(store: BlobStore) -> None:
    key = new_blob_key()
    writer = store.create(key)
    writer.write(_payload(MIB + 3))
    assert store.stat(key) is None
    with pytest.raises(BlobNotFoundError):
        store.open(key)
    assert key not in set(store.keys())
    writer.commit()
    assert store.stat(key) == _info(store, key, MIB + 3)


def test_abort_leaves_nothing(store: BlobStore) -> None:
    key = new_blob_key()
    writer = store.create(key)
    writer.write(b"x" * 1000)
    writer.abort()
    writer.abort()  # idempotent
    assert store.stat(key) is None
    assert list(store.keys()) == []
    with pytest.raises(BlobNotFoundError):
        store.open(key)


def test_writer_unusable_after_abort(store: BlobStore) -> None:
    writer = store.create(new_blob_key())
    writer.abort()
    with pytest.raises(BlobWriterClosedError):
        writer.write(b"x")
    with pytest.raises(BlobWriterClosedError):
        writer.commit()


def test_writer_unusable_after_commit(store: BlobStore) -> None:
    key = new_blob_key()
    writer = store.create(key)
    writer.write(b"data")
    writer.commit()
    with pytest.raises(BlobWriterClosedError):
        writer.write(b"x")
    with pytest.raises(BlobWriterClosedError):
        writer.commit()
    writer.abort()  # a no-op after commit: the blob stays
    assert _read(store, key) == b"data"


def test_missing_blob(store: BlobStore) -> None:
    key = new_blob_key()
    assert store.stat(key) is None
    with pytest.raises(BlobNotFoundError):
        store.open(key)
    with pytest.raises(FileNotFoundError):  # BlobNotFoundError is one
        store.open(key, 0, 10)


def test_delete_is_idempotent(store: BlobStore) -> None:
    key, other = new_blob_key(), new_blob_key()
    put_blob(store, key, [b"gone"])
    put_blob(store, other, [b"stays"])
    store.delete(key)
    store.delete(key)
    store.delete(new_blob_key())  # never existed
    assert store.stat(key) is None
    with pytest.raises(BlobNotFoundError):
        store.open(key)
    assert _read(store, other) == b"stays"


def test_keys_lists_exactly_the_committed_keys(store: BlobStore) -> None:
    committed = {new_blob_key() for _ in range(20)}
    for key in committed:
        put_blob(store, key, [key.encode()])
    pending = store.create(new_blob_key())
    pending.write(b"not yet")
    aborted = store.create(new_blob_key())
    aborted.abort()
    deleted = sorted(committed)[:3]
    for key in deleted:
        store.delete(key)
    listed = list(store.keys())
    assert len(listed) == len(set(listed))
    assert set(listed) == committed - set(deleted)
    pending.abort()


def test_same_key_twice_is_rejected(store: BlobStore) -> None:
    key = new_blob_key()
    first, second = store.create(key), store.create(key)
    first.write(b"first")
    second.write(b"second")
    first.commit()
    with pytest.raises(BlobAlreadyExistsError):
        second.commit()
    with pytest.raises(FileExistsError):  # BlobAlreadyExistsError is one
        put_blob(store, key, [b"third"])
    assert _read(store, key) == b"first"
    assert store.stat(key) == _info(store, key, 5)
    assert list(store.keys()) == [key]


def test_put_blob_aborts_on_failure(store: BlobStore) -> None:
    key = new_blob_key()

    def chunks() -> Iterator[bytes]:
        yield b"a" * MIB
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="went away"):
        put_blob(store, key, chunks())
    assert store.stat(key) is None
    assert list(store.keys()) == []


def test_reader_survives_delete(store: BlobStore) -> None:
    """Deletion-queue safety: a download in flight reads to the end."""
    data = _payload(2 * MIB + 5)
    key = new_blob_key()
    put_blob(store, key, [data])
    reader = store.open(key)
    first = next(reader)
    store.delete(key)
    assert first + b"".join(reader) == data


@pytest.mark.parametrize("key", ["", "../../etc/passwd", "ABCDEF0123456789", "0" * 15, "0" * 129])
def test_invalid_keys_rejected_everywhere(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        store.create(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.open(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.stat(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.delete(key)


def test_many_blobs_share_fan_out(store: BlobStore) -> None:
    keys = [f"{i:02x}" * 16 for i in range(4)] + ["ab" * 8, "ab" * 64]
    for key in keys:
        put_blob(store, key, [os.urandom(17)])
    assert set(store.keys()) == set(keys)
    assert all(store.stat(k) == _info(store, k, 17) for k in keys)


# --- scan: the paged listing the orphan collector walks (issue 12) ----------------


def test_scan_pages_through_committed_keys_in_order(store: BlobStore) -> None:
    keys = sorted({new_blob_key() for _ in range(25)} | {"ab" * 8, "ab" * 64, "abab" + "0" * 12})
    for key in keys:
        put_blob(store, key, [b"x"])
    pending = store.create(new_blob_key())
    pending.write(b"not yet")
    pages: list[list[str]] = []
    after: str | None = None
    while page := store.scan(after, 4):
        assert len(page) <= 4
        pages.append([entry.key for entry in page])
        after = page[-1].key
    pending.abort()
    assert [key for page in pages for key in page] == keys
    assert all(len(page) == 4 for page in pages[:-1])
    assert store.scan(keys[-1], 4) == []
    assert [e.key for e in store.scan(keys[10], 1000)] == keys[11:]


def test_scan_reports_when_each_blob_was_written(store: BlobStore) -> None:
    before = datetime.now(UTC)
    key = new_blob_key()
    put_blob(store, key, [b"x"])
    after = datetime.now(UTC)
    (entry,) = store.scan(None, 10)
    assert entry.key == key
    # Filesystem timestamps come from a coarse clock: allow its tick.
    assert before - timedelta(seconds=1) <= entry.modified_at <= after + timedelta(seconds=1)
    assert entry.modified_at.utcoffset() == timedelta(0)


def test_scan_leaves_out_deleted_and_aborted_blobs(store: BlobStore) -> None:
    kept, deleted = new_blob_key(), new_blob_key()
    put_blob(store, kept, [b"kept"])
    put_blob(store, deleted, [b"deleted"])
    store.delete(deleted)
    store.create(new_blob_key()).abort()
    assert [e.key for e in store.scan(None, 10)] == [kept]


def test_scan_rejects_bad_arguments(store: BlobStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.scan(None, 0)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.scan("../x", 10)


# --- codecs: what every store does with them ------------------------------------


def test_reader_says_whether_it_checked(store: BlobStore, codec: str) -> None:
    key = new_blob_key()
    put_blob(store, key, [_payload(MIB + 9)])
    for start, end in [(0, None), (5, MIB + 2), (MIB + 9, None)]:
        reader = store.open(key, start, end)
        assert reader.checked == (codec != "raw")
        reader.close()


def test_every_codec_stays_readable_in_one_store(
    open_store: Callable[[CodecConfig], BlobStore],
) -> None:
    """A store whose config changed over time (codec 0 blobs from before codecs,
    then compression, then encryption...) reads every blob it ever wrote; the
    encrypted ones as long as its keyring holds their keys."""
    written: dict[str, tuple[bytes, BlobInfo]] = {}
    for seed, config in enumerate(CODECS.values()):
        writer_store = open_store(config)
        data = _payload(2 * MIB + 3 * seed, seed)
        key = new_blob_key()
        written[key] = data, put_blob(writer_store, key, [data])
    for config in CODECS.values():
        reader_store = open_store(config)
        for key, (data, info) in written.items():
            assert reader_store.stat(key) == info
            if info.key_id is not None and config.keyring is None:
                continue  # test_encrypted_blobs_need_their_key
            assert _read(reader_store, key) == data
            assert _read(reader_store, key, MIB - 1, MIB + 1) == data[MIB - 1 : MIB + 1]
    assert sorted(info.codec for _, info in written.values()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("codec", codec_params(["aes", "zstd-aes"]))
def test_encrypted_blobs_need_their_key(
    open_store: Callable[[CodecConfig], BlobStore], codec: str
) -> None:
    old = open_store(CodecConfig(CODECS[codec].compression_level, OLD_KEYRING))
    key = new_blob_key()
    data = _payload(MIB + 1)
    assert put_blob(old, key, [data]).key_id == "k-old"
    # Rotated: "k-new" is current, "k-old" still reads.
    rotated = open_store(CODECS[codec])
    assert _read(rotated, key) == data
    newer = new_blob_key()
    assert put_blob(rotated, newer, [data]).key_id == "k-new"
    # A keyring without "k-new" (or no keyring) knows it needs that id.
    for lacking in (open_store(CodecConfig()), old):
        assert lacking.stat(newer) == BlobInfo(newer, len(data), CODECS[codec].codec, "k-new")
        with pytest.raises(MissingKeyError, match="'k-new'"):
            lacking.open(newer)
        with pytest.raises(MissingKeyError, match="'k-new'"):
            lacking.open(newer, 0, 0)
    assert _read(old, key) == data
