"""Blob codecs 1-4 (storage/blobs/format.py, codecs/): round trips and tampering.

Blobs are encoded in memory with the stores' own `PayloadEncoder` and read
back with their own `load_layout` and `PayloadReader` over the encoded bytes,
with small chunk sizes so many-chunk blobs stay small. The property every
damage test checks: a read returns exactly the payload, or raises
IntegrityError (MissingKeyError for a key the keyring lacks) before yielding
any byte of a chunk it could not check.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openglacier.errors import IntegrityError
from openglacier.keyring import Keyring, MissingKeyError
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.codecs.index import PREAMBLE_LEN, crc32c
from openglacier.storage.blobs.codecs.stream import (
    BlobLayout,
    PayloadEncoder,
    PayloadReader,
    load_layout,
)
from openglacier.storage.blobs.format import HEADER_LEN, BlobHeader, unpack_header
from support.codecs import KEYRING, OLD_KEYRING

KEY = "ab" * 16
OTHER_KEY = "cd" * 16
CHECKED = ["checked", "zstd", "aes", "zstd-aes"]
ENCRYPTED = ["aes", "zstd-aes"]


def config(codec: str, chunk_size: int = 16, keyring: Keyring = KEYRING) -> CodecConfig:
    level = 3 if codec.startswith("zstd") else None
    ring = keyring if codec.endswith("aes") else None
    return CodecConfig(level, ring, legacy_raw=codec == "raw", chunk_size=chunk_size)


def encode(cfg: CodecConfig, data: bytes, writes: Sequence[int] = (), key: str = KEY) -> bytes:
    """The blob bytes a store would write for `data`, written in pieces of `writes`."""
    body = bytearray()
    encoder = PayloadEncoder(cfg, key, body.extend)
    pos = 0
    for size in [*writes, len(data)]:
        encoder.write(memoryview(data[pos : pos + size]))
        pos = min(pos + size, len(data))
    header, index = encoder.finish()
    return header.pack() + bytes(body) + index


class _Source:
    def __init__(self, blob: bytes, offset: int) -> None:
        self.blob, self.offset = blob, offset

    def read(self, n: int) -> bytes:
        data = self.blob[self.offset : self.offset + n]
        if len(data) < n:
            raise IntegrityError("ended early")
        self.offset += n
        return data

    def close(self) -> None:
        pass


def layout_of(blob: bytes, key: str = KEY) -> BlobLayout:
    return load_layout(key, blob[:HEADER_LEN], len(blob), lambda a, b: blob[a:b])


def reader(
    blob: bytes,
    start: int = 0,
    end: int | None = None,
    keyring: Keyring | None = KEYRING,
    key: str = KEY,
) -> PayloadReader:
    layout = layout_of(blob, key)
    size = layout.header.payload_length
    stop = size if end is None else min(end, size)
    source = _Source(blob, layout.file_span(start, stop)[0]) if stop > start else None
    return PayloadReader(layout, keyring, start, stop, source)


def read(blob: bytes, start: int = 0, end: int | None = None, **kw: object) -> bytes:
    return b"".join(reader(blob, start, end, **kw))  # type: ignore[arg-type]


def payloads() -> st.SearchStrategy[bytes]:
    """Bytes that compress (repeats) mixed with bytes that do not."""
    return st.lists(
        st.one_of(st.binary(max_size=40), st.binary(min_size=1, max_size=3).map(lambda b: b * 20)),
        max_size=8,
    ).map(b"".join)


CODECS = st.sampled_from(["raw", *CHECKED])
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- round trips ------------------------------------------------------------------


@SLOW
@given(
    CODECS,
    st.integers(1, 40),
    payloads(),
    st.lists(st.integers(0, 50), max_size=6),
    st.data(),
)
def test_any_payload_any_writes_any_range(
    codec: str, chunk_size: int, data: bytes, writes: list[int], draw: st.DataObject
) -> None:
    blob = encode(config(codec, chunk_size), data, writes)
    start = draw.draw(st.integers(0, len(data)))
    end = draw.draw(st.integers(start, len(data) + 5))
    assert read(blob, start, end) == data[start:end]
    assert read(blob) == data
    r = reader(blob)
    assert r.checked == (codec != "raw")
    assert all(0 < len(piece) <= chunk_size for piece in r) or codec == "raw"


@pytest.mark.parametrize("codec", ["raw", *CHECKED])
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 48, 49, 100])
def test_chunk_boundary_sizes(codec: str, size: int) -> None:
    data = bytes(range(size)) * 1
    blob = encode(config(codec, 16), data)
    header = unpack_header(blob, KEY)
    assert header.payload_length == size
    assert header.chunk_count == -(-size // header.chunk_size)  # codec 0: always 1 MiB
    assert layout_of(blob).info.codec == config(codec).codec
    for start in range(0, size + 1, 7):
        for end in (start, start + 1, start + 16, size):
            assert read(blob, start, end) == data[start:end]


def test_codec_1_keeps_the_payload_verbatim_after_the_header() -> None:
    data = bytes(range(100))
    blob = encode(config("checked", 16), data)
    assert blob[HEADER_LEN : HEADER_LEN + 100] == data
    assert unpack_header(blob, KEY).codec_field == HEADER_LEN + 100


def test_zstd_stores_chunks_that_do_not_shrink_raw() -> None:
    data = b"a" * 64 + bytes(range(64))  # chunk 0 compresses, chunk 1 does not
    blob = encode(config("zstd", 64), data)
    index = layout_of(blob).index
    assert index is not None
    assert [index.entry(n)[2] for n in (0, 1)] == [0, 1]
    assert index.frame_span(0)[1] - HEADER_LEN < 64
    assert read(blob) == data


def test_encrypted_blobs_record_their_key_id_and_hide_the_payload() -> None:
    data = b"secret payload " * 10
    blob = encode(config("aes", 16), data)
    assert layout_of(blob).info.key_id == "k-new"
    assert b"secret" not in blob
    assert encode(config("aes", 16), data) != blob  # a fresh salt each time


# --- damage -------------------------------------------------------------------------


def read_until_error(blob: bytes, **kw: object) -> tuple[bytes, BaseException | None]:
    got = bytearray()
    try:
        for piece in reader(blob, **kw):  # type: ignore[arg-type]
            got += piece
    except IntegrityError as exc:
        return bytes(got), exc
    return bytes(got), None


DATA = bytes(range(256)) * 3 + b"z" * 200  # 968 bytes: 16 chunks of 64, the last 8
CS = 64


def frames_of(codec: str) -> tuple[bytes, BlobLayout]:
    blob = encode(config(codec, CS), DATA, [100, 3, 500])
    return blob, layout_of(blob)


@SLOW
@given(st.sampled_from(CHECKED), st.data())
def test_any_bit_flip_is_caught_or_harmless(codec: str, draw: st.DataObject) -> None:
    blob, _ = frames_of(codec)
    bit = draw.draw(st.integers(0, len(blob) * 8 - 1))
    damaged = bytearray(blob)
    damaged[bit // 8] ^= 1 << (bit % 8)
    try:
        got, error = read_until_error(bytes(damaged))
    except IntegrityError:
        return  # header or index: refused at open
    if error is None:
        assert got == DATA  # e.g. a zstd frame flag that changes nothing decoded
    else:
        assert DATA.startswith(got)  # nothing after the damage came out


@SLOW
@given(st.sampled_from(CHECKED), st.data())
def test_any_forged_index_entry_is_caught_or_harmless(codec: str, draw: st.DataObject) -> None:
    """A bit flipped in an index entry or the preamble, with the index CRC made
    to match again (no accident does that): refused at open, or the chunks it
    misdescribes fail when read; never a wrong byte returned."""
    blob, layout = frames_of(codec)
    first = layout.header.codec_field
    bit = draw.draw(st.integers(0, (len(blob) - 4 - first) * 8 - 1))
    damaged = bytearray(blob)
    damaged[first + bit // 8] ^= 1 << (bit % 8)
    _refresh_index_crc(damaged, KEY)
    try:
        got, error = read_until_error(bytes(damaged))
    except (IntegrityError, MissingKeyError):
        return  # refused at open (MissingKeyError: the flip changed the key id)
    assert DATA.startswith(got)
    assert error is not None or got == DATA


@pytest.mark.parametrize("codec", CHECKED)
@pytest.mark.parametrize("chunk", [0, 5, 15])
def test_a_damaged_frame_fails_that_chunk_only(codec: str, chunk: int) -> None:
    blob, layout = frames_of(codec)
    assert layout.index is not None
    start, end = layout.index.frame_span(chunk)
    damaged = bytearray(blob)
    damaged[(start + end) // 2] ^= 0x10
    got, error = read_until_error(bytes(damaged))
    assert error is not None
    assert f"blob {KEY}: leaf {chunk} (chunk {chunk})" in str(error)
    assert got == DATA[: chunk * CS]  # the damaged chunk's bytes never came out
    for other in {0, 5, 15} - {chunk}:  # the others still read
        piece = DATA[other * CS : (other + 1) * CS]
        assert read(bytes(damaged), other * CS, (other + 1) * CS) == piece


@pytest.mark.parametrize("codec", CHECKED)
def test_swapped_frames_are_caught(codec: str) -> None:
    data = bytes(range(64)) + bytes(range(64, 128))  # two chunks, same frame sizes
    blob = encode(config(codec, 64), data)
    layout = layout_of(blob)
    assert layout.index is not None
    (a, b), (c, d) = layout.index.frame_span(0), layout.index.frame_span(1)
    assert b - a == d - c
    swapped = blob[:a] + blob[c:d] + blob[a:b] + blob[d:]
    _, error = read_until_error(swapped)
    assert "chunk 0" in str(error)
    # Swapping the index entries too (a deliberate edit, with a fresh index CRC)
    # still fails: each chunk's check covers its number.
    entries = _entry_offset(layout, 0)
    both = bytearray(swapped)
    both[entries : entries + 24] = (
        swapped[entries + 12 : entries + 24] + swapped[entries : entries + 12]
    )
    _refresh_index_crc(both, KEY)
    _, error = read_until_error(bytes(both))
    assert "chunk 0" in str(error)


def _refresh_index_crc(blob: bytearray, key: str) -> None:
    offset = unpack_header(bytes(blob), key).codec_field
    body = bytes(blob[offset:-4])
    blob[-4:] = struct.pack("<I", crc32c(body, crc32c(key.encode())))


@pytest.mark.parametrize("codec", CHECKED)
def test_frames_spliced_from_another_blob_are_caught(codec: str) -> None:
    """Chunk 3 of another blob (frame and index entry, with a fresh index CRC)."""
    theirs_data = DATA[: 3 * CS] + DATA[3 * CS : 4 * CS][::-1] + DATA[4 * CS :]
    mine = encode(config(codec, CS), DATA)
    theirs = encode(config(codec, CS), theirs_data, key=OTHER_KEY)
    ours, their_layout = layout_of(mine), layout_of(theirs, OTHER_KEY)
    assert ours.index is not None
    assert their_layout.index is not None
    a, b = ours.index.frame_span(3)
    c, d = their_layout.index.frame_span(3)
    assert b - a == d - c  # chunk 3 does not compress in either
    spliced = bytearray(mine[:a] + theirs[c:d] + mine[b:])
    entry = _entry_offset(ours, 3)
    their_entry = _entry_offset(their_layout, 3)
    spliced[entry : entry + 12] = theirs[their_entry : their_entry + 12]
    _refresh_index_crc(spliced, KEY)
    got, error = read_until_error(bytes(spliced))
    assert "chunk 3" in str(error)
    assert got == DATA[: 3 * CS]


def _entry_offset(layout: BlobLayout, chunk: int) -> int:
    return layout.header.codec_field + PREAMBLE_LEN + len(layout.info.key_id or "") + 12 * chunk


@pytest.mark.parametrize("codec", CHECKED)
def test_a_blob_under_another_key_is_caught_at_open(codec: str) -> None:
    blob = encode(config(codec, CS), DATA)
    with pytest.raises(IntegrityError, match="chunk index checksum"):
        layout_of(blob, OTHER_KEY)


@pytest.mark.parametrize("codec", CHECKED)
@pytest.mark.parametrize("cut", ["mid-frame", "frame-boundary", "mid-index", "one-byte"])
def test_truncation_is_caught_at_open(codec: str, cut: str) -> None:
    blob, layout = frames_of(codec)
    assert layout.index is not None
    length = {
        "mid-frame": sum(layout.index.frame_span(4)) // 2,
        "frame-boundary": layout.index.frame_span(4)[1],
        "mid-index": layout.header.codec_field + 20,
        "one-byte": len(blob) - 1,
    }[cut]
    with pytest.raises(IntegrityError, match=r"truncated|index"):
        layout_of(blob[:length])


@pytest.mark.parametrize("codec", ENCRYPTED)
def test_truncation_to_a_chunk_boundary_with_a_rewritten_index_is_caught(codec: str) -> None:
    """An attacker who cuts the blob after chunk 9 and writes a consistent header
    and index (all unauthenticated) still fails: chunk 9 was sealed as not last."""
    blob, layout = frames_of(codec)
    assert layout.index is not None
    end = layout.index.frame_span(9)[1]
    header = layout.header
    new_header = BlobHeader(10 * CS, header.codec, 0, CS, end)
    id_len = len(layout.info.key_id or "")
    preamble = bytearray(blob[header.codec_field : header.codec_field + PREAMBLE_LEN + id_len])
    preamble[8:16] = (10).to_bytes(8, "little")
    entries = blob[header.codec_field + len(preamble) :][: 10 * 12]
    cut = bytearray(new_header.pack() + blob[HEADER_LEN:end] + preamble + entries + bytes(4))
    _refresh_index_crc(cut, KEY)
    assert read(bytes(cut), 0, 9 * CS) == DATA[: 9 * CS]  # untouched chunks still read
    got, error = read_until_error(bytes(cut))
    assert "chunk 9" in str(error)
    assert got == DATA[: 9 * CS]


@pytest.mark.parametrize("codec", CHECKED)
@given(offset=st.integers(0, 400))
@settings(max_examples=40, deadline=None)
def test_a_damaged_index_is_caught_at_open(codec: str, offset: int) -> None:
    blob, layout = frames_of(codec)
    at = layout.header.codec_field + offset % (len(blob) - layout.header.codec_field)
    damaged = bytearray(blob)
    damaged[at] ^= 0x04
    with pytest.raises(IntegrityError, match="chunk index"):
        layout_of(bytes(damaged))


@pytest.mark.parametrize("codec", ENCRYPTED)
def test_a_wrong_key_under_the_right_id_fails_every_chunk(codec: str) -> None:
    blob, _ = frames_of(codec)
    impostor = Keyring({"k-new": bytes(32)}, "k-new")
    got, error = read_until_error(blob, keyring=impostor)
    assert got == b""
    assert "AES-GCM tag" in str(error)


@pytest.mark.parametrize("codec", ENCRYPTED)
@pytest.mark.parametrize("keyring", [None, OLD_KEYRING], ids=["no-keyring", "other-keys"])
def test_a_missing_key_id_is_named(codec: str, keyring: Keyring | None) -> None:
    blob, _ = frames_of(codec)
    with pytest.raises(MissingKeyError) as caught:
        reader(blob, keyring=keyring)
    assert caught.value.key_id == "k-new"
    assert "\n" not in str(caught.value)
    assert "'k-new'" in str(caught.value)


def test_old_keys_still_read_after_rotation() -> None:
    blob = encode(config("zstd-aes", CS, OLD_KEYRING), DATA)
    assert layout_of(blob).info.key_id == "k-old"
    assert read(blob, keyring=KEYRING) == DATA  # current is k-new, k-old still there


@pytest.mark.parametrize("codec", ["zstd", "zstd-aes"])
@pytest.mark.parametrize("chunk", [0, 13])  # incompressible, compressible
def test_a_flipped_stored_raw_flag_is_caught(codec: str, chunk: int) -> None:
    """Caught by the index's own consistency check when the chunk is read (a
    stored-raw frame is exactly the chunk, a compressed one shorter), and behind
    that by the CRC or the AAD."""
    blob, layout = frames_of(codec)
    assert layout.index is not None
    assert layout.index.entry(chunk)[2] == (1 if chunk == 0 else 0)
    damaged = bytearray(blob)
    damaged[_entry_offset(layout, chunk) + 8] ^= 0x01
    _refresh_index_crc(damaged, KEY)
    got, error = read_until_error(bytes(damaged))
    assert f"chunk index entry {chunk} does not fit" in str(error)
    assert got == DATA[: chunk * CS]
    assert read(bytes(damaged), (chunk + 1) * CS) == DATA[(chunk + 1) * CS :]
