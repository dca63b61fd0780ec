"""SHA-256 tree hash (spec 3): streaming hasher, combination and alignment predicates.

The hasher keeps every 1 MiB leaf digest, because the archive's leaves are stored
with it (so that the tree hash of any aligned range can be computed later from the
metadata alone, without reading the data back), and because leaves concatenate:
the leaves of a multipart archive are its parts' leaves in range order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

MIB = 1 << 20
DIGEST_LEN = 32
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _reduce(level: list[bytes]) -> bytes:
    """Pair nodes left to right; an odd node at the end is promoted unchanged (3.1)."""
    if not level:
        return hashlib.sha256(b"").digest()
    while len(level) > 1:
        nxt = [
            hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def root_of_leaves(leaves: bytes) -> bytes:
    """Tree-hash root (binary) over concatenated 32-byte leaf digests."""
    return _reduce([leaves[i : i + DIGEST_LEN] for i in range(0, len(leaves), DIGEST_LEN)])


def combine(hex_hashes: Sequence[str]) -> str:
    """Combine subtree roots given in order (spec 3.4, CompleteMultipartUpload)."""
    return _reduce([bytes.fromhex(h) for h in hex_hashes]).hex()


def tree_hash(data: bytes) -> str:
    hasher = TreeHasher()
    hasher.update(data)
    return hasher.hexdigest()


class TreeHasher:
    """Streaming tree hash and linear SHA-256 in one pass.

    `update` accepts chunks of any size; leaves are closed every 1 MiB. Feeding
    whole 1 MiB-aligned buffers avoids any copying (the API layer does this).
    """

    __slots__ = ("_leaf", "_leaf_fill", "_leaves", "_linear", "size")

    def __init__(self, *, linear: bool = True) -> None:
        self._leaves = bytearray()
        self._leaf = hashlib.sha256()
        self._leaf_fill = 0
        self._linear = hashlib.sha256() if linear else None
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        # Cast to bytes: len() and slicing of a view with a wider format (e.g.
        # "I") count items, which would misplace leaf boundaries and the size.
        view = memoryview(data).cast("B")
        if self._linear is not None:
            self._linear.update(view)
        self.size += len(view)
        while view:
            take = min(MIB - self._leaf_fill, len(view))
            self._leaf.update(view[:take])
            self._leaf_fill += take
            view = view[take:]
            if self._leaf_fill == MIB:
                self._leaves += self._leaf.digest()
                self._leaf = hashlib.sha256()
                self._leaf_fill = 0

    def leaves(self) -> bytes:
        """All leaf digests, including the partial last leaf, concatenated."""
        if self._leaf_fill or not self._leaves:
            return bytes(self._leaves) + self._leaf.digest()
        return bytes(self._leaves)

    def digest(self) -> bytes:
        return root_of_leaves(self.leaves())

    def hexdigest(self) -> str:
        return self.digest().hex()

    def sha256_hexdigest(self) -> str:
        if self._linear is None:
            raise RuntimeError("linear hash not requested")
        return self._linear.hexdigest()


def leaf_count(size: int) -> int:
    return max(1, -(-size // MIB))


def is_megabyte_aligned(first: int, last: int, size: int) -> bool:
    """Spec 3.5: start on a MiB boundary, end on one or at the archive end."""
    if not (0 <= first <= last < size) or first % MIB:
        return False
    return (last + 1) % MIB == 0 or last == size - 1


def is_tree_hash_aligned(first: int, last: int, size: int) -> bool:
    """Spec 3.5: the range's own tree hash is a node of the archive's tree."""
    if not is_megabyte_aligned(first, last, size):
        return False
    n = leaf_count(size)
    s = first // MIB
    e = n if last == size - 1 else (last + 1) // MIB
    length = e - s
    if e == n:
        # Tail ranges: the smallest power of two >= length must divide the start.
        return s % (1 << (length - 1).bit_length()) == 0
    return length & (length - 1) == 0 and s % length == 0


def range_tree_hash(leaves: bytes, first: int, last: int, size: int) -> str | None:
    """Tree hash of bytes [first, last] from stored leaves, or None if not aligned."""
    if not is_tree_hash_aligned(first, last, size):
        return None
    s = first // MIB
    e = leaf_count(size) if last == size - 1 else (last + 1) // MIB
    return root_of_leaves(leaves[s * DIGEST_LEN : e * DIGEST_LEN]).hex()


def hashes_equal(a: str, b: str) -> bool:
    """Hex digests compare case-insensitively (spec 2.18 [R])."""
    return a.lower() == b.lower()


def iter_leaves(leaves: bytes) -> Iterable[bytes]:
    return (leaves[i : i + DIGEST_LEN] for i in range(0, len(leaves), DIGEST_LEN))
