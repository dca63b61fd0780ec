"""The replicated blob store (--replica-blob-url) on real stores: what the
contract suite cannot see from outside. A damaged or missing copy is read from
the other one (at open and mid-stream), two bad copies are an error, both
copies are written or neither, listings are the union (orphans of a crash
between the two commits are collected), and `restore` repairs a copy, also
when it was interrupted.

Damage is done to the stored bytes themselves: a blob file's bytes on disk,
an object's bytes in SeaweedFS. Only the header (bytes 0-31) and the first
chunk's payload (from byte 32) are touched by position: both lie there in
every blob format version 1 codec.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from openglacier.clock import PROFILES, ManualClock
from openglacier.config import ConfigError
from openglacier.domain.context import DEFAULT_ORPHAN_BLOB_MIN_AGE, Deps
from openglacier.domain.orphans import collect_orphans
from openglacier.errors import IntegrityError, StorageError
from openglacier.ids import new_blob_key
from openglacier.ports import BlobCopies, BlobStore
from openglacier.storage.blobs import BlobAlreadyExistsError, BlobNotFoundError, put_blob
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.blobs.replicated import ReplicatedBlobStore, open_replicated
from openglacier.storage.blobs.s3 import S3BlobStore
from openglacier.storage.metadata.store import SqlMetadataStore
from support.seaweed import Seaweed

MIB = 1 << 20
HEADER = 32  # the blob format's header; the first chunk's payload follows it
BUCKET = "blob-contract"  # shared with the contract suites; each test has its prefix
LOGGER = "openglacier.storage.blobs.replicated"
SIZE = 3 * MIB + 1234


def payload(size: int = SIZE, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def read(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.open(key, start, end))


# --- damaging a stored copy, whatever the store ----------------------------------


@dataclass
class Raw:
    """A store's raw bytes for a key: the file, or the object."""

    store: BlobStore

    def get(self, key: str) -> bytes:
        if isinstance(self.store, FilesystemBlobStore):
            return self._path(key).read_bytes()
        assert isinstance(self.store, S3BlobStore)
        got = self.store.client.get_object(Bucket=self.store.bucket, Key=self._name(key))
        return bytes(got["Body"].read())

    def put(self, key: str, data: bytes) -> None:
        if isinstance(self.store, FilesystemBlobStore):
            self._path(key).write_bytes(data)
        else:
            assert isinstance(self.store, S3BlobStore)
            self.store.client.put_object(Bucket=self.store.bucket, Key=self._name(key), Body=data)

    def truncate(self, key: str, size: int) -> None:
        if isinstance(self.store, FilesystemBlobStore):
            os.truncate(self._path(key), size)  # in place: open readers see it too
        else:
            self.put(key, self.get(key)[:size])

    def flip(self, key: str, offset: int) -> None:
        data = bytearray(self.get(key))
        data[offset] ^= 0x10
        self.put(key, bytes(data))

    def damage(self, key: str, how: str) -> None:
        if how == "missing":
            self.store.delete(key)
        elif how == "header":
            self.flip(key, 13)  # inside the header's CRC field
        elif how == "truncated":
            self.truncate(key, HEADER + 1000)
        else:
            raise AssertionError(how)

    def _path(self, key: str) -> Path:
        assert isinstance(self.store, FilesystemBlobStore)
        return self.store.root / "objects" / key[:2] / key[2:4] / key

    def _name(self, key: str) -> str:
        assert isinstance(self.store, S3BlobStore)
        return self.store.object_key(key)


Maker = Callable[[str], BlobStore]


@pytest.fixture
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Maker]:
    """make("file") or make("s3"): a fresh store of that kind, closed at the end."""
    opened: list[BlobStore] = []

    def build(kind: str) -> BlobStore:
        if kind == "file":
            store: BlobStore = FilesystemBlobStore(tmp_path / f"store{len(opened)}")
        else:
            seaweed: Seaweed = request.getfixturevalue("seaweed_store")
            prefix = f"replicated/{uuid.uuid4().hex}"
            request.addfinalizer(lambda: seaweed.empty(BUCKET, prefix))
            store = seaweed.blob_store(BUCKET, prefix, part_size=5 * MIB)
        opened.append(store)
        return store

    yield build
    for store in opened:
        store.close()


PAIRS = ["file+file", "file+s3", "s3+file"]


@pytest.fixture(params=PAIRS)
def pair(request: pytest.FixtureRequest, make: Maker) -> ReplicatedBlobStore:
    primary, replica = str(request.param).split("+")
    return ReplicatedBlobStore(make(primary), make(replica))


@pytest.fixture
def files(make: Maker) -> ReplicatedBlobStore:
    return ReplicatedBlobStore(make("file"), make("file"))


def stored(store: ReplicatedBlobStore, data: bytes | None = None) -> tuple[str, bytes]:
    data = payload() if data is None else data
    key = new_blob_key()
    put_blob(store, key, [data])
    return key, data


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelname == "WARNING"]


def test_is_blob_copies_with_primary_first(make: Maker) -> None:
    primary, replica = make("file"), make("file")
    store = ReplicatedBlobStore(primary, replica)
    assert isinstance(store, BlobCopies)
    assert store.copies == (primary, replica)


def test_commit_writes_both_copies(pair: ReplicatedBlobStore) -> None:
    key, data = stored(pair)
    for copy in pair.copies:
        assert read(copy, key) == data
        assert Raw(copy).get(key)[HEADER : HEADER + 100] == data[:100]


# --- reads fall back to the good copy --------------------------------------------


@pytest.mark.parametrize("how", ["missing", "header", "truncated"])
def test_damaged_primary_is_read_from_the_replica(
    pair: ReplicatedBlobStore, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    key, data = stored(pair)
    Raw(pair.copies[0]).damage(key, how)
    with caplog.at_level(logging.WARNING, LOGGER):
        assert read(pair, key) == data
        assert read(pair, key, MIB - 7, 2 * MIB + 9) == data[MIB - 7 : 2 * MIB + 9]
        info = pair.stat(key)
        assert info is not None
        assert info.size == len(data)
    logged = warnings(caplog)
    assert logged
    assert all(key in line and "primary" in line and pair.labels[0] in line for line in logged)


@pytest.mark.parametrize("how", ["missing", "header", "truncated"])
def test_damaged_replica_does_not_disturb_reads(
    pair: ReplicatedBlobStore, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    key, data = stored(pair)
    Raw(pair.copies[1]).damage(key, how)
    with caplog.at_level(logging.WARNING, LOGGER):
        assert read(pair, key) == data
    assert warnings(caplog) == []  # the primary was good: the replica never read


def test_payload_bit_flip_in_the_primary(pair: ReplicatedBlobStore) -> None:
    """A flipped payload bit is damage only a checksum sees. A checked reader
    (codecs with per-chunk checksums) raises at the chunk, and the read goes on
    from the replica; an unchecked one (codec 0) cannot tell, says so with
    `checked` False, and the caller's tree-hash check catches it (the scrubber
    then restores the copy: test_restore_repairs_a_damaged_copy)."""
    key, data = stored(pair)
    Raw(pair.copies[0]).flip(key, HEADER + 100)
    reader = pair.open(key)
    got = b"".join(reader)
    if reader.checked:
        assert got == data
    else:
        assert got != data
        assert got[:100] + got[101:] == data[:100] + data[101:]


@pytest.mark.parametrize("replica_kind", ["file", "s3"])
def test_primary_failing_mid_stream_switches_to_the_replica(
    make: Maker, replica_kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = ReplicatedBlobStore(make("file"), make(replica_kind))
    key, data = stored(store)
    reader = store.open(key, 5)
    first = next(reader)
    # Cut the primary's file under the open reader: its next chunk reads short.
    Raw(store.copies[0]).truncate(key, HEADER + 1000)
    with caplog.at_level(logging.WARNING, LOGGER):
        rest = b"".join(reader)
    assert first + rest == data[5:]
    (line,) = warnings(caplog)  # one switch, one line
    assert key in line
    assert "primary" in line
    assert f"from byte {5 + len(first)}" in line
    assert reader.checked is True  # codec 1 (a CRC32C per chunk) on both sides


def test_both_copies_missing_is_not_found(pair: ReplicatedBlobStore) -> None:
    key, _ = stored(pair)
    for copy in pair.copies:
        Raw(copy).damage(key, "missing")
    with pytest.raises(BlobNotFoundError):
        pair.open(key)
    assert pair.stat(key) is None


@pytest.mark.parametrize(
    ("primary", "replica"),
    [("header", "header"), ("missing", "header"), ("header", "missing"), ("truncated", "header")],
)
def test_both_copies_damaged_is_an_integrity_error(
    pair: ReplicatedBlobStore, primary: str, replica: str
) -> None:
    key, _ = stored(pair)
    Raw(pair.copies[0]).damage(key, primary)
    Raw(pair.copies[1]).damage(key, replica)
    with pytest.raises(IntegrityError):
        pair.open(key)
    with pytest.raises(IntegrityError):
        pair.stat(key)


@pytest.mark.parametrize("replica_damage", ["missing", "truncated"])
def test_both_copies_failing_mid_stream_is_an_integrity_error(
    files: ReplicatedBlobStore, replica_damage: str
) -> None:
    key, data = stored(files)
    reader = files.open(key)
    assert next(reader) == data[:MIB]
    Raw(files.copies[0]).truncate(key, HEADER + 1000)
    Raw(files.copies[1]).damage(key, replica_damage)
    with pytest.raises(IntegrityError):
        b"".join(reader)


def test_read_switches_back_when_the_replica_fails_later(
    files: ReplicatedBlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The primary fails at its second chunk and the replica serves it; the
    replica then fails at its third, by which time the primary was repaired
    (what the scrubber does): the read goes back to the primary and ends whole."""
    key, data = stored(files)
    primary, replica = Raw(files.copies[0]), Raw(files.copies[1])
    original = primary.get(key)
    reader = files.open(key)
    with caplog.at_level(logging.WARNING, LOGGER):
        got = next(reader)
        primary.truncate(key, HEADER + 1000)
        got += next(reader)  # from the replica
        replica.truncate(key, HEADER + 1000)
        primary.put(key, original)
        got += b"".join(reader)
    assert got == data
    switches = warnings(caplog)
    assert len(switches) == 2
    assert "the primary copy" in switches[0]
    assert f"from byte {MIB}" in switches[0]
    assert "the replica copy" in switches[1]
    assert f"from byte {2 * MIB}" in switches[1]


def test_payload_bit_flip_in_both_copies(pair: ReplicatedBlobStore) -> None:
    """The same chunk damaged in both copies: a checked read raises (each copy
    fails at that chunk, once, no endless switching); an unchecked one (codec
    0) yields the bytes for the caller's tree hash to refuse."""
    key, data = stored(pair)
    for copy in pair.copies:
        Raw(copy).flip(key, HEADER + 100)
    reader = pair.open(key)
    if reader.checked:
        with pytest.raises(IntegrityError):
            b"".join(reader)
    else:
        assert b"".join(reader) != data


def test_range_errors_are_not_fallbacks(pair: ReplicatedBlobStore) -> None:
    key, _data = stored(pair, b"x" * 100)
    with pytest.raises(ValueError, match="start"):
        pair.open(key, 101)
    with pytest.raises(ValueError, match="invalid blob key"):
        pair.open("../etc")


# --- writes: both copies or neither ------------------------------------------------


def test_failed_replica_commit_leaves_no_copy(files: ReplicatedBlobStore) -> None:
    """The replica cannot commit (a file where its fan-out directory goes): the
    primary copy, committed first, is removed again, and nothing is listed."""
    key = "abcd" + new_blob_key()[4:]
    replica = files.copies[1]
    assert isinstance(replica, FilesystemBlobStore)
    (replica.root / "objects" / "ab").write_bytes(b"not a directory")
    with pytest.raises(StorageError):
        put_blob(files, key, [payload(MIB + 5)])
    assert files.copies[0].stat(key) is None
    assert list(files.keys()) == []
    assert list((replica.root / "tmp").iterdir()) == []  # its temp file went too


def test_replica_key_collision_removes_the_primary_copy(files: ReplicatedBlobStore) -> None:
    key = new_blob_key()
    put_blob(files.copies[1], key, [b"already there"])
    with pytest.raises(BlobAlreadyExistsError):
        put_blob(files, key, [b"new"])
    assert files.copies[0].stat(key) is None
    assert read(files.copies[1], key) == b"already there"  # not ours: untouched


def test_primary_key_collision_leaves_the_replica_empty(files: ReplicatedBlobStore) -> None:
    key = new_blob_key()
    put_blob(files.copies[0], key, [b"already there"])
    with pytest.raises(BlobAlreadyExistsError):
        put_blob(files, key, [b"new"])
    assert read(files.copies[0], key) == b"already there"
    assert files.copies[1].stat(key) is None


def test_abort_and_sweep_cover_both_stores(pair: ReplicatedBlobStore) -> None:
    writer = pair.create(new_blob_key())
    writer.write(payload(6 * MIB))  # an S3 copy past one part: a multipart upload
    writer.abort()
    assert list(pair.keys()) == []
    assert pair.sweep_temp(older_than=None) == 0  # abort left nothing to sweep
    dropped = pair.create(new_blob_key())
    dropped.write(payload(6 * MIB))
    del dropped  # a writer that dies without abort: a crash's leftovers in both
    assert pair.sweep_temp(older_than=None) == 2
    assert pair.sweep_temp(older_than=None) == 0


# --- listings and deletes span both stores ----------------------------------------


def test_scan_lists_the_union_in_key_order(files: ReplicatedBlobStore) -> None:
    primary, replica = files.copies
    both = {stored(files, b"both")[0] for _ in range(7)}
    only_primary = {new_blob_key() for _ in range(6)}  # a crash between the commits
    only_replica = {new_blob_key() for _ in range(5)}  # an interrupted restore
    for key in only_primary:
        put_blob(primary, key, [b"p"])
    for key in only_replica:
        put_blob(replica, key, [b"r"])
    everything = sorted(both | only_primary | only_replica)
    for limit in (1, 3, 4, 100):
        pages: list[str] = []
        after: str | None = None
        while page := files.scan(after, limit):
            assert len(page) <= limit
            pages += [entry.key for entry in page]
            after = page[-1].key
        assert pages == everything
    assert list(files.keys()) == everything


def test_scan_reports_the_younger_copy(files: ReplicatedBlobStore) -> None:
    key, _ = stored(files, b"x")
    primary_path = Raw(files.copies[0])._path(key)
    old = primary_path.stat().st_mtime - 3600
    os.utime(primary_path, (old, old))
    (entry,) = files.scan(None, 10)
    (replica_entry,) = files.copies[1].scan(None, 10)
    assert entry.modified_at == replica_entry.modified_at  # the later of the two


def test_delete_removes_both_copies(pair: ReplicatedBlobStore) -> None:
    key, _ = stored(pair)
    only_primary = new_blob_key()
    put_blob(pair.copies[0], only_primary, [b"p"])
    pair.delete(key)
    pair.delete(only_primary)
    pair.delete(new_blob_key())
    for copy in pair.copies:
        assert list(copy.keys()) == []


def test_orphans_in_either_store_are_collected(
    files: ReplicatedBlobStore, metadata_store: SqlMetadataStore
) -> None:
    """A crash between the two commits leaves a primary-only blob that no row
    names; the collector lists the union and deletes from both."""
    clock = ManualClock()
    deps = Deps(store=metadata_store, blobs=files, clock=clock, timing=PROFILES["instant"])
    kept, _ = stored(files, b"named by a row")
    with metadata_store.transaction() as tx:
        tx.queue_blob_deletes([kept], clock.now())  # a reference the collector respects
    primary_orphan, replica_orphan, both_orphan = new_blob_key(), new_blob_key(), new_blob_key()
    put_blob(files.copies[0], primary_orphan, [b"p"])
    put_blob(files.copies[1], replica_orphan, [b"r"])
    put_blob(files, both_orphan, [b"b"])
    assert anyio.run(collect_orphans, deps) == 0  # too young
    clock.advance(DEFAULT_ORPHAN_BLOB_MIN_AGE + timedelta(seconds=1))
    assert anyio.run(collect_orphans, deps) == 3
    for copy in files.copies:
        assert list(copy.keys()) == [kept]


# --- restore: the scrubber's repair ----------------------------------------------


@pytest.mark.parametrize("how", ["missing", "header", "truncated", "payload"])
@pytest.mark.parametrize("damaged", [0, 1])
def test_restore_repairs_a_damaged_copy(
    pair: ReplicatedBlobStore, how: str, damaged: int, caplog: pytest.LogCaptureFixture
) -> None:
    key, data = stored(pair)
    raw = Raw(pair.copies[damaged])
    if how == "payload":
        raw.flip(key, HEADER + 100)
    else:
        raw.damage(key, how)
    with caplog.at_level(logging.WARNING, LOGGER):
        pair.restore(key, source=1 - damaged)
    assert any("restored" in line and key in line for line in warnings(caplog))
    for copy in pair.copies:
        assert read(copy, key) == data
        assert copy.stat(key) == pair.copies[1 - damaged].stat(key)
    assert read(pair, key) == data


def test_restore_is_idempotent(pair: ReplicatedBlobStore) -> None:
    key, data = stored(pair)
    pair.restore(key, source=0)
    pair.restore(key, source=0)
    pair.restore(key, source=1)
    assert [read(copy, key) for copy in pair.copies] == [data, data]


def test_restore_from_an_unreadable_source_touches_nothing(files: ReplicatedBlobStore) -> None:
    key, data = stored(files)
    Raw(files.copies[0]).damage(key, "missing")
    with pytest.raises(BlobNotFoundError):
        files.restore(key, source=0)
    assert read(files.copies[1], key) == data
    Raw(files.copies[0]).put(key, b"garbage")  # no header at all
    with pytest.raises(IntegrityError):
        files.restore(key, source=0)
    assert read(files.copies[1], key) == data
    with pytest.raises(ValueError, match="source"):
        files.restore(key, source=2)


def test_restore_interrupted_after_the_delete_is_finished_by_a_rerun(
    pair: ReplicatedBlobStore,
) -> None:
    """What an interrupted restore leaves: the copy deleted, its new copy half
    written and never committed. Reads use the source meanwhile; a rerun
    finishes; the sweep drops the half-written copy."""
    key, data = stored(pair, payload(7 * MIB, 3))  # an S3 copy of it: a multipart upload
    target = pair.copies[1]
    target.delete(key)
    half = target.create(key)
    half.write(data[: 6 * MIB])
    del half  # the process died here
    assert read(pair, key) == data
    pair.restore(key, source=0)
    assert [read(copy, key) for copy in pair.copies] == [data, data]
    assert target.sweep_temp(older_than=None) == 1


_RESTORE_LOOP = """
import sys
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.blobs.replicated import ReplicatedBlobStore, open_replicated
store = ReplicatedBlobStore(FilesystemBlobStore(sys.argv[1]), FilesystemBlobStore(sys.argv[2]))
print("restoring", flush=True)
while True:
    store.restore(sys.argv[3], source=1)
"""


def test_restore_killed_at_random_points_then_rerun(tmp_path: Path) -> None:
    """SIGKILL a process that restores the primary over and over, at a random
    moment each round: the source copy is always whole, and a rerun leaves two
    identical copies and no leftovers."""
    primary, replica = tmp_path / "primary", tmp_path / "replica"
    store = ReplicatedBlobStore(FilesystemBlobStore(primary), FilesystemBlobStore(replica))
    key, data = stored(store, payload(24 * MIB, 5))
    rng = random.Random()
    for _ in range(4):
        child = subprocess.Popen(
            [sys.executable, "-c", _RESTORE_LOOP, str(primary), str(replica), key],
            stdout=subprocess.PIPE,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == b"restoring\n"
        time.sleep(rng.uniform(0, 0.3))  # the kill point, not a wait for anything
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
        assert read(store.copies[1], key) == data  # the source is never touched
        assert read(store, key) == data  # whatever the primary's state, reads work
        store.restore(key, source=1)
        assert [read(copy, key) for copy in store.copies] == [data, data]
        store.sweep_temp(older_than=None)
        assert list((primary / "tmp").iterdir()) == []
    store.close()


# --- opening the pair from URLs (what serve and worker do) -------------------------


def test_open_replicated_opens_both_stores_by_url(tmp_path: Path) -> None:
    store = open_replicated(f"file://{tmp_path}/primary/", f"file://{tmp_path}/x/../replica")
    try:
        assert store.labels == (f"file://{tmp_path}/primary", f"file://{tmp_path}/replica")
        key, data = stored(store)
        for root in ("primary", "replica"):
            assert read(FilesystemBlobStore(tmp_path / root), key) == data
    finally:
        store.close()


def test_open_replicated_refuses_the_blob_store_itself(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"replica_blob_url .* is the blob store itself"):
        open_replicated(f"file://{tmp_path}/blobs", f"file://{tmp_path}/blobs/")
    assert not (tmp_path / "blobs").exists()  # refused before anything was opened


def test_a_blob_missing_from_both_logs_no_fallback(
    files: ReplicatedBlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing was read from a replica: no WARNING (the caller reports the error)."""
    with caplog.at_level(logging.WARNING, LOGGER), pytest.raises(BlobNotFoundError):
        files.open(new_blob_key())
    assert warnings(caplog) == []
