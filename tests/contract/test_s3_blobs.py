"""What the S3 blob store adds to the shared contract (test_blob_contract.py runs
that over it too): multipart uploads, their abort and stale-upload sweep, the
bucket at start, start-up and endpoint errors, and damaged objects, all on the
session's real SeaweedFS S3 gateway."""

from __future__ import annotations

import base64
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import google_crc32c
import pytest

from openglacier.errors import IntegrityError, StorageError
from openglacier.ids import new_blob_key
from openglacier.ports import BlobInfo
from openglacier.storage.blobs import BlobAlreadyExistsError, put_blob
from openglacier.storage.blobs.codecs.index import index_length
from openglacier.storage.blobs.format import CODEC_CHECKED, HEADER_LEN, BlobHeader
from openglacier.storage.blobs.opening import BlobStoreOpenError
from openglacier.storage.blobs.s3 import MAX_PARTS_IN_FLIGHT, S3BlobStore
from openglacier.storage.blobs.s3_checksum import _c_extend, crc32c_of, part_checksum
from openglacier.storage.blobs.s3_client import S3Credentials, S3Location, make_client
from openglacier.storage.blobs.s3_writer import FIRST_PART_SIZE
from support.seaweed import REGION, Seaweed
from support.server import free_port

MIB = 1 << 20
BUCKET = "blob-contract"  # one bucket for the session: each bucket costs SeaweedFS volumes
PART = 5 * MIB


@dataclass
class S3Case:
    store: S3BlobStore
    seaweed: Seaweed
    prefix: str

    @property
    def client(self) -> Any:
        return self.store.client

    def uploads(self) -> list[dict[str, Any]]:
        listed = self.client.list_multipart_uploads(Bucket=BUCKET, Prefix=self.prefix + "/")
        return list(listed.get("Uploads", []))

    def objects(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=BUCKET, Prefix=self.prefix + "/")
        return [item["Key"] for item in listed.get("Contents", [])]

    def name(self, key: str) -> str:
        return f"{self.prefix}/{key}"


@pytest.fixture
def s3(seaweed_store: Seaweed) -> Iterator[S3Case]:
    prefix = f"s3-tests/{uuid.uuid4().hex}"
    store = seaweed_store.blob_store(BUCKET, prefix, part_size=PART)
    try:
        yield S3Case(store, seaweed_store, prefix)
    finally:
        store.close()
        seaweed_store.empty(BUCKET, prefix)


def _payload(size: int) -> bytes:
    return uuid.uuid4().bytes * (size // 16) + b"x" * (size % 16)


def _codec1_header(size: int) -> BlobHeader:
    """The default codec's header: the index starts right after the payload."""
    return BlobHeader(size, CODEC_CHECKED, codec_field=HEADER_LEN + size)


def _codec1_object_size(size: int) -> int:
    return HEADER_LEN + size + index_length(-(-size // MIB), None)


# --- multipart ----------------------------------------------------------------


def test_large_blob_goes_through_a_multipart_upload(s3: S3Case) -> None:
    data = _payload(2 * PART + 12345)
    key = new_blob_key()
    writer = s3.store.create(key)
    writer.write(data[: PART + 1])  # past part 1: the upload has started
    (upload,) = s3.uploads()
    assert upload["Key"] == s3.name(key)
    assert s3.objects() == []  # invisible until commit
    writer.write(data[PART + 1 :])
    assert writer.commit() == BlobInfo(key, len(data), CODEC_CHECKED)
    assert s3.uploads() == []
    head = s3.client.head_object(Bucket=BUCKET, Key=s3.name(key))
    assert head["ContentLength"] == _codec1_object_size(len(data))
    # Part 1 carries the final header, written at commit (format.py).
    first = s3.client.get_object(Bucket=BUCKET, Key=s3.name(key), Range="bytes=0-31")
    assert first["Body"].read() == _codec1_header(len(data)).pack()
    assert b"".join(s3.store.open(key)) == data
    assert b"".join(s3.store.open(key, PART - 7, PART + 9)) == data[PART - 7 : PART + 9]


def test_small_blob_is_one_put(s3: S3Case) -> None:
    key = new_blob_key()
    writer = s3.store.create(key)
    writer.write(_payload(PART - HEADER_LEN))  # exactly part 1: still no upload
    assert s3.uploads() == []
    writer.commit()  # the index takes it past PART: still one PUT
    assert s3.objects() == [s3.name(key)]
    head = s3.client.head_object(Bucket=BUCKET, Key=s3.name(key))
    assert head["ContentLength"] == _codec1_object_size(PART - HEADER_LEN) > PART


def test_part_one_is_only_as_large_as_s3_requires(s3: S3Case) -> None:
    """Part 1 waits in memory for commit: 5 MiB (FIRST_PART_SIZE), not a full part."""
    store = s3.seaweed.blob_store(BUCKET, s3.prefix, part_size=8 * MIB)
    try:
        data = _payload(12 * MIB)
        writer = store.create(new_blob_key())
        writer.write(data[: FIRST_PART_SIZE - HEADER_LEN])
        assert s3.uploads() == []
        writer.write(data[FIRST_PART_SIZE - HEADER_LEN :])
        assert len(s3.uploads()) == 1  # past 5 MiB: part 1 is full, the upload started
        info = writer.commit()
        assert b"".join(store.open(info.key)) == data
    finally:
        store.close()


def test_abort_leaves_no_multipart_upload(s3: S3Case) -> None:
    key = new_blob_key()
    writer = s3.store.create(key)
    writer.write(_payload(3 * PART))
    assert len(s3.uploads()) == 1
    writer.abort()
    writer.abort()
    assert s3.uploads() == []
    assert s3.objects() == []


def test_multipart_commit_never_replaces_a_blob(s3: S3Case) -> None:
    key = new_blob_key()
    put_blob(s3.store, key, [b"first"])
    writer = s3.store.create(key)
    writer.write(_payload(2 * PART))
    with pytest.raises(BlobAlreadyExistsError):
        writer.commit()
    assert b"".join(s3.store.open(key)) == b"first"
    assert s3.uploads() == []  # the failed commit aborted its upload


# --- transit checks ---------------------------------------------------------------


def _crc32c_b64(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def test_every_part_and_put_carries_its_crc32c(s3: S3Case) -> None:
    """Each body goes out with its CRC32C, and the store took it."""
    sent: dict[int, str] = {}

    def record(request: Any, **_: Any) -> None:
        number = int(parse_qs(urlsplit(request.url).query).get("partNumber", ["0"])[0])
        sent[number] = request.headers["x-amz-checksum-crc32c"].decode()

    s3.client.meta.events.register("before-send.s3.UploadPart", record)
    s3.client.meta.events.register("before-send.s3.PutObject", record)
    key = new_blob_key()
    put_blob(s3.store, key, [_payload(2 * PART + 999)])
    stored = s3.client.get_object(Bucket=BUCKET, Key=s3.name(key))["Body"].read()
    parts = [stored[i : i + PART] for i in range(0, len(stored), PART)]
    assert sent == {n: _crc32c_b64(part) for n, part in enumerate(parts, 1)}
    small = new_blob_key()
    put_blob(s3.store, small, [b"small blob"])
    body = s3.client.get_object(Bucket=BUCKET, Key=s3.name(small))["Body"].read()
    assert sent[0] == _crc32c_b64(body)
    head = s3.client.head_object(Bucket=BUCKET, Key=s3.name(small), ChecksumMode="ENABLED")
    assert head["ChecksumCRC32C"] == sent[0]


@pytest.mark.parametrize("size", [100, 2 * PART])
def test_body_damaged_in_transit_is_refused(s3: S3Case, size: int) -> None:
    """A body changed after its checksum was taken (as a bad link would) fails
    the write: nothing damaged is committed."""

    def damage(request: Any, **_: Any) -> None:
        if request.body:
            body = bytearray(request.body)
            body[len(body) // 2] ^= 0x01
            request.body = bytes(body)

    s3.client.meta.events.register("before-send.s3.UploadPart", damage)
    s3.client.meta.events.register("before-send.s3.PutObject", damage)
    key = new_blob_key()
    with pytest.raises(StorageError, match="BadDigest"):
        put_blob(s3.store, key, [_payload(size)])
    assert s3.objects() == []
    assert s3.uploads() == []


def test_part_checksum_reads_a_bytearray_in_place() -> None:
    for size in (0, 1, 4095, 5 * MIB + 3):
        body = bytearray(_payload(size))
        assert crc32c_of(body) == google_crc32c.value(bytes(body))
        assert part_checksum(body) == _crc32c_b64(bytes(body))
    assert _c_extend() is not None  # the in-place path, not the copying fallback


# --- the sweep of dead writers' uploads -----------------------------------------


def test_sweep_keeps_young_uploads_and_aborts_old_ones(s3: S3Case) -> None:
    live = s3.store.create(new_blob_key())
    live.write(_payload(PART + 1))
    dead = s3.client.create_multipart_upload(Bucket=BUCKET, Key=s3.name(new_blob_key()))
    assert len(s3.uploads()) == 2
    # Another node starting now: both uploads are young, neither is touched.
    other = s3.seaweed.blob_store(BUCKET, s3.prefix)
    try:
        assert other.sweep_temp(older_than=3600) == 0
        assert len(s3.uploads()) == 2
        # Two hours later both are stale: the sweep aborts them.
        later = datetime.now(UTC) + timedelta(hours=2)
        assert other.sweep_temp(older_than=3600, now=later) == 2
    finally:
        other.close()
    assert s3.uploads() == []
    assert dead["UploadId"]
    live.abort()  # its upload is already gone: abort stays quiet


def test_sweep_only_touches_its_own_prefix(s3: S3Case) -> None:
    elsewhere = f"{s3.prefix}-other/{new_blob_key()}"
    stray = s3.client.create_multipart_upload(Bucket=BUCKET, Key=elsewhere)
    try:
        later = datetime.now(UTC) + timedelta(hours=2)
        assert s3.store.sweep_temp(older_than=3600, now=later) == 0
    finally:
        s3.client.abort_multipart_upload(Bucket=BUCKET, Key=elsewhere, UploadId=stray["UploadId"])


# --- opening the store ----------------------------------------------------------


def test_missing_bucket_is_created(seaweed_store: Seaweed) -> None:
    bucket = f"og-new-{uuid.uuid4().hex[:12]}"
    store = seaweed_store.blob_store(bucket)
    try:
        store.client.head_bucket(Bucket=bucket)
        key = new_blob_key()
        put_blob(store, key, [b"in the new bucket"])
        assert b"".join(store.open(key)) == b"in the new bucket"
        store.delete(key)
    finally:
        store.client.delete_bucket(Bucket=bucket)
        store.close()


def test_bad_credentials_are_one_clear_error(seaweed_store: Seaweed) -> None:
    location = S3Location.parse(seaweed_store.blob_url(BUCKET))
    with pytest.raises(BlobStoreOpenError, match="access denied") as caught:
        S3BlobStore(location, S3Credentials("nobody", "wrong-secret", REGION))
    assert "\n" not in str(caught.value)
    assert "wrong-secret" not in str(caught.value)


def test_unreachable_endpoint_is_one_clear_error() -> None:
    location = S3Location.parse(f"s3+http://127.0.0.1:{free_port()}/some-bucket")
    with pytest.raises(BlobStoreOpenError, match="cannot reach") as caught:
        S3BlobStore(location, S3Credentials("key", "secret", REGION))
    assert "\n" not in str(caught.value)


def test_endpoint_going_down_is_storage_error(s3: S3Case) -> None:
    """A gateway that stops answering: StorageError (the API's 5xx), never botocore's."""
    key = new_blob_key()
    put_blob(s3.store, key, [b"stored"])
    dead = S3Location.parse(f"s3+http://127.0.0.1:{free_port()}/{BUCKET}/{s3.prefix}")
    real, s3.store.client = s3.store.client, make_client(dead, s3.seaweed.credentials, 4)
    try:
        with pytest.raises(StorageError):
            put_blob(s3.store, new_blob_key(), [b"x"])
        with pytest.raises(StorageError):
            s3.store.open(key)
        with pytest.raises(StorageError):
            s3.store.stat(key)
        with pytest.raises(StorageError):
            s3.store.delete(key)
        with pytest.raises(StorageError):
            s3.store.scan(None, 10)
    finally:
        s3.store.client.close()
        s3.store.client = real
    assert b"".join(s3.store.open(key)) == b"stored"


@pytest.mark.parametrize(
    "url",
    [
        "s3+ftp://h:1/bucket",
        "s3+http://h:1/",
        "s3+http://h:1/Bad_Bucket",
        "s3+http://key:secret@h:1/bucket",
        "s3+http://h:1/bucket?x=1",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        S3Location.parse(url)


def test_url_prefix_is_normalised() -> None:
    location = S3Location.parse("s3+https://s3.example.com/bucket//a/b/")
    assert location == S3Location("https://s3.example.com", "bucket", "a/b/")
    assert S3Location.parse("s3+http://h:9000/bucket").prefix == ""


# --- damage ---------------------------------------------------------------------


def _overwrite(s3: S3Case, key: str, body: bytes) -> None:
    s3.client.put_object(Bucket=BUCKET, Key=s3.name(key), Body=body)


def test_damaged_header_is_integrity_error(s3: S3Case) -> None:
    key = new_blob_key()
    put_blob(s3.store, key, [b"payload bytes"])
    raw = s3.client.get_object(Bucket=BUCKET, Key=s3.name(key))["Body"].read()
    _overwrite(s3, key, raw[:5] + bytes([raw[5] ^ 1]) + raw[6:])  # one bit of the header
    with pytest.raises(IntegrityError, match="checksum"):
        s3.store.open(key)
    with pytest.raises(IntegrityError):
        s3.store.stat(key)


@pytest.mark.parametrize("cut", [0, 10, HEADER_LEN + 3])
def test_truncated_object_is_integrity_error(s3: S3Case, cut: int) -> None:
    key = new_blob_key()
    put_blob(s3.store, key, [b"payload bytes"])
    raw = s3.client.get_object(Bucket=BUCKET, Key=s3.name(key))["Body"].read()
    _overwrite(s3, key, raw[:cut])
    with pytest.raises(IntegrityError, match="truncated"):
        s3.store.open(key)


def test_trailing_garbage_is_integrity_error(s3: S3Case) -> None:
    key = new_blob_key()
    put_blob(s3.store, key, [b"payload bytes"])
    raw = s3.client.get_object(Bucket=BUCKET, Key=s3.name(key))["Body"].read()
    _overwrite(s3, key, raw + b"extra")
    with pytest.raises(IntegrityError, match="trailing garbage"):
        s3.store.open(key)


def test_scan_ignores_objects_that_are_not_blobs(s3: S3Case) -> None:
    key = new_blob_key()
    put_blob(s3.store, key, [b"x"])
    s3.client.put_object(Bucket=BUCKET, Key=f"{s3.prefix}/README", Body=b"not ours")
    s3.client.put_object(Bucket=BUCKET, Key=f"{s3.prefix}/sub/{new_blob_key()}", Body=b"")
    assert [entry.key for entry in s3.store.scan(None, 1)] == [key]
    assert list(s3.store.keys()) == [key]


# --- memory -----------------------------------------------------------------------


def test_writes_stream_in_constant_memory(s3: S3Case) -> None:
    """A blob many parts long is never held whole: at most part 1, the part being
    filled and the parts in flight (module docstring)."""
    size = 16 * PART
    chunk = bytes(MIB)
    key = new_blob_key()
    tracemalloc.start()
    try:
        writer = s3.store.create(key)
        for _ in range(size // MIB):
            writer.write(chunk)
        writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert s3.store.stat(key) == BlobInfo(key, size, CODEC_CHECKED)
    assert peak < (2 + MAX_PARTS_IN_FLIGHT + 2) * PART, f"peak {peak / MIB:.1f} MiB"
