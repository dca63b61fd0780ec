"""Filesystem blob store specifics: on-disk format, crash leftovers, durability steps."""

from __future__ import annotations

import errno
import gc
import os
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import google_crc32c
import pytest

from openglacier.errors import IntegrityError, StorageError
from openglacier.ids import new_blob_key
from openglacier.ports import BlobInfo
from openglacier.storage.blobs import (
    BlobAlreadyExistsError,
    BlobWriterClosedError,
    put_blob,
)
from openglacier.storage.blobs import filesystem as fs_module
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.blobs.format import HEADER_LEN
from support.codecs import CODECS, codec_params, mixed_payload

MIB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "root")


@pytest.fixture
def raw_store(tmp_path: Path) -> FilesystemBlobStore:
    """Writes codec 0, as every blob was before codecs (still read as such)."""
    return FilesystemBlobStore(tmp_path / "root", CodecConfig(legacy_raw=True))


def _blob_path(store: FilesystemBlobStore, key: str) -> Path:
    return store.root / "objects" / key[0:2] / key[2:4] / key


def _temp_files(store: FilesystemBlobStore) -> list[str]:
    return sorted(os.listdir(store.root / "tmp"))


def _header(**fields: int) -> bytes:
    """A header built by hand from the layout documented in format.py."""
    values = {"version": 1, "codec": 0, "flags": 0, "chunk": MIB, "length": 0, "field": 0}
    values.update(fields)
    raw = bytearray(
        b"OGLB"
        + bytes([values["version"], values["codec"]])
        + values["flags"].to_bytes(2, "little")
        + values["chunk"].to_bytes(4, "little")
        + bytes(4)
        + values["length"].to_bytes(8, "little")
        + values["field"].to_bytes(8, "little")
    )
    raw[12:16] = zlib.crc32(raw).to_bytes(4, "little")
    return bytes(raw)


# --- format -----------------------------------------------------------------


def test_codec0_layout_and_header_bytes(raw_store: FilesystemBlobStore) -> None:
    store = raw_store
    key = new_blob_key()
    payload = b"hello, glacier"
    put_blob(store, key, [payload])
    path = _blob_path(store, key)
    raw = path.read_bytes()
    assert HEADER_LEN == 32
    assert len(raw) == 32 + len(payload)
    assert raw[:4] == b"OGLB"
    assert raw[4] == 1  # version
    assert raw[5] == 0  # codec: raw
    assert raw[6:8] == b"\0\0"  # flags
    assert struct.unpack_from("<I", raw, 8)[0] == MIB  # chunk size
    assert struct.unpack_from("<Q", raw, 16)[0] == len(payload)
    assert raw[24:32] == bytes(8)  # codec field, unused by codec 0
    zeroed = raw[:12] + bytes(4) + raw[16:32]
    assert struct.unpack_from("<I", raw, 12)[0] == zlib.crc32(zeroed)
    assert raw[:32] == _header(length=len(payload))
    assert raw[32:] == payload  # codec 0: verbatim
    assert path.stat().st_mode & 0o777 == 0o600


def test_empty_codec0_blob_is_just_a_header(raw_store: FilesystemBlobStore) -> None:
    key = new_blob_key()
    assert put_blob(raw_store, key, []) == BlobInfo(key, 0)
    assert _blob_path(raw_store, key).read_bytes() == _header(length=0)


def _crc32c(data: bytes, seed: bytes) -> int:
    return google_crc32c.value(seed + data)


def test_codec1_layout_byte_by_byte(store: FilesystemBlobStore) -> None:
    """The default codec: payload verbatim from offset 32, then the chunk index
    (storage/blobs/codecs/index.py), built here by hand from its documentation."""
    key = new_blob_key()
    payload = os.urandom(MIB) + b"hello, glacier"
    assert put_blob(store, key, [payload]) == BlobInfo(key, len(payload), 1)
    raw = _blob_path(store, key).read_bytes()
    end = 32 + len(payload)
    assert raw[:32] == _header(codec=1, length=len(payload), field=end)
    assert raw[32:end] == payload  # payload byte i at file offset 32 + i, as codec 0
    index = bytearray(b"OGIX" + bytes([1, 0]) + bytes(2) + (2).to_bytes(8, "little") + bytes(16))
    for number, (start, size) in enumerate([(0, MIB), (MIB, 14)]):
        chunk = payload[start : start + size]
        check = _crc32c(chunk, key.encode() + number.to_bytes(8, "little"))
        index += size.to_bytes(4, "little") + check.to_bytes(4, "little") + bytes(4)
    index += _crc32c(bytes(index), key.encode()).to_bytes(4, "little")
    assert raw[end:] == index


def test_empty_codec1_blob_is_a_header_and_an_empty_index(store: FilesystemBlobStore) -> None:
    key = new_blob_key()
    assert put_blob(store, key, []) == BlobInfo(key, 0, 1)
    index = b"OGIX" + bytes([1, 0]) + bytes(2) + bytes(8) + bytes(16)
    index += _crc32c(index, key.encode()).to_bytes(4, "little")
    assert _blob_path(store, key).read_bytes() == _header(codec=1, field=32) + index


def _damage(store: FilesystemBlobStore, new_bytes: bytes) -> str:
    key = new_blob_key()
    put_blob(store, key, [b"x" * 100])
    _blob_path(store, key).write_bytes(new_bytes)
    return key


def _assert_integrity_error(store: FilesystemBlobStore, key: str, match: str) -> None:
    with pytest.raises(IntegrityError, match=match):
        store.open(key)
    with pytest.raises(IntegrityError, match=match):
        store.stat(key)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (_header(length=100) + b"x" * 99, "truncated"),
        (_header(length=100) + b"x" * 101, "trailing garbage"),
        (_header(length=100), "truncated"),
        (_header(length=100)[:20], "truncated header"),
        (b"", "truncated header"),
        (b"XGLB" + _header(length=100)[4:] + b"x" * 100, "bad magic"),
        (_header(version=2, length=100) + b"x" * 100, "version 2"),
        (_header(codec=1, length=100) + b"x" * 100, "codec 1"),
        (_header(codec=9, length=100) + b"x" * 100, "unsupported codec 9"),
        (_header(flags=1, length=100) + b"x" * 100, "flags"),
        (_header(chunk=0, length=100) + b"x" * 100, "chunk size"),
    ],
    ids=[
        "short",
        "long",
        "header-only",
        "half-header",
        "empty",
        "magic",
        "version",
        "codec-1-without-index",
        "unknown-codec",
        "flags",
        "chunk",
    ],
)
def test_damaged_files_are_integrity_errors(
    store: FilesystemBlobStore, raw: bytes, match: str
) -> None:
    _assert_integrity_error(store, _damage(store, raw), match)


def test_header_bit_flip_is_caught_by_crc(store: FilesystemBlobStore) -> None:
    key = new_blob_key()
    put_blob(store, key, [b"x" * 100])
    path = _blob_path(store, key)
    raw = bytearray(path.read_bytes())
    raw[8] ^= 0x01  # chunk size: still plausible, so only the CRC notices
    path.write_bytes(raw)
    _assert_integrity_error(store, key, "checksum")


def test_shrinking_under_a_reader_is_an_integrity_error(store: FilesystemBlobStore) -> None:
    key = new_blob_key()
    put_blob(store, key, [b"y" * (3 * MIB)])
    reader = store.open(key)
    assert len(next(reader)) == MIB
    os.truncate(_blob_path(store, key), HEADER_LEN + MIB + 10)
    with pytest.raises(IntegrityError, match="shrank"):
        list(reader)


# --- keys -------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../x",
        "../" * 8 + "tmp",
        "0123456789ABCDEF",
        "g" * 16,
        "ab/cd" * 4,
        "0" * 15,
        " " + "0" * 16,
    ],
)
def test_invalid_keys_rejected(store: FilesystemBlobStore, key: str) -> None:
    for call in (store.create, store.open, store.stat, store.delete):
        with pytest.raises(ValueError, match="invalid blob key"):
            call(key)
    assert _temp_files(store) == []
    assert os.listdir(store.root / "objects") == []


def test_keys_ignores_foreign_files(store: FilesystemBlobStore) -> None:
    key = "abcd" + "0" * 28
    put_blob(store, key, [b"1"])
    leaf = store.root / "objects" / "ab" / "cd"
    (leaf / "notes.txt").write_bytes(b"")
    (leaf / ("ffff" + "0" * 28)).write_bytes(b"")  # valid key, wrong directory
    (store.root / "objects" / "README").write_bytes(b"")
    assert list(store.keys()) == [key]


def test_keys_are_listed_in_order(store: FilesystemBlobStore) -> None:
    keys = [new_blob_key() for _ in range(30)]
    for key in keys:
        put_blob(store, key, [b""])
    assert list(store.keys()) == sorted(keys)


# --- temp files and crashes -----------------------------------------------


def test_sweep_removes_writer_dropped_without_abort(store: FilesystemBlobStore) -> None:
    kept = new_blob_key()
    put_blob(store, kept, [b"committed"])
    writer = store.create(new_blob_key())
    writer.write(b"z" * (MIB + 1))
    del writer
    gc.collect()
    assert len(_temp_files(store)) == 1
    assert store.sweep_temp() == 1
    assert _temp_files(store) == []
    assert list(store.keys()) == [kept]
    assert b"".join(store.open(kept)) == b"committed"


def test_sweep_removes_leftovers_of_a_killed_process(store: FilesystemBlobStore) -> None:
    kept = new_blob_key()
    put_blob(store, kept, [b"committed"])
    crashing = (
        "import os, sys\n"
        "from openglacier.storage.blobs.filesystem import FilesystemBlobStore\n"
        "w = FilesystemBlobStore(sys.argv[1]).create(sys.argv[2])\n"
        "w.write(b'q' * 3_000_000)\n"
        "os._exit(9)\n"
    )
    lost = new_blob_key()
    result = subprocess.run(  # noqa: PLW1510 - the exit status is the point
        [sys.executable, "-c", crashing, str(store.root), lost], capture_output=True
    )
    assert result.returncode == 9, result.stderr
    (store.root / "tmp" / "stray.tmp").write_bytes(b"junk")
    assert len(_temp_files(store)) == 2
    assert store.stat(lost) is None
    assert store.sweep_temp() == 2
    assert _temp_files(store) == []
    assert list(store.keys()) == [kept]


def test_sweep_after_crash_between_link_and_unlink(store: FilesystemBlobStore) -> None:
    key = new_blob_key()
    put_blob(store, key, [b"durable"])
    os.link(_blob_path(store, key), store.root / "tmp" / f"{key}.0000000000000000.tmp")
    assert store.sweep_temp() == 1
    assert b"".join(store.open(key)) == b"durable"


def test_sweep_older_than_spares_active_writers(store: FilesystemBlobStore) -> None:
    old = store.root / "tmp" / "old.tmp"
    old.write_bytes(b"old")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    key = new_blob_key()
    writer = store.create(key)
    writer.write(b"in flight")
    assert store.sweep_temp(older_than=600) == 1
    assert not old.exists()
    assert writer.commit() == BlobInfo(key, 9, 1)
    assert store.sweep_temp() == 0


def test_start_up_sweep_spares_writers_of_live_processes(store: FilesystemBlobStore) -> None:
    """Processes sharing a store: a starting one removes only dead writers' files."""
    dead = (
        "import os, sys\n"
        "from openglacier.storage.blobs.filesystem import FilesystemBlobStore\n"
        "FilesystemBlobStore(sys.argv[1]).create(sys.argv[2]).write(b'x')\n"
        "os._exit(9)\n"
    )
    result = subprocess.run(  # noqa: PLW1510 - the exit status is the point
        [sys.executable, "-c", dead, str(store.root), new_blob_key()], capture_output=True
    )
    assert result.returncode == 9, result.stderr
    mine = store.create(new_blob_key())  # this (live) process's writer
    mine.write(b"in flight")
    (dead_name,) = [n for n in _temp_files(store) if f".{os.getpid()}@" not in n]
    parts = dead_name.split(".")
    host = parts[1].split("@")[1]
    alive = ".".join([new_blob_key(), f"1@{host}", parts[2], parts[3]])
    (store.root / "tmp" / alive).write_bytes(b"pid 1 is alive")
    assert store.sweep_temp(older_than=3600) == 1
    assert dead_name not in _temp_files(store)
    assert len(_temp_files(store)) == 2  # ours and pid 1's stay
    mine.commit()


def test_fresh_store_creates_its_directories(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    store = FilesystemBlobStore(root)
    assert (root / "objects").is_dir()
    assert (root / "tmp").is_dir()
    assert store.sweep_temp() == 0
    FilesystemBlobStore(root).close()  # reopening is fine


# --- durability steps and failure paths -------------------------------------


def test_fsyncs_new_directories_and_parents(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real = fs_module._fsync_dir

    def recording(path: str) -> None:
        synced.append(path)
        real(path)

    monkeypatch.setattr(fs_module, "_fsync_dir", recording)
    objects = str(store.root / "objects")
    key = "abcd" + "1" * 28
    put_blob(store, key, [b"1"])
    leaf = f"{objects}/ab/cd"
    # New ab (and its parent), new ab/cd (and its parent), then the blob's entry.
    assert synced == [f"{objects}/ab", objects, leaf, f"{objects}/ab", leaf]
    synced.clear()
    put_blob(store, "abcd" + "2" * 28, [b"2"])
    assert synced == [leaf]
    synced.clear()
    store.delete(key)
    assert synced == [leaf]


def test_failed_directory_fsync_leaves_nothing(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_blob_key()
    store.create(new_blob_key()).abort()  # nothing to do with the failure
    writer = store.create(key)
    writer.write(b"w" * 1000)

    def broken(path: str) -> None:
        raise OSError(errno.EIO, "simulated I/O error", path)

    monkeypatch.setattr(fs_module, "_fsync_dir", broken)
    with pytest.raises(StorageError, match="simulated"):
        writer.commit()
    monkeypatch.undo()
    assert store.stat(key) is None
    assert list(store.keys()) == []
    assert _temp_files(store) == []
    writer.abort()


def test_failed_file_fsync_leaves_nothing(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_blob_key()
    writer = store.create(key)
    writer.write(b"w" * 1000)

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "simulated fsync failure")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(StorageError, match="simulated"):
        writer.commit()
    monkeypatch.undo()
    assert store.stat(key) is None
    assert _temp_files(store) == []
    with pytest.raises(BlobWriterClosedError):
        writer.commit()


def test_failed_write_closes_the_writer(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = store.create(new_blob_key())
    writer.write(b"ok")

    def full(fd: int, view: memoryview) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fs_module, "_write_all", full)
    with pytest.raises(StorageError, match="No space"):
        writer.write(b"x" * MIB)
    monkeypatch.undo()
    with pytest.raises(BlobWriterClosedError):
        writer.write(b"more")
    with pytest.raises(BlobWriterClosedError):
        writer.commit()
    writer.abort()
    assert _temp_files(store) == []


def test_without_hard_links_rename_is_used(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    key = new_blob_key()
    assert put_blob(store, key, [b"renamed"]) == BlobInfo(key, 7, 1)
    with pytest.raises(BlobAlreadyExistsError):
        put_blob(store, key, [b"again"])
    assert b"".join(store.open(key)) == b"renamed"
    assert _temp_files(store) == []


def test_duplicate_commit_removes_its_temp_file(store: FilesystemBlobStore) -> None:
    key = new_blob_key()
    put_blob(store, key, [b"one"])
    with pytest.raises(BlobAlreadyExistsError):
        put_blob(store, key, [b"two"])
    assert _temp_files(store) == []


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_no_descriptor_leaks(store: FilesystemBlobStore) -> None:
    key = new_blob_key()
    put_blob(store, key, [b"r" * (2 * MIB)])
    before = _open_fds()
    for _ in range(20):
        store.open(key)  # never iterated
        reader = store.open(key)
        next(reader)  # partly read
        list(store.open(key, 5, MIB + 5))  # exhausted
        store.create(new_blob_key())  # dropped writer
        store.stat(key)
    del reader
    gc.collect()
    assert _open_fds() == before
    with store.open(key) as reader:
        next(reader)
    assert _open_fds() == before
    with pytest.raises(ValueError, match="closed"):
        next(reader)
    store.sweep_temp()


# --- scan (issue 12) -------------------------------------------------------


def test_scan_reports_the_file_mtime_and_skips_foreign_files(store: FilesystemBlobStore) -> None:
    key = new_blob_key()
    put_blob(store, key, [b"aged"])
    path = _blob_path(store, key)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    (path.parent / (key + "~")).write_bytes(b"editor backup")
    (path.parent / "lost+found").mkdir()
    (store.root / "objects" / "zz").mkdir()
    (entry,) = store.scan(None, 10)
    assert entry.key == key
    assert entry.modified_at.timestamp() == 1_000_000_000
    assert list(store.keys()) == [key]


# --- codecs: constant memory --------------------------------------------------


@pytest.mark.parametrize("codec", codec_params())
def test_writes_stream_in_constant_memory_with_every_codec(tmp_path: Path, codec: str) -> None:
    """However large the blob: about a chunk being filled, the chunks being
    encoded (codecs/stream.py MAX_IN_FLIGHT) and their frames, and the index."""
    store = FilesystemBlobStore(tmp_path / "mem", CODECS[codec])
    piece = mixed_payload(MIB + 4096, 3)  # not chunk-aligned, like ingest's batches
    key = new_blob_key()
    tracemalloc.start()
    try:
        writer = store.create(key)
        for _ in range(48):
            writer.write(piece)
        info = writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == 48 * len(piece)
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_sweep_while_writers_commit_and_abort(store: FilesystemBlobStore) -> None:
    """Writers of this and other processes commit or abort while a sweep runs:
    a temp file that vanishes between the directory listing and its stat is
    skipped, never an error (a maintenance pass of `serve --processes 2` hit
    exactly that)."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def churn() -> None:
        while not stop.is_set():
            writers = [store.create(new_blob_key()) for _ in range(20)]
            for n, writer in enumerate(writers):
                writer.write(b"x")
                if n % 2:
                    writer.commit()
                else:
                    writer.abort()

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and not failures:
            try:
                store.sweep_temp(older_than=600)
            except StorageError as exc:
                failures.append(exc)
    finally:
        stop.set()
        thread.join()
    assert failures == []
