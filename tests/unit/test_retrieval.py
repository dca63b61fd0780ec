"""Archive retrieval (spec 2.26, 2.29, 3.5, 3.6, 4.4): ranges, windows, checksums.

Checksums are compared with an independent oracle: botocore's tree hash of the
bytes actually returned, and the alignment predicate copied from spec 3.5.
`read_range` is exercised here over an in-memory store that yields awkward chunk
sizes; tests/contract/test_retrieval_reads.py runs it over the filesystem store.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
from collections.abc import Generator, Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from botocore.utils import calculate_tree_hash
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from openglacier.domain.jobs import reads
from openglacier.domain.jobs.ranges import (
    OutputWindow,
    archive_leaves,
    output_checksum,
    parse_retrieval_range,
    plan_output,
    retrieval_tree_hash,
)
from openglacier.domain.jobs.reads import (
    FIRST_WINDOW,
    IDLE_REOPEN,
    READ_WINDOW,
    WindowCursor,
    archive_read,
    read_range,
    verify_range,
)
from openglacier.errors import IntegrityError, InvalidParameterValueException
from openglacier.ports import BlobStore
from openglacier.records import Segment
from openglacier.treehash import MIB

# --- the spec's reference predicates (spec 3.5), copied verbatim -----------


def spec_is_tree_hash_aligned(a: int, b: int, S: int) -> bool:  # noqa: N803
    MiB = 1 << 20  # noqa: N806
    if not (0 <= a <= b < S) or a % MiB:
        return False
    n = -(-S // MiB)  # chunks in the archive
    s = a // MiB  # first chunk of the range
    if b == S - 1:
        e = n  # range runs to the end of the archive
    elif (b + 1) % MiB == 0:
        e = (b + 1) // MiB
    else:
        return False
    length = e - s
    if e == n:  # tail ranges: smallest 2^L >= length must divide s
        L = (length - 1).bit_length()  # noqa: N806
        return s % (1 << L) == 0
    return length & (length - 1) == 0 and s % length == 0  # interior


def spec_is_megabyte_aligned(a: int, b: int, size: int) -> bool:
    return 0 <= a <= b < size and a % MIB == 0 and ((b + 1) % MIB == 0 or b == size - 1)


def botocore_tree_hash(data: bytes) -> str:
    return str(calculate_tree_hash(io.BytesIO(data)))


def leaves_of(data: bytes) -> bytes:
    chunks = [data[i : i + MIB] for i in range(0, len(data), MIB)] or [b""]
    return b"".join(hashlib.sha256(c).digest() for c in chunks)


# --- spec 3.2 multipart vector data (6.5 MiB) ------------------------------

S65 = 6815744
DATA65 = (bytes(range(251)) * (S65 // 251 + 1))[:S65]  # bytes(i % 251 for i in range(S65))
LEAVES65 = leaves_of(DATA65)
WHOLE65 = "8bcaa7b4b8f991ca140f306627f2c4e84601364cde8e054b6e0924433ca7482f"
PART1_65 = "9e217b1ceb8db81071f9c6e4a2bf0401a83491d10751ce858a2628f5d699dbdb"  # [2 MiB, 4 MiB)
PART3_65 = "c9fed994db0d8e2e5b7d603f40c18613d1f545288928a52ee9d2b2e2375f7160"  # [6 MiB, end)
ONE_TO_THREE_65 = "b75aca8a18ab725e6da28ced838ac9be59756d81fd6899b0d853849b43f7117e"
FOUR_TO_END_65 = "3e997f13ddc355e8a55035672d60ba90275ece6485044b3616a0966e2b895fc1"

# --- parse_retrieval_range (spec 2.26, 4.4) --------------------------------


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        (None, 10, (0, 9)),
        (None, 1, (0, 0)),
        (None, S65, (0, S65 - 1)),
        ("0-0", 1, (0, 0)),
        ("0-9", 10, (0, 9)),
        ("0-1048575", 3 * MIB, (0, MIB - 1)),
        ("1048576-3145727", 3 * MIB, (MIB, 3 * MIB - 1)),
        ("0-6815743", S65, (0, S65 - 1)),
        ("2097152-6815743", S65, (2 * MIB, S65 - 1)),
        ("6291456-6815743", S65, (6 * MIB, S65 - 1)),
        ("1048576-3145727", S65, (MIB, 3 * MIB - 1)),  # megabyte aligned only: accepted
        ("0001048576-02097151", 3 * MIB, (MIB, 2 * MIB - 1)),  # leading zeros are decimal
    ],
)
def test_retrieval_range_accepted(value: str | None, size: int, expected: tuple[int, int]) -> None:
    assert parse_retrieval_range(value, size) == expected


@pytest.mark.parametrize(
    ("value", "size", "why"),
    [
        ("", 3 * MIB, "Expected"),
        ("abc", 3 * MIB, "Expected"),
        ("0-", 3 * MIB, "Expected"),
        ("-1048575", 3 * MIB, "Expected"),
        ("0 - 1048575", 3 * MIB, "Expected"),
        (" 0-1048575", 3 * MIB, "Expected"),
        ("0-1048575 ", 3 * MIB, "Expected"),
        ("+0-1048575", 3 * MIB, "Expected"),
        ("0x0-1048575", 3 * MIB, "Expected"),
        ("0-1048575-5", 3 * MIB, "Expected"),
        ("0.0-1048575", 3 * MIB, "Expected"),
        ("\u0660-1048575", 3 * MIB, "Expected"),  # ARABIC-INDIC DIGIT ZERO
        ("bytes=0-1048575", 3 * MIB, "Expected"),
        ("2097152-1048575", 3 * MIB, "greater than the end"),
        ("0-3145728", 3 * MIB, "beyond the last byte"),
        ("0-10", 10, "beyond the last byte"),
        ("0-" + "9" * 5000, 3 * MIB, "beyond the last byte"),  # no int() digit-limit crash
        ("1-1048575", 3 * MIB, "megabyte aligned"),
        ("0-1048574", 3 * MIB, "megabyte aligned"),
        ("0-1048576", 3 * MIB, "megabyte aligned"),
        ("1048575-2097151", 3 * MIB, "megabyte aligned"),
        ("0-5", 10, "megabyte aligned"),
        ("0-6815742", S65, "megabyte aligned"),
    ],
)
def test_retrieval_range_rejected(value: str, size: int, why: str) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        parse_retrieval_range(value, size)
    assert caught.value.message.startswith(f"Invalid RetrievalByteRange: {value}.")
    assert why in caught.value.message
    assert caught.value.http_status == 400


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 50 * MIB),
    a=st.one_of(st.integers(0, 50).map(lambda k: k * MIB), st.integers(0, 50 * MIB)),
    b=st.one_of(st.integers(1, 50).map(lambda k: k * MIB - 1), st.integers(0, 50 * MIB)),
)
def test_retrieval_range_matches_spec_predicate(size: int, a: int, b: int) -> None:
    ok = spec_is_megabyte_aligned(a, b, size)
    if ok:
        assert parse_retrieval_range(f"{a}-{b}", size) == (a, b)
    else:
        with pytest.raises(InvalidParameterValueException):
            parse_retrieval_range(f"{a}-{b}", size)


# --- plan_output (spec 2.29) ------------------------------------------------


@pytest.mark.parametrize(
    ("header", "total", "first", "last"),
    [
        ("bytes=0-99", 1000, 0, 99),
        ("bytes=0-0", 1000, 0, 0),
        ("bytes=999-999", 1000, 999, 999),
        ("bytes=0-999", 1000, 0, 999),  # the whole output, still 206 [G example]
        ("bytes=10-20", 1000, 10, 20),
        ("bytes=500-", 1000, 500, 999),  # open end
        ("bytes=0-", 1000, 0, 999),
        ("bytes=-100", 1000, 900, 999),  # suffix
        ("bytes=-1", 1000, 999, 999),
        ("bytes=-1000", 1000, 0, 999),
        ("bytes=-5000", 1000, 0, 999),  # suffix longer than the output: all of it
        ("bytes=900-5000", 1000, 900, 999),  # clamped
        ("bytes=0-99999999999999999999999999999999999999999999", 1000, 0, 999),
        ("BYTES=1-2", 1000, 1, 2),  # range units are case-insensitive
        ("bytes = 1-2", 1000, 1, 2),
        ("bytes=1-2,", 1000, 1, 2),  # empty list elements are skipped
        ("bytes= 1-2 ", 1000, 1, 2),
        ("bytes=0-1023", 8388608, 0, 1023),  # the guide's example
        ("bytes=0-1048575", 8388608, 0, 1048575),
        ("bytes=0-0", 1, 0, 0),
    ],
)
def test_plan_output_ranges(header: str, total: int, first: int, last: int) -> None:
    window = plan_output(header, total)
    assert window == OutputWindow(206, first, last, f"bytes {first}-{last}/{total}")
    assert window.length == last - first + 1


@pytest.mark.parametrize("total", [1, 1000, 235812776])
def test_plan_output_without_range(total: int) -> None:
    window = plan_output(None, total)
    assert window == OutputWindow(200, 0, total - 1, None)
    assert window.length == total


@pytest.mark.parametrize(
    "header",
    [
        "bytes 0-4194303/235812776",  # boto3 #2077: Content-Range syntax sent as Range
        "items=0-1",
        "garbage",
        "",
        "bytes=",
        "bytes=,",
        "bytes=-",
        "bytes=a-b",
        "bytes=0x10-20",
        "bytes=--1",
        "bytes=1--2",
        "bytes=0-1 2",
        "bytes=5-2",  # last < first: invalid (RFC 9110 14.1.2), so ignored
        "bytes=1-2,x",  # one invalid element invalidates the header
        "bytes=1-2,5-2",
        "0-99",
        "=0-99",
        "bytes=+1-2",
        "bytes=\u0661-2",
    ],
)
def test_plan_output_ignores_invalid_range(header: str) -> None:
    assert plan_output(header, 1000) == OutputWindow(200, 0, 999, None)


@pytest.mark.parametrize(
    ("header", "total"),
    [
        ("bytes=1000-1001", 1000),
        ("bytes=1000-", 1000),
        ("bytes=5000-6000", 1000),
        ("bytes=-0", 1000),  # empty suffix: nothing to send, start would be the end
        ("bytes=99999999999999999999999999999999999999999999-", 1000),
        ("bytes=1-1", 1),
        ("bytes=8388608-12582911", 5242880),  # boto #2510, verbatim
    ],
)
def test_plan_output_start_beyond_end(header: str, total: int) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        plan_output(header, total)
    assert caught.value.message == (
        f"The start of the range is larger than size of retrieved data: {header}"
    )


def test_plan_output_boto2510_message_verbatim() -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        plan_output("bytes=8388608-12582911", 5242880)
    assert caught.value.message == (
        "The start of the range is larger than size of retrieved data: bytes=8388608-12582911"
    )


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "bytes=0-1, -5", "bytes=0-,5-6", "bytes=0-1,0-1"]
)
def test_plan_output_rejects_multiple_ranges(header: str) -> None:
    with pytest.raises(InvalidParameterValueException, match="Multiple byte ranges"):
        plan_output(header, 1000)


@pytest.mark.parametrize("total", [1, 4 * MIB, 4 * MIB + 1, 10 * MIB + 5, 235812776])
def test_plan_output_boto2_fixed_chunks(total: int) -> None:
    """boto 2's download_to_file asks for fixed 4 MiB chunks; the last overruns."""
    chunk = 4 * MIB
    covered = 0
    for i in range(-(-total // chunk)):
        header = f"bytes={i * chunk}-{(i + 1) * chunk - 1}"
        window = plan_output(header, total)
        assert window.status == 206
        assert window.first == covered
        assert window.last == min((i + 1) * chunk, total) - 1
        assert window.content_range == f"bytes {window.first}-{window.last}/{total}"
        covered += window.length
    assert covered == total


# --- spec 3.5 alignment examples (6.5 MiB archive, n = 7) -------------------


@pytest.mark.parametrize(
    ("a", "b", "aligned"),
    [
        (0, S65 - 1, True),  # [0, S-1]
        (2 * MIB, 4 * MIB - 1, True),  # [2 MiB, 4 MiB-1]
        (1 * MIB, 3 * MIB - 1, False),  # [1 MiB, 3 MiB-1]: megabyte aligned only
        (4 * MIB, S65 - 1, True),  # [4 MiB, S-1]
        (6 * MIB, S65 - 1, True),  # [6 MiB, S-1]
        (3 * MIB, 4 * MIB - 1, True),  # [3 MiB, 4 MiB-1]
    ],
)
def test_spec_alignment_examples(a: int, b: int, aligned: bool) -> None:
    assert spec_is_tree_hash_aligned(a, b, S65) is aligned
    assert spec_is_megabyte_aligned(a, b, S65)
    expected = botocore_tree_hash(DATA65[a : b + 1]) if aligned else None
    assert retrieval_tree_hash(LEAVES65, a, b, S65) == expected
    # As a retrieval range downloaded whole, and as a download range of a
    # whole-archive job.
    whole_window = plan_output(None, b - a + 1)
    assert output_checksum(LEAVES65, S65, (a, b), whole_window, retrieved_aligned=aligned) == (
        expected
    )
    window = plan_output(f"bytes={a}-{b}", S65)
    assert output_checksum(LEAVES65, S65, (0, S65 - 1), window, retrieved_aligned=True) == (
        expected
    )


def test_spec_vectors_as_job_checksums() -> None:
    """Spec 3.2's 6.5 MiB vectors as DescribeJob and GetJobOutput checksums."""
    whole = (0, S65 - 1)
    assert retrieval_tree_hash(LEAVES65, 0, S65 - 1, S65) == WHOLE65

    def checksum(retrieved: tuple[int, int], header: str | None) -> str | None:
        total = retrieved[1] - retrieved[0] + 1
        aligned = retrieval_tree_hash(LEAVES65, *retrieved, S65) is not None
        return output_checksum(
            LEAVES65, S65, retrieved, plan_output(header, total), retrieved_aligned=aligned
        )

    # Whole-archive job: full download, aligned and unaligned download ranges.
    assert checksum(whole, None) == WHOLE65
    assert checksum(whole, "bytes=0-6815743") == WHOLE65
    assert checksum(whole, "bytes=0-99999999") == WHOLE65  # clamped first, then checked
    assert checksum(whole, "bytes=2097152-4194303") == PART1_65
    assert checksum(whole, "bytes=1048576-3145727") is None  # would be b75aca8a...
    assert botocore_tree_hash(DATA65[MIB : 3 * MIB]) == ONE_TO_THREE_65
    assert checksum(whole, "bytes=4194304-6815743") == FOUR_TO_END_65
    assert checksum(whole, "bytes=4194304-") == FOUR_TO_END_65
    assert checksum(whole, "bytes=4194304-8388607") == FOUR_TO_END_65  # boto 2's last chunk
    assert checksum(whole, "bytes=6291456-") == PART3_65
    assert checksum(whole, "bytes=-524288") == PART3_65
    assert checksum(whole, "bytes=0-1023") is None
    # Aligned retrieval range [2 MiB, 4 MiB): relative download ranges.
    part1 = (2 * MIB, 4 * MIB - 1)
    assert retrieval_tree_hash(LEAVES65, *part1, S65) == PART1_65
    assert checksum(part1, None) == PART1_65
    assert checksum(part1, "bytes=0-1048575") == botocore_tree_hash(DATA65[2 * MIB : 3 * MIB])
    assert checksum(part1, "bytes=1048576-") == botocore_tree_hash(DATA65[3 * MIB : 4 * MIB])
    assert checksum(part1, "bytes=1-") is None
    # Aligned tail retrieval range [4 MiB, end).
    tail = (4 * MIB, S65 - 1)
    assert checksum(tail, None) == FOUR_TO_END_65
    assert checksum(tail, "bytes=2097152-") == PART3_65
    assert checksum(tail, "bytes=0-2097151") == botocore_tree_hash(DATA65[4 * MIB : 6 * MIB])
    # Megabyte-aligned only [1 MiB, 3 MiB): never a checksum, not even in full.
    unaligned = (MIB, 3 * MIB - 1)
    assert retrieval_tree_hash(LEAVES65, *unaligned, S65) is None
    assert checksum(unaligned, None) is None
    assert checksum(unaligned, "bytes=0-1048575") is None
    assert checksum(unaligned, "bytes=1048576-") is None


def test_retrieved_aligned_flag_is_respected() -> None:
    window = plan_output(None, S65)
    assert output_checksum(LEAVES65, S65, (0, S65 - 1), window, retrieved_aligned=False) is None
    # A flag claiming alignment for an unaligned R is not trusted either.
    window = plan_output(None, 2 * MIB)
    assert (
        output_checksum(LEAVES65, S65, (MIB, 3 * MIB - 1), window, retrieved_aligned=True) is None
    )


def test_output_checksum_rejects_window_outside_range() -> None:
    with pytest.raises(ValueError, match="outside retrieved range"):
        output_checksum(
            LEAVES65,
            S65,
            (0, MIB - 1),
            OutputWindow(206, 0, MIB, "bytes 0-1048576/1048576"),
            retrieved_aligned=True,
        )


def test_stored_leaves_must_match_archive_size() -> None:
    with pytest.raises(IntegrityError, match="leaf digests"):
        retrieval_tree_hash(LEAVES65[:-32], 0, S65 - 1, S65)
    with pytest.raises(IntegrityError, match="leaf digests"):
        output_checksum(
            LEAVES65 + LEAVES65[:32],
            S65,
            (0, S65 - 1),
            plan_output(None, S65),
            retrieved_aligned=True,
        )


# --- exhaustive small archives ---------------------------------------------


def _mib_ranges(lo: int, hi: int, size: int) -> Iterator[tuple[int, int]]:
    """Every megabyte-aligned [a, b] with lo <= a <= b <= hi (absolute)."""
    starts = range(lo, hi + 1, MIB)
    for a in starts:
        ends = [e - 1 for e in range(a + MIB, hi + 2, MIB)]
        if hi == size - 1 and hi not in ends:
            ends.append(hi)
        yield from ((a, b) for b in ends)


@pytest.mark.parametrize("size", [1, MIB - 1, MIB, MIB + 1, 3 * MIB, S65, 8 * MIB, 9 * MIB - 7])
def test_output_checksum_exhaustive(size: int) -> None:
    data = DATA65[:size] if size <= S65 else (DATA65 * 2)[:size]
    leaves = leaves_of(data)
    reference: dict[tuple[int, int], str] = {}

    def oracle(a: int, b: int) -> str:
        if (a, b) not in reference:
            reference[a, b] = botocore_tree_hash(data[a : b + 1])
        return reference[a, b]

    checked = 0
    for r0, r1 in _mib_ranges(0, size - 1, size):
        r_aligned = spec_is_tree_hash_aligned(r0, r1, size)
        total = r1 - r0 + 1
        assert retrieval_tree_hash(leaves, r0, r1, size) == (oracle(r0, r1) if r_aligned else None)
        downloads = [(d0 - r0, d1 - r0) for d0, d1 in _mib_ranges(r0, r1, size)]
        downloads += [(0, total - 2), (1, total - 1), (0, 0)] if total > 1 else []
        for d0, d1 in downloads:
            window = plan_output(f"bytes={d0}-{d1}", total)
            a, b = r0 + window.first, r0 + window.last
            expected = oracle(a, b) if r_aligned and spec_is_tree_hash_aligned(a, b, size) else None
            got = output_checksum(leaves, size, (r0, r1), window, retrieved_aligned=r_aligned)
            assert got == expected, (size, (r0, r1), (d0, d1))
            checked += 1
    assert checked > 0


# --- property: random archives up to 40 MiB ---------------------------------

MAX_SIZE = 40 * MIB


@pytest.fixture(scope="module")
def random_archive() -> tuple[bytes, bytes]:
    """One random 40 MiB buffer (archives are its prefixes) and its full leaves."""
    data = random.Random(20120601).randbytes(MAX_SIZE)
    return data, leaves_of(data)


def _prefix_leaves(full: tuple[bytes, bytes], size: int) -> bytes:
    data, leaves = full
    whole = size // MIB
    tail = hashlib.sha256(data[whole * MIB : size]).digest() if size % MIB else b""
    return leaves[: whole * 32] + tail


_sizes = st.one_of(
    st.integers(1, MAX_SIZE),
    st.integers(1, 40).map(lambda k: k * MIB),
    st.integers(1, 39).map(lambda k: k * MIB + 1),  # within the MAX_SIZE buffer
    st.integers(1, 40).map(lambda k: k * MIB - 1),
    st.just(1),
)


@st.composite
def _leaf_span(draw: st.DrawFn, s: int, e: int) -> tuple[int, int]:
    """Leaves [x, y) within [s, e): often a tree node, sometimes anything."""
    kind = draw(st.sampled_from(["all", "node", "any"]))
    if kind == "all":
        return s, e
    if kind == "node":
        level = draw(st.integers(0, max(0, (e - s - 1).bit_length())))
        width = 1 << level
        first_node = -(-s // width)
        last_node = (e - 1) // width
        if first_node <= last_node:
            j = draw(st.integers(first_node, last_node))
            return j * width, min((j + 1) * width, e)
    x = draw(st.integers(s, e - 1))
    return x, draw(st.integers(x + 1, e))


def _to_bytes(x: int, y: int, size: int) -> tuple[int, int]:
    return x * MIB, min(y * MIB, size) - 1


@st.composite
def _cases(draw: st.DrawFn) -> tuple[int, tuple[int, int], str | None]:
    size = draw(_sizes)
    n = -(-size // MIB)
    r0, r1 = _to_bytes(*draw(_leaf_span(0, n)), size)
    total = r1 - r0 + 1
    form = draw(st.sampled_from(["none", "closed", "open", "overrun", "suffix", "bytes"]))
    if form == "none":
        return size, (r0, r1), None
    if form == "bytes":  # arbitrary byte offsets: almost never aligned
        d0 = draw(st.integers(0, total - 1))
        return size, (r0, r1), f"bytes={d0}-{draw(st.integers(d0, total + MIB))}"
    a, b = _to_bytes(*draw(_leaf_span(r0 // MIB, -(-(r1 + 1) // MIB))), size)
    d0, d1 = a - r0, b - r0
    if draw(st.booleans()):  # nudge one end off its boundary
        d0, d1 = draw(st.sampled_from([(d0 + 1, d1), (d0, d1 - 1), (d0, d1 + 1)]))
        assume(0 <= d0 <= d1)
    if form == "open":
        return size, (r0, r1), f"bytes={d0}-"
    if form == "overrun":  # boto 2: a fixed chunk that may run past the end
        return size, (r0, r1), f"bytes={d0}-{d0 + 4 * MIB - 1}"
    if form == "suffix":
        return size, (r0, r1), f"bytes=-{total - d0}"
    return size, (r0, r1), f"bytes={d0}-{d1}"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_cases())
def test_output_checksum_matches_botocore(
    random_archive: tuple[bytes, bytes], case: tuple[int, tuple[int, int], str | None]
) -> None:
    size, (r0, r1), header = case
    data = random_archive[0]
    leaves = _prefix_leaves(random_archive, size)
    total = r1 - r0 + 1
    try:
        window = plan_output(header, total)
    except InvalidParameterValueException:
        assume(False)  # the start lies beyond the output: covered by the table tests
    a, b = r0 + window.first, r0 + window.last
    assert 0 <= window.first <= window.last < total
    r_aligned = spec_is_tree_hash_aligned(r0, r1, size)
    assert (retrieval_tree_hash(leaves, r0, r1, size) is not None) is r_aligned
    got = output_checksum(leaves, size, (r0, r1), window, retrieved_aligned=r_aligned)
    if r_aligned and spec_is_tree_hash_aligned(a, b, size):
        event("checksum")
        assert got == botocore_tree_hash(data[a : b + 1])
    else:
        event("no checksum")
        assert got is None


# --- archive_leaves and segment layout --------------------------------------


def _segments(data: bytes, sizes: list[int]) -> list[Segment]:
    out, offset = [], 0
    for seq, size in enumerate(sizes):
        key = f"{seq:016x}"
        out.append(Segment("a", seq, offset, size, key, leaves_of(data[offset : offset + size])))
        offset += size
    assert offset == len(data)
    return out


def test_archive_leaves_concatenates_segments() -> None:
    segments = _segments(DATA65, [2 * MIB, 2 * MIB, 2 * MIB, S65 - 6 * MIB])
    assert archive_leaves(segments) == LEAVES65
    assert retrieval_tree_hash(archive_leaves(segments), 0, S65 - 1, S65) == WHOLE65


def _replace(segment: Segment, **changes: Any) -> Segment:
    fields = {**segment.__dict__, **changes}
    return Segment(**fields)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s[1:], "start at byte"),
        (lambda s: [s[0], s[2], s[1], s[3]], "not after the previous"),
        (lambda s: [s[0], *s[2:]], "not after the previous"),
        (lambda s: [_replace(s[0], size=2 * MIB - 1), *s[1:]], "whole number of MiB"),
        (lambda s: [_replace(s[0], leaf_hashes=s[0].leaf_hashes[:32]), *s[1:]], "leaf digests"),
        (lambda s: [], "no segments"),
    ],
)
def test_inconsistent_layout_is_integrity_error(mutate: Any, message: str) -> None:
    segments = mutate(_segments(DATA65, [2 * MIB, 2 * MIB, 2 * MIB, S65 - 6 * MIB]))
    with pytest.raises(IntegrityError, match=message):
        archive_leaves(segments)


# --- read_range over an in-memory store with awkward chunking ---------------


class MemoryReader:
    """A BlobReader over an iterator of chunks, with the store's `checked`."""

    def __init__(self, chunks: Iterator[bytes], checked: bool) -> None:
        self.chunks = chunks
        self.checked = checked

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self.chunks)

    def close(self) -> None:
        cast(Generator[bytes, None, None], self.chunks).close()


class MemoryBlobs:
    """Just enough of BlobStore: `open` yields `chunk`-sized pieces.

    Keys in `checked` get readers that report `checked = True` and, like a
    store with per-chunk checksums, raise IntegrityError instead of yielding a
    chunk that overlaps a byte listed in `damaged[key]` (payload offsets).
    `checked` readers that do not notice damage are modelled by damaging the
    bytes in `blobs` itself."""

    def __init__(self, chunk: int) -> None:
        self.blobs: dict[str, bytes] = {}
        self.chunk = chunk
        self.opened: list[tuple[str, int, int | None]] = []
        self.closed = 0
        self.checked: set[str] = set()
        self.damaged: dict[str, set[int]] = {}

    def open(self, key: str, start: int = 0, end: int | None = None) -> MemoryReader:
        if key not in self.blobs:
            raise FileNotFoundError(key)  # BlobStore.open's answer for a missing blob
        self.opened.append((key, start, end))
        return MemoryReader(self._chunks(key, start, end), key in self.checked)

    def _chunks(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        data = self.blobs[key]
        stop = len(data) if end is None else min(end, len(data))
        try:
            for i in range(start, stop, self.chunk):
                j = min(i + self.chunk, stop)
                if any(i <= d < j for d in self.damaged.get(key, ())):
                    raise IntegrityError(f"blob {key}: chunk at {i} fails its checksum")
                yield data[i:j]
        finally:
            self.closed += 1


def _memory_archive(chunk: int, sizes: list[int]) -> tuple[MemoryBlobs, list[Segment], bytes]:
    size = sum(sizes)
    data = (DATA65 * (size // S65 + 1))[:size]
    segments = _segments(data, sizes)
    store = MemoryBlobs(chunk)
    for segment in segments:
        store.blobs[segment.blob_key] = data[segment.offset : segment.offset + segment.size]
    return store, segments, data


SIZES = [MIB, 2 * MIB, 4 * MIB, 300_001]


@pytest.mark.parametrize("chunk", [4093, 300_001, MIB, MIB + 17, 8 * MIB])
@pytest.mark.parametrize("verify", [True, False])
def test_read_range_memory(chunk: int, verify: bool) -> None:
    store, segments, data = _memory_archive(chunk, SIZES)
    size = len(data)
    ranges = [(0, size - 1), (0, 0), (size - 1, size - 1), (MIB - 1, MIB), (3 * MIB - 5, 7 * MIB)]
    for first, last in ranges:
        pieces = list(read_range(cast(BlobStore, store), segments, first, last, verify=verify))
        assert b"".join(pieces) == data[first : last + 1]
        assert all(pieces)
        assert max(map(len, pieces)) <= max(chunk, MIB)
    assert store.closed == len(store.opened)


def test_read_range_single_byte_chunks() -> None:
    store, segments, data = _memory_archive(1, SIZES)
    for first, last in [(MIB - 3, MIB + 2), (7 * MIB - 2, 7 * MIB + 1)]:
        pieces = list(read_range(cast(BlobStore, store), segments, first, last, verify=False))
        assert pieces == [data[i : i + 1] for i in range(first, last + 1)]


def test_read_range_verify_reads_whole_edge_leaves() -> None:
    store, segments, data = _memory_archive(MIB, SIZES)
    blobs = cast(BlobStore, store)
    assert (
        b"".join(read_range(blobs, segments, MIB + 5, 3 * MIB + 5)) == data[MIB + 5 : 3 * MIB + 6]
    )
    assert store.opened == [(segments[1].blob_key, 0, 2 * MIB), (segments[2].blob_key, 0, MIB)]
    store.opened.clear()
    list(read_range(blobs, segments, MIB + 5, 3 * MIB + 5, verify=False))
    assert store.opened == [(segments[1].blob_key, 5, 2 * MIB), (segments[2].blob_key, 0, 6)]
    store.opened.clear()
    list(read_range(blobs, segments, 7 * MIB + 2, 7 * MIB + 2))  # inside the short last leaf
    assert store.opened == [(segments[3].blob_key, 0, 300_001)]


def _drain(stream: Iterator[bytes], into: bytearray) -> None:
    for piece in stream:
        into += piece


def test_read_range_detects_corruption_and_never_yields_it() -> None:
    store, segments, data = _memory_archive(300_001, SIZES)
    key = segments[2].blob_key  # 4 MiB segment at archive offset 3 MiB
    damaged = bytearray(store.blobs[key])
    damaged[2 * MIB + 10] ^= 0x01  # its leaf 2 = archive bytes [5 MiB, 6 MiB)
    store.blobs[key] = bytes(damaged)
    blobs = cast(BlobStore, store)
    received = bytearray()
    with pytest.raises(IntegrityError, match=rf"blob {key}: leaf 2 \(archive bytes"):
        _drain(read_range(blobs, segments, 2 * MIB, 7 * MIB), received)
    assert received == data[2 * MIB : 5 * MIB]  # everything before the damaged leaf
    assert b"".join(read_range(blobs, segments, 0, 5 * MIB - 1)) == data[: 5 * MIB]
    assert b"".join(read_range(blobs, segments, 6 * MIB, len(data) - 1)) == data[6 * MIB :]
    with pytest.raises(IntegrityError):
        list(read_range(blobs, segments, 6 * MIB - 1, 6 * MIB - 1))
    unverified = b"".join(read_range(blobs, segments, 5 * MIB, 6 * MIB - 1, verify=False))
    assert unverified == bytes(damaged[2 * MIB : 3 * MIB])
    assert store.closed == len(store.opened)


def test_read_range_short_and_long_blobs() -> None:
    store, segments, _ = _memory_archive(MIB, SIZES)
    blobs = cast(BlobStore, store)
    last = segments[3]
    store.blobs[last.blob_key] = store.blobs[last.blob_key][:-1]  # truncated
    for verify in (True, False):
        with pytest.raises(IntegrityError, match="truncated"):
            list(
                read_range(blobs, segments, last.offset, last.offset + last.size - 1, verify=verify)
            )

    class Overlong(MemoryBlobs):
        def open(self, key: str, start: int = 0, end: int | None = None) -> MemoryReader:
            return super().open(key, start, None)

    long_store = Overlong(300_001)
    long_store.blobs = dict(store.blobs)
    for verify in (True, False):
        with pytest.raises(IntegrityError, match="more than"):
            list(read_range(cast(BlobStore, long_store), segments, MIB, MIB + 10, verify=verify))


def test_read_range_closes_reader_when_abandoned() -> None:
    store, segments, _ = _memory_archive(MIB, SIZES)
    stream = read_range(cast(BlobStore, store), segments, 0, 7 * MIB - 1)
    next(stream)
    assert store.closed == 0
    cast(Generator[bytes, None, None], stream).close()
    assert store.closed == 1


def test_read_range_arguments_checked_eagerly() -> None:
    store, segments, data = _memory_archive(MIB, SIZES)
    blobs = cast(BlobStore, store)
    for first, last in [(-1, 5), (5, 4), (0, len(data)), (len(data), len(data))]:
        with pytest.raises(ValueError, match="outside"):
            read_range(blobs, segments, first, last)
    with pytest.raises(IntegrityError):
        read_range(blobs, [segments[0], segments[2]], 0, 1)
    assert store.opened == []


def test_read_range_over_a_run_of_segments() -> None:
    """Segments need not start at 0 (a job may pin only the ones it needs)."""
    store, segments, data = _memory_archive(MIB, SIZES)
    run = segments[1:3]
    got = b"".join(read_range(cast(BlobStore, store), run, MIB + 7, 7 * MIB - 1))
    assert got == data[MIB + 7 : 7 * MIB]
    with pytest.raises(ValueError, match="outside"):
        read_range(cast(BlobStore, store), run, 0, MIB)


# --- which bytes are hashed on the way out: checked readers and codec 0 -------


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every leaf `read_range` SHA-256s, in order."""
    lengths: list[int] = []

    def sha256(data: bytes) -> Any:
        lengths.append(len(data))
        return hashlib.sha256(data)

    monkeypatch.setattr(reads, "hashlib", SimpleNamespace(sha256=sha256))
    return lengths


def _rot(store: MemoryBlobs, key: str, offset: int) -> None:
    """Flip a stored byte behind the store's back: damage only SHA-256 sees."""
    blob = bytearray(store.blobs[key])
    blob[offset] ^= 0x01
    store.blobs[key] = bytes(blob)


RANGES = [(0, 7 * MIB + 300_000), (5, 5), (MIB - 1, MIB), (3 * MIB - 5, 7 * MIB + 3)]


@pytest.mark.parametrize("chunk", [4093, 300_001, MIB, 8 * MIB])
def test_trusted_checked_readers_are_not_hashed_again(chunk: int, hashed: list[int]) -> None:
    store, segments, data = _memory_archive(chunk, SIZES)
    store.checked.update(s.blob_key for s in segments)
    blobs = cast(BlobStore, store)
    for first, last in RANGES:
        got = b"".join(read_range(blobs, segments, first, last, trust_checked=True))
        assert got == data[first : last + 1]
    assert hashed == []
    # Without `trust_checked` (a job not verified at completion), every leaf is.
    assert b"".join(read_range(blobs, segments, 0, len(data) - 1)) == data
    assert hashed == [MIB] * 7 + [300_001]
    assert store.closed == len(store.opened)


def test_unchecked_readers_are_hashed_even_when_trusted(hashed: list[int]) -> None:
    store, segments, data = _memory_archive(300_001, SIZES)
    blobs = cast(BlobStore, store)
    assert b"".join(read_range(blobs, segments, 0, len(data) - 1, trust_checked=True)) == data
    assert hashed == [MIB] * 7 + [300_001]
    _rot(store, segments[2].blob_key, 2 * MIB + 10)
    with pytest.raises(IntegrityError, match="leaf 2"):
        list(read_range(blobs, segments, 0, len(data) - 1, trust_checked=True))


def test_mixed_segments_hash_exactly_the_unchecked_ones(hashed: list[int]) -> None:
    """1 MiB checked, 2 MiB codec 0, 4 MiB checked, short codec-0 tail."""
    store, segments, data = _memory_archive(300_001, SIZES)
    store.checked.update({segments[0].blob_key, segments[2].blob_key})
    blobs = cast(BlobStore, store)
    assert b"".join(read_range(blobs, segments, 0, len(data) - 1, trust_checked=True)) == data
    assert hashed == [MIB, MIB, 300_001]  # segment 1's two leaves, then the tail
    hashed.clear()
    # A range inside the checked 4 MiB segment hashes nothing; one that reaches
    # into the codec-0 segment before it hashes that segment's leaf only.
    assert (
        b"".join(read_range(blobs, segments, 4 * MIB, 5 * MIB, trust_checked=True))
        == (data[4 * MIB : 5 * MIB + 1])
    )
    assert hashed == []
    list(read_range(blobs, segments, 3 * MIB - 1, 3 * MIB, trust_checked=True))
    assert hashed == [MIB]
    _rot(store, segments[1].blob_key, MIB + 3)
    received = bytearray()
    with pytest.raises(IntegrityError, match=f"blob {segments[1].blob_key}: leaf 1"):
        _drain(read_range(blobs, segments, 0, len(data) - 1, trust_checked=True), received)
    assert received == data[: 2 * MIB]  # the checked segment, and segment 1's intact leaf


@pytest.mark.parametrize("trust", [True, False])
def test_damage_a_checked_store_detects_is_never_yielded(trust: bool) -> None:
    """Damage after the job verified: the store raises before the chunk goes out."""
    store, segments, data = _memory_archive(300_001, SIZES)
    store.checked.update(s.blob_key for s in segments)
    key = segments[2].blob_key  # archive bytes [3 MiB, 7 MiB)
    store.damaged[key] = {2 * MIB + 10}
    received = bytearray()
    with pytest.raises(IntegrityError, match=f"blob {key}: chunk at"):
        _drain(
            read_range(cast(BlobStore, store), segments, 0, len(data) - 1, trust_checked=trust),
            received,
        )
    assert received == data[: len(received)]
    assert len(received) <= 3 * MIB + 2 * MIB + 10 - (2 * MIB + 10) % 300_001
    assert store.closed == len(store.opened)


def test_window_cursor_reports_checked_damage(caplog: pytest.LogCaptureFixture) -> None:
    store, segments, data = _memory_archive(MIB, SIZES)
    store.checked.update(s.blob_key for s in segments)
    key = segments[3].blob_key  # the short last segment, from archive byte 7 MiB
    store.damaged[key] = {5}
    found: list[str] = []
    body = archive_read(
        cast(BlobStore, store),
        segments,
        0,
        len(data) - 1,
        vault="arn:v",
        trust_checked=True,
        on_damage=found.append,
    )
    cursor = body.open()
    assert b"".join(cursor.next()) == data[: 4 * MIB]
    # The next window would reach into the damaged chunk: none of it comes out.
    with caplog.at_level(logging.ERROR), pytest.raises(IntegrityError, match=key) as caught:
        cursor.next()
    assert "Archive a is damaged: " in caught.value.message
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "archive a in vault arn:v is damaged" in line
    assert key in line
    assert found == [f"blob {key}: chunk at 0 fails its checksum"]
    assert store.closed == len(store.opened)  # the failed read closed its reader


@pytest.mark.parametrize("chunk", [300_001, MIB])
def test_window_cursor_opens_each_blob_once(chunk: int) -> None:
    store, segments, data = _memory_archive(chunk, SIZES)
    for first, last in [(0, len(data) - 1), (MIB + 3, 7 * MIB + 5), (5, 5)]:
        store.opened.clear()
        cursor = archive_read(cast(BlobStore, store), segments, first, last).open()
        windows = []
        while window := cursor.next():
            windows.append(b"".join(window))
        assert b"".join(windows) == data[first : last + 1]
        assert all(len(w) >= 4 * MIB for w in windows[:-1])
        assert all(len(w) < 4 * MIB + max(chunk, MIB) for w in windows)
        keys = [key for key, _, _ in store.opened]
        assert len(keys) == len(set(keys))  # each blob opened once for the whole range
        touched = [s for s in segments if s.offset <= last and first < s.offset + s.size]
        assert keys == [s.blob_key for s in touched]
        assert cursor.next() == []
    store.opened.clear()
    store.closed = 0
    cursor = archive_read(cast(BlobStore, store), segments, 0, len(data) - 1).open()
    cursor.next()
    assert store.closed == len(store.opened) - 1  # the third segment's reader is open
    cursor.close()  # a download abandoned midway closes its reader
    assert store.closed == len(store.opened)


def test_window_cursor_started_small_grows_its_windows() -> None:
    """A download's first window (read before its status line) is FIRST_WINDOW,
    the next ones double up to READ_WINDOW; the bytes are the same."""
    store, segments, data = _memory_archive(MIB, [16 * MIB])
    cursor = archive_read(cast(BlobStore, store), segments, 0, len(data) - 1).open()
    cursor.start_small()
    windows = []
    while window := cursor.next():
        windows.append(b"".join(window))
    assert b"".join(windows) == data
    assert [len(w) for w in windows] == [MIB, 2 * MIB, 4 * MIB, 4 * MIB, 4 * MIB, MIB]
    assert FIRST_WINDOW == MIB  # the sizes above assume these
    assert READ_WINDOW == 4 * MIB


def test_window_cursor_reopens_a_stream_left_idle() -> None:
    """A slow client: the store's stream may have been dropped meanwhile, so
    the next window comes from a fresh one, from where the last one stopped."""
    sizes = [MIB, 4 * MIB, 8 * MIB, 300_001]
    store, segments, data = _memory_archive(300_001, sizes)
    now = [0.0]
    first, last = 5, len(data) - 2

    def pieces_from(position: int) -> Iterator[bytes]:
        return read_range(cast(BlobStore, store), segments, position, last)

    cursor = WindowCursor((first, last), pieces_from, lambda e: e, clock=lambda: now[0])
    got = [b"".join(cursor.next())]
    now[0] += IDLE_REOPEN / 2
    got.append(b"".join(cursor.next()))  # soon enough: the same stream
    position = first + sum(map(len, got))
    assert 5 * MIB < position < 13 * MIB  # inside segment 2, whose reader is open
    assert [key for key, _, _ in store.opened] == [s.blob_key for s in segments[:3]]
    assert store.closed == 2
    now[0] += IDLE_REOPEN + 1
    got.append(b"".join(cursor.next()))
    assert store.closed == 3  # the idle stream was closed, its blob opened again
    assert store.opened[3] == (segments[2].blob_key, position - 5 * MIB - (position % MIB), 8 * MIB)
    while window := cursor.next():
        got.append(b"".join(window))
    assert b"".join(got) == data[first : last + 1]
    assert store.closed == len(store.opened)  # all closed once the last byte was read


def test_verify_range_reads_every_leaf_of_the_range(hashed: list[int]) -> None:
    store, segments, data = _memory_archive(300_001, SIZES)
    store.checked.update(s.blob_key for s in segments)  # the completion check hashes anyway
    blobs = cast(BlobStore, store)
    calls: list[None] = []
    assert verify_range(blobs, segments, 0, len(data) - 1, lambda: calls.append(None)) is None
    assert hashed == [MIB] * 7 + [300_001]
    assert len(calls) == 8
    hashed.clear()
    assert verify_range(blobs, segments[1:3], MIB, 5 * MIB - 1) is None
    assert hashed == [MIB] * 4
    _rot(store, segments[2].blob_key, 3 * MIB)
    problem = verify_range(blobs, segments, 0, len(data) - 1)
    assert problem is not None
    assert f"blob {segments[2].blob_key}: leaf 3 " in problem
    assert verify_range(blobs, segments, 0, 6 * MIB - 1) is None  # outside the range
    del store.blobs[segments[3].blob_key]
    problem = verify_range(blobs, segments, 7 * MIB, len(data) - 1)
    assert problem is not None
    assert f"blob {segments[3].blob_key} is missing" in problem


def test_verify_range_stops_when_its_checkpoint_raises() -> None:
    store, segments, data = _memory_archive(MIB, SIZES)
    blobs = cast(BlobStore, store)

    class Cancelled(Exception):
        pass

    def cancel() -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        verify_range(blobs, segments, 0, len(data) - 1, cancel)
    assert len(store.opened) == 1
    assert store.closed == 1
