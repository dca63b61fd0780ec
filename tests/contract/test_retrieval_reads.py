"""`read_range` over a real filesystem blob store (design 1.2: verified on read).

The archive is stored like a multipart upload completes: several segments of
1, 2 and 4 MiB and a short last one, each its own blob, with the leaf digests
computed by `TreeHasher`. On-disk damage must surface as IntegrityError for any
range that touches the damaged leaf, and nowhere else.
"""

from __future__ import annotations

import os
import random
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import cast

import pytest

from openglacier.domain.jobs.ranges import archive_leaves
from openglacier.domain.jobs.reads import (
    READ_WINDOW,
    WindowedRead,
    archive_read,
    blob_read,
    read_range,
)
from openglacier.errors import IntegrityError
from openglacier.ids import new_blob_key
from openglacier.records import Segment
from openglacier.storage.blobs import put_blob
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.blobs.format import CODEC_RAW, HEADER_LEN
from openglacier.treehash import MIB, TreeHasher, tree_hash
from support.codecs import CODECS

PART_SIZES = [MIB, 2 * MIB, 4 * MIB, 4 * MIB, 777_777]
SIZE = sum(PART_SIZES)
DATA = random.Random(7233).randbytes(SIZE)

# The damaged byte: inside the first 4 MiB segment (archive offset 3 MiB), in its
# leaf 2, i.e. archive leaf [5 MiB, 6 MiB).
DAMAGED_SEGMENT = 2
DAMAGED_PAYLOAD_OFFSET = 2 * MIB + 12_345
DAMAGED_LEAF = (5 * MIB, 6 * MIB - 1)


@pytest.fixture(params=["raw", "checked"])
def store(tmp_path: Path, request: pytest.FixtureRequest) -> FilesystemBlobStore:
    """Codec 0 (legacy blobs: the leaf digests are the only check) and codec 1
    (the default: the store checks each chunk's CRC32C before yielding it)."""
    return FilesystemBlobStore(tmp_path, CODECS[request.param])


@pytest.fixture
def segments(store: FilesystemBlobStore) -> list[Segment]:
    out: list[Segment] = []
    offset = 0
    for seq, size in enumerate(PART_SIZES):
        payload = DATA[offset : offset + size]
        hasher = TreeHasher()
        hasher.update(payload)
        key = new_blob_key()
        # Several writes per blob, as a streaming upload would do.
        put_blob(store, key, [payload[i : i + 300_000] for i in range(0, size, 300_000)])
        out.append(Segment("archive", seq, offset, size, key, hasher.leaves()))
        offset += size
    return out


def _boundary_points() -> list[int]:
    """Every MiB boundary (segment boundaries included) and its neighbours."""
    points = {SIZE - 1}
    for boundary in range(0, SIZE + 1, MIB):
        points.update(p for p in (boundary - 1, boundary, boundary + 1) if 0 <= p < SIZE)
    return sorted(points)


def _ranges() -> list[tuple[int, int]]:
    ranges = [(0, SIZE - 1), (0, 0), (SIZE - 1, SIZE - 1)]
    for p in _boundary_points():
        ranges += [(p, p), (p, min(p + MIB, SIZE - 1)), (p, min(p + 2 * MIB + 3, SIZE - 1))]
    rng = random.Random(9110)
    for _ in range(40):
        first = rng.randrange(SIZE)
        ranges.append((first, rng.randrange(first, SIZE)))
    return ranges


def _blob_file(store: FilesystemBlobStore, key: str) -> Path:
    (path,) = [p for p in store.root.rglob(key) if p.is_file()]
    return path


def _damage(store: FilesystemBlobStore, segments: list[Segment]) -> str:
    key = segments[DAMAGED_SEGMENT].blob_key
    with _blob_file(store, key).open("r+b") as f:
        f.seek(HEADER_LEN + DAMAGED_PAYLOAD_OFFSET)
        byte = f.read(1)
        f.seek(HEADER_LEN + DAMAGED_PAYLOAD_OFFSET)
        f.write(bytes([byte[0] ^ 0x40]))
    return key


def _drain(stream: Iterator[bytes], into: bytearray) -> None:
    for piece in stream:
        into += piece


def test_leaves_and_tree_hash(segments: list[Segment]) -> None:
    hasher = TreeHasher()
    hasher.update(DATA)
    assert archive_leaves(segments) == hasher.leaves()
    assert hasher.hexdigest() == tree_hash(DATA)


@pytest.mark.parametrize("verify", [True, False])
def test_read_range_returns_exact_bytes(
    store: FilesystemBlobStore, segments: list[Segment], verify: bool
) -> None:
    for first, last in _ranges():
        pieces = list(read_range(store, segments, first, last, verify=verify))
        assert b"".join(pieces) == DATA[first : last + 1], (first, last)
        assert all(0 < len(piece) <= MIB for piece in pieces)


def test_damaged_leaf_is_detected_only_where_read(
    store: FilesystemBlobStore, segments: list[Segment]
) -> None:
    key = _damage(store, segments)
    bad_first, bad_last = DAMAGED_LEAF
    failures = 0
    for first, last in _ranges():
        touches = first <= bad_last and last >= bad_first
        if not touches:
            assert b"".join(read_range(store, segments, first, last)) == DATA[first : last + 1]
            continue
        received = bytearray()
        with pytest.raises(IntegrityError) as caught:
            _drain(read_range(store, segments, first, last), received)
        assert f"blob {key}: leaf 2 " in caught.value.message
        # Nothing from the damaged leaf went out; everything before it did.
        assert received == DATA[first : max(first, bad_first)]
        failures += 1
    assert failures > 10


def test_damage_passes_unverified(store: FilesystemBlobStore, segments: list[Segment]) -> None:
    key = _damage(store, segments)
    if store.codecs.codec != CODEC_RAW:  # the store's own check catches it all the same
        with pytest.raises(IntegrityError, match=f"blob {key}: leaf 2 "):
            b"".join(read_range(store, segments, 0, SIZE - 1, verify=False))
        return
    got = b"".join(read_range(store, segments, 0, SIZE - 1, verify=False))
    damaged_at = segments[DAMAGED_SEGMENT].offset + DAMAGED_PAYLOAD_OFFSET
    assert got[damaged_at] == DATA[damaged_at] ^ 0x40
    assert got[:damaged_at] == DATA[:damaged_at]
    assert got[damaged_at + 1 :] == DATA[damaged_at + 1 :]


def test_truncated_blob_file(store: FilesystemBlobStore, segments: list[Segment]) -> None:
    last = segments[-1]
    path = _blob_file(store, last.blob_key)
    os.truncate(path, path.stat().st_size - 1)
    for verify in (True, False):
        with pytest.raises(IntegrityError):
            list(read_range(store, segments, SIZE - 10, SIZE - 1, verify=verify))
    assert b"".join(read_range(store, segments, 0, last.offset - 1)) == DATA[: last.offset]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_abandoned_read_closes_blob(store: FilesystemBlobStore, segments: list[Segment]) -> None:
    before = len(os.listdir("/proc/self/fd"))
    stream = read_range(store, segments, MIB, SIZE - 1)
    next(stream)
    assert len(os.listdir("/proc/self/fd")) == before + 1
    cast(Generator[bytes, None, None], stream).close()
    assert len(os.listdir("/proc/self/fd")) == before


# --- windowed reads (GetJobOutput: one cursor per download) -------------------


def _windows(body: WindowedRead, into: list[bytes] | None = None) -> list[bytes]:
    """Every window of `body`, joined; appended to `into` as they come."""
    cursor = body.open()
    got = [] if into is None else into
    try:
        while window := cursor.next():
            got.append(b"".join(window))
    finally:
        cursor.close()
    return got


@pytest.mark.parametrize("trust_checked", [False, True])
def test_windowed_archive_read_returns_exact_bytes(
    store: FilesystemBlobStore, segments: list[Segment], trust_checked: bool
) -> None:
    for first, last in _ranges():
        body = archive_read(store, segments, first, last, trust_checked=trust_checked)
        windows = _windows(body)
        assert b"".join(windows) == DATA[first : last + 1], (first, last)
        assert all(len(window) >= READ_WINDOW for window in windows[:-1])


@pytest.mark.parametrize("trust_checked", [False, True])
def test_windowed_read_stops_before_the_damaged_leaf(
    store: FilesystemBlobStore, segments: list[Segment], trust_checked: bool
) -> None:
    """Trusted or not, codec 0 (SHA-256) or codec 1 (the store's CRC32C): the
    window that reaches the damaged leaf fails, and nothing of it comes out."""
    key = _damage(store, segments)
    bad_first, _ = DAMAGED_LEAF
    got: list[bytes] = []
    with pytest.raises(IntegrityError) as caught:
        _windows(archive_read(store, segments, 0, SIZE - 1, trust_checked=trust_checked), got)
    assert f"blob {key}: leaf 2 " in caught.value.message
    assert b"".join(got) == DATA[: len(b"".join(got))]
    assert len(b"".join(got)) <= bad_first
    # A range that ends before the damaged leaf is read in full.
    assert b"".join(_windows(archive_read(store, segments, 0, bad_first - 1))) == DATA[:bad_first]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_window_cursor_holds_one_blob_open(
    store: FilesystemBlobStore, segments: list[Segment]
) -> None:
    before = len(os.listdir("/proc/self/fd"))
    cursor = archive_read(store, segments, 0, SIZE - 1).open()
    assert cursor.next()
    assert len(os.listdir("/proc/self/fd")) == before + 1
    cursor.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_windowed_blob_read_is_the_blob(
    store: FilesystemBlobStore, segments: list[Segment]
) -> None:
    key = segments[3].blob_key  # one 4 MiB blob read as a job output
    payload = DATA[segments[3].offset : segments[3].offset + segments[3].size]
    body = blob_read(store, key, 3, len(payload) - 2)
    assert b"".join(_windows(body)) == payload[3:-1]
