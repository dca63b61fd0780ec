"""SHA-256 tree hash (spec 3): published vectors, botocore as oracle, alignment rules."""

from __future__ import annotations

import hashlib
import io
import random
from itertools import accumulate, cycle, pairwise

import pytest
from botocore.utils import calculate_tree_hash
from hypothesis import given, settings
from hypothesis import strategies as st

from openglacier.treehash import (
    DIGEST_LEN,
    EMPTY_SHA256,
    MIB,
    TreeHasher,
    combine,
    hashes_equal,
    is_megabyte_aligned,
    is_tree_hash_aligned,
    iter_leaves,
    leaf_count,
    range_tree_hash,
    root_of_leaves,
    tree_hash,
)

# One random buffer; archives in property tests are prefixes of it, so every
# chunk is distinct and nothing big is generated per example.
_RANDOM = random.Random(20120601).randbytes(17 * MIB)

# --- spec 3.2 vectors ------------------------------------------------------

_VECTORS = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", None),
    (b"a", "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", None),
    (
        b"a" * 1048576,
        "9bc1b2a288b26af7257a36277ae3816a7d4f16e89c1e7e77d0a5c48bad62b360",
        None,
    ),
    (
        b"a" * 1048577,
        "8dd49bbc6297567fac3852c2deddcdbc57358bc403c10d4f6dc64b143ad9b27b",
        "4a3f0c0c213adea174f9a3d4c13177315b588bdb2e9c1012d3d0bf0453ca0f6a",
    ),
    (
        b"a" * 3145728,
        "70239f4f2ead7561f69d48b956b547edef52a1280a93c262c0b582190be7db17",
        "6f850bc94ae6f7de14297c01616c36d712d22864497b28a63b81d776b035e656",
    ),
    (
        b"a" * 6815744,
        "0dae0a3f606e3eae41361ffc1dc3e1c5311ae06f9c14299ca46052f89947f412",
        "40ccb2f1b3a53f311ed38697dd3b630eb4ee8f32bf57e78cb9d25e5e8b538a9d",
    ),
]


@pytest.mark.parametrize(
    ("data", "expected_tree", "expected_sha"),
    _VECTORS,
    ids=["empty", "a", "1MiB", "1MiB+1", "3MiB", "6.5MiB"],
)
def test_spec_vectors(data: bytes, expected_tree: str, expected_sha: str | None) -> None:
    expected_sha = expected_sha or expected_tree  # "same" in the spec table
    assert tree_hash(data) == expected_tree
    hasher = TreeHasher()
    hasher.update(data)
    assert hasher.hexdigest() == expected_tree
    assert hasher.sha256_hexdigest() == expected_sha
    assert hashlib.sha256(data).hexdigest() == expected_sha
    assert calculate_tree_hash(io.BytesIO(data)) == expected_tree


def test_empty_payload() -> None:
    hasher = TreeHasher()
    assert hasher.hexdigest() == EMPTY_SHA256
    assert hasher.leaves() == hashlib.sha256(b"").digest()
    assert hasher.size == 0
    assert leaf_count(0) == 1


# --- spec 3.2 multipart vector ---------------------------------------------

_MP_SIZE = 6815744
_MP_DATA = (bytes(range(251)) * (_MP_SIZE // 251 + 1))[:_MP_SIZE]  # bytes(i % 251 ...)
_MP_PARTS = [
    "bf4dff263ae686b64403208c35a3767e38453d6477e841947588d13d04e1d816",
    "9e217b1ceb8db81071f9c6e4a2bf0401a83491d10751ce858a2628f5d699dbdb",
    "3f1cd462b63cf286198c3f2ee91cf116dfed51d327686dca0fb06ba94a4ae759",
    "c9fed994db0d8e2e5b7d603f40c18613d1f545288928a52ee9d2b2e2375f7160",
]
_MP_WHOLE = "8bcaa7b4b8f991ca140f306627f2c4e84601364cde8e054b6e0924433ca7482f"
_MP_1_TO_3 = "b75aca8a18ab725e6da28ced838ac9be59756d81fd6899b0d853849b43f7117e"
_MP_4_TO_END = "3e997f13ddc355e8a55035672d60ba90275ece6485044b3616a0966e2b895fc1"


def test_multipart_vector() -> None:
    assert bytes(i % 251 for i in range(_MP_SIZE)) == _MP_DATA
    part = 2 * MIB
    hashes = [tree_hash(_MP_DATA[i : i + part]) for i in range(0, _MP_SIZE, part)]
    assert hashes == _MP_PARTS
    assert combine(_MP_PARTS) == _MP_WHOLE
    assert tree_hash(_MP_DATA) == _MP_WHOLE
    assert tree_hash(_MP_DATA[2 * MIB : 4 * MIB]) == _MP_PARTS[1]
    assert tree_hash(_MP_DATA[1 * MIB : 3 * MIB]) == _MP_1_TO_3
    assert tree_hash(_MP_DATA[4 * MIB :]) == _MP_4_TO_END


def test_multipart_vector_from_stored_leaves() -> None:
    hasher = TreeHasher()
    hasher.update(_MP_DATA)
    leaves, size = hasher.leaves(), _MP_SIZE
    assert range_tree_hash(leaves, 0, size - 1, size) == _MP_WHOLE
    assert range_tree_hash(leaves, 2 * MIB, 4 * MIB - 1, size) == _MP_PARTS[1]
    assert range_tree_hash(leaves, 4 * MIB, size - 1, size) == _MP_4_TO_END
    assert range_tree_hash(leaves, 6 * MIB, size - 1, size) == _MP_PARTS[3]
    assert range_tree_hash(leaves, 1 * MIB, 3 * MIB - 1, size) is None  # not a node
    # Leaves concatenate: a part's leaves are a slice of the archive's leaves.
    part_hasher = TreeHasher()
    part_hasher.update(_MP_DATA[2 * MIB : 4 * MIB])
    assert part_hasher.leaves() == leaves[2 * DIGEST_LEN : 4 * DIGEST_LEN]


# --- streaming hasher vs botocore -------------------------------------------

_interesting_sizes = st.sampled_from([1, MIB - 1, MIB, MIB + 1, 2 * MIB, 3 * MIB + 1, 4 * MIB])


@settings(max_examples=60, deadline=None)
@given(
    size=st.one_of(_interesting_sizes, st.integers(0, 4 * MIB + 100)),
    cuts=st.lists(
        st.one_of(st.integers(1, 100), st.integers(1, 3 * MIB // 2)), min_size=1, max_size=8
    ),
    kind=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_hasher_matches_botocore_for_any_chunking(size: int, cuts: list[int], kind: type) -> None:
    data = _RANDOM[:size]
    hasher = TreeHasher()
    pos = 0
    for cut in cycle(cuts):
        if pos >= size:
            break
        hasher.update(kind(data[pos : pos + cut]))
        pos += cut
    assert hasher.size == size
    assert hasher.hexdigest() == calculate_tree_hash(io.BytesIO(data))
    assert hasher.sha256_hexdigest() == hashlib.sha256(data).hexdigest()
    expected_leaves = [hashlib.sha256(data[i : i + MIB]).digest() for i in range(0, size, MIB)]
    assert list(iter_leaves(hasher.leaves())) == (expected_leaves or [hashlib.sha256().digest()])
    assert len(hasher.leaves()) == leaf_count(size) * DIGEST_LEN


def test_hasher_without_linear_hash() -> None:
    hasher = TreeHasher(linear=False)
    hasher.update(b"abc")
    assert hasher.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    with pytest.raises(RuntimeError, match="linear"):
        hasher.sha256_hexdigest()


def test_hasher_counts_bytes_of_wide_memoryviews() -> None:
    """A memoryview with a multi-byte format must be hashed and counted as bytes."""
    data = _RANDOM[: MIB + 8]
    hasher = TreeHasher()
    hasher.update(memoryview(data).cast("I"))
    assert hasher.size == len(data)
    assert hasher.hexdigest() == tree_hash(data)


# --- combine (spec 3.4) ----------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    part_mib=st.sampled_from([1, 2, 4]),
    full_parts=st.integers(0, 3),
    last=st.integers(1, 8 * MIB),
)
def test_combine_of_power_of_two_parts_is_the_whole(
    part_mib: int, full_parts: int, last: int
) -> None:
    part = part_mib * MIB
    size = full_parts * part + min(last, part)
    data = _RANDOM[:size]
    part_hashes = [tree_hash(data[i : i + part]) for i in range(0, size, part)]
    assert combine(part_hashes) == tree_hash(data) == calculate_tree_hash(io.BytesIO(data))


def _fake_leaves(n: int, salt: int = 0) -> bytes:
    return b"".join(hashlib.sha256(f"{salt}:{i}".encode()).digest() for i in range(n))


@settings(max_examples=200, deadline=None)
@given(k=st.integers(0, 6), n=st.integers(1, 300))
def test_combine_structurally(k: int, n: int) -> None:
    leaves = _fake_leaves(n)
    per_part = (1 << k) * DIGEST_LEN
    parts = [
        root_of_leaves(leaves[i : i + per_part]).hex() for i in range(0, len(leaves), per_part)
    ]
    assert combine(parts) == root_of_leaves(leaves).hex()


def test_combine_needs_power_of_two_parts() -> None:
    leaves = _fake_leaves(6)
    parts = [root_of_leaves(leaves[i : i + 3 * DIGEST_LEN]).hex() for i in (0, 3 * DIGEST_LEN)]
    assert combine(parts) != root_of_leaves(leaves).hex()


def test_combine_of_one_part_is_that_part() -> None:
    assert combine([_MP_PARTS[2]]) == _MP_PARTS[2]


# --- alignment (spec 3.5) --------------------------------------------------

_S = 6815744  # the spec's 6.5 MiB example archive, n = 7


@pytest.mark.parametrize(
    ("first", "last", "aligned"),
    [
        (0, _S - 1, True),
        (2 * MIB, 4 * MIB - 1, True),
        (1 * MIB, 3 * MIB - 1, False),
        (4 * MIB, _S - 1, True),
        (6 * MIB, _S - 1, True),
        (3 * MIB, 4 * MIB - 1, True),
        (3 * MIB, 5 * MIB - 1, False),  # odd start: only 1-MiB ranges qualify
        (5 * MIB, _S - 1, False),  # two chunks starting at an odd chunk
        (0, 4 * MIB - 1, True),
        (0, 6 * MIB - 1, False),
    ],
)
def test_spec_alignment_examples(first: int, last: int, aligned: bool) -> None:
    assert is_tree_hash_aligned(first, last, _S) is aligned
    assert is_megabyte_aligned(first, last, _S)


def test_spec_retrieval_examples() -> None:
    # Spec 3.6: 1-2 MB of a 3.1 MB archive, and 2 MB to its end, carry checksums.
    size = 3 * MIB + MIB // 10
    assert is_tree_hash_aligned(1 * MIB, 2 * MIB - 1, size)
    assert is_tree_hash_aligned(2 * MIB, size - 1, size)


@pytest.mark.parametrize(
    ("first", "last", "size"),
    [
        (1, MIB - 1, 2 * MIB),  # start off a MiB boundary
        (0, MIB - 2, 2 * MIB),  # end off a boundary and not the archive end
        (0, 2 * MIB, 2 * MIB),  # past the end
        (MIB, MIB - 1, 2 * MIB),  # first > last
        (-MIB, MIB - 1, 2 * MIB),
        (0, 0, 0),  # empty archive has no ranges
    ],
)
def test_not_megabyte_aligned(first: int, last: int, size: int) -> None:
    assert not is_megabyte_aligned(first, last, size)
    assert not is_tree_hash_aligned(first, last, size)
    assert range_tree_hash(_fake_leaves(leaf_count(size)), first, last, size) is None


def test_small_archive_has_one_aligned_range() -> None:
    assert is_tree_hash_aligned(0, 99, 100)
    assert not is_tree_hash_aligned(0, 98, 100)
    assert is_tree_hash_aligned(0, MIB - 1, MIB)


# --- brute-force oracle: build the archive tree and look the range up -------


def _node_spans(n: int) -> set[tuple[int, int]]:
    """Chunk spans [s, e) of every node of an n-leaf tree, pairing as in spec 3.1."""
    level = [(i, i + 1) for i in range(n)]
    spans = set(level)
    while len(level) > 1:
        paired = [(level[i][0], level[i + 1][1]) for i in range(0, len(level) - 1, 2)]
        level = paired + level[len(paired) * 2 :]  # an odd last node is promoted
        spans.update(level)
    return spans


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _tree_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the tree (independent of treehash.py)."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [_sha(cur[i] + cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
        levels.append(nxt + cur[len(nxt) * 2 :])
    return levels


def _byte_range(s: int, e: int, n: int, size: int) -> tuple[int, int]:
    return s * MIB, (size - 1 if e == n else e * MIB - 1)


@pytest.mark.parametrize("tail", [1, MIB // 2, MIB])
@pytest.mark.parametrize("n", range(1, 41))
def test_alignment_matches_brute_force_tree(n: int, tail: int) -> None:
    size = (n - 1) * MIB + tail
    leaves = [_sha(b"leaf %d" % i) for i in range(n)]
    node_hashes = {h for level in _tree_levels(leaves) for h in level}
    spans = _node_spans(n)
    for s in range(n):
        for e in range(s + 1, n + 1):
            range_root = _tree_levels(leaves[s:e])[-1][0]
            first, last = _byte_range(s, e, n, size)
            aligned = is_tree_hash_aligned(first, last, size)
            assert aligned == ((s, e) in spans) == (range_root in node_hashes), (s, e)
            assert is_megabyte_aligned(first, last, size)
            # Off-boundary variants are never aligned.
            assert not is_tree_hash_aligned(first + 1, last, size)
            if last - 1 >= first and (last % MIB) != 0:
                assert not is_tree_hash_aligned(first, last - 1, size)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(1, 1 << 14), tail=st.integers(1, MIB))
def test_alignment_matches_node_spans_for_large_archives(
    data: st.DataObject, n: int, tail: int
) -> None:
    s = data.draw(st.integers(0, n - 1))
    length = data.draw(st.one_of(st.sampled_from([1, 2, 4, 8, 16, 32]), st.integers(1, n - s)))
    e = min(s + length, n)
    size = (n - 1) * MIB + tail
    first, last = _byte_range(s, e, n, size)
    assert is_tree_hash_aligned(first, last, size) == ((s, e) in _node_spans(n))


# --- range_tree_hash from stored leaves vs hashing the slice ----------------


def test_range_tree_hash_for_every_range_of_the_spec_archive() -> None:
    hasher = TreeHasher()
    hasher.update(_RANDOM[:_S])
    leaves = hasher.leaves()
    n = leaf_count(_S)
    for s in range(n):
        for e in range(s + 1, n + 1):
            first, last = _byte_range(s, e, n, _S)
            got = range_tree_hash(leaves, first, last, _S)
            if is_tree_hash_aligned(first, last, _S):
                assert got == tree_hash(_RANDOM[first : last + 1]), (s, e)
            else:
                assert got is None, (s, e)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 12), tail=st.integers(1, MIB))
def test_range_tree_hash_matches_slice(data: st.DataObject, n: int, tail: int) -> None:
    size = (n - 1) * MIB + tail
    archive = _RANDOM[:size]
    hasher = TreeHasher(linear=False)
    hasher.update(archive)
    s = data.draw(st.integers(0, n - 1), label="first chunk")
    e = data.draw(st.integers(s + 1, n), label="end chunk")
    first, last = _byte_range(s, e, n, size)
    first += data.draw(st.sampled_from([0, 0, 0, 1]), label="nudge")  # sometimes unaligned
    if first > last:
        return
    got = range_tree_hash(hasher.leaves(), first, last, size)
    if is_tree_hash_aligned(first, last, size):
        assert got == tree_hash(archive[first : last + 1])
    else:
        assert got is None


# --- small helpers ----------------------------------------------------------


def test_hashes_compare_case_insensitively() -> None:
    assert hashes_equal(_MP_WHOLE, _MP_WHOLE.upper())
    assert not hashes_equal(_MP_WHOLE, _MP_PARTS[0])


def test_leaf_count() -> None:
    assert [leaf_count(x) for x in (1, MIB - 1, MIB, MIB + 1, 7 * MIB)] == [1, 1, 1, 2, 7]


def test_leaves_accumulate_like_parts() -> None:
    sizes = [MIB, 2 * MIB, 4 * MIB, MIB // 3]
    offsets = [0, *accumulate(sizes)]
    whole = TreeHasher()
    whole.update(_RANDOM[: offsets[-1]])
    joined = b""
    for a, b in pairwise(offsets):
        part = TreeHasher()
        part.update(_RANDOM[a:b])
        joined += part.leaves()
    assert joined == whole.leaves()
