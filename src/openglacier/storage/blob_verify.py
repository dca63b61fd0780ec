"""Copying a blob verified against its stored hashes: what `blobs migrate`
(storage/blob_migration.py) and `blobs rewrite` (storage/blob_rewrite.py) share.

A blob some row names (BlobRef) is checked against its 1 MiB SHA-256 leaf
digests (archive segments, parts, pinned job segments) both while the source
is read (a damaged source aborts the write, so nothing of it is committed)
and after the copy is committed (the copy is re-read through its store, and
so through its codec). A job output document has no stored hash: its copy is
compared with the SHA-256 of the source read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace

from openglacier.ports import BlobRef, BlobStore
from openglacier.storage.blobs import put_blob
from openglacier.treehash import DIGEST_LEN, MIB


class SourceDamage(Exception):
    """The source blob is missing, unreadable or does not match its hashes."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class BlobCheck:
    """Feeds a blob's bytes through its stored leaf digests, or (a job output,
    which has none) through SHA-256."""

    def __init__(self, ref: BlobRef) -> None:
        self.ref = ref
        self.pending = bytearray()
        self.leaf = 0
        self.size = 0
        self.sha = hashlib.sha256()
        self.problem: str | None = None

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.ref.leaf_hashes is None:
            # No stored hash: the payload's own digest, to compare source and copy
            # (leaves already prove the others; hashing them twice costs a third).
            self.sha.update(chunk)
            return
        if self.problem is not None:
            return
        self.pending += chunk
        while len(self.pending) >= MIB and self.problem is None:
            self._leaf(bytes(self.pending[:MIB]))
            del self.pending[:MIB]

    def _leaf(self, data: bytes) -> None:
        leaves = self.ref.leaf_hashes or b""
        want = leaves[self.leaf * DIGEST_LEN : (self.leaf + 1) * DIGEST_LEN]
        if hashlib.sha256(data).digest() != want:
            self.problem = f"leaf {self.leaf} does not match its stored hash"
        self.leaf += 1

    def finish(self) -> str | None:
        """The damage found, or None."""
        leaves = self.ref.leaf_hashes
        if leaves is not None and self.problem is None and (self.pending or self.leaf == 0):
            self._leaf(bytes(self.pending))
        if self.problem is None and self.size != self.ref.size:
            self.problem = f"{self.size} bytes, expected {self.ref.size}"
        if self.problem is None and leaves is not None and self.leaf * DIGEST_LEN != len(leaves):
            self.problem = f"{self.leaf} leaves, expected {len(leaves) // DIGEST_LEN}"
        return self.problem


def read_checked(blobs: BlobStore, ref: BlobRef) -> tuple[str | None, bytes]:
    """(damage or None, SHA-256 of the payload for a blob without leaf digests)
    of `ref`'s blob in `blobs`."""
    check = BlobCheck(ref)
    try:
        for chunk in blobs.open(ref.key):
            check.feed(chunk)
    except FileNotFoundError:
        return "missing", b""
    except Exception as exc:  # any read failure is damage to report
        return f"unreadable ({exc})", b""
    return check.finish(), check.sha.digest()


def copy_checked(source: BlobStore, ref: BlobRef, dest: BlobStore, dest_key: str) -> bytes:
    """Stream `ref`'s blob from `source` into `dest` under `dest_key`, checking
    it on the way; the SHA-256 of a blob without leaf digests. A damaged source
    raises `SourceDamage` and aborts the write: nothing of it is committed."""
    check = BlobCheck(ref)

    def checked_chunks() -> Iterator[bytes]:
        try:
            for chunk in source.open(ref.key):
                check.feed(chunk)
                yield chunk
        except FileNotFoundError:
            raise SourceDamage("missing") from None
        except Exception as exc:
            raise SourceDamage(f"unreadable ({exc})") from None
        problem = check.finish()
        if problem is not None:
            raise SourceDamage(problem)

    put_blob(dest, dest_key, checked_chunks())
    return check.sha.digest()


def copy_verified(source: BlobStore, ref: BlobRef, dest: BlobStore, dest_key: str) -> str | None:
    """`copy_checked`, then the committed copy re-read and checked: the copy's
    damage, or None. Raises `SourceDamage` for the source's."""
    digest = copy_checked(source, ref, dest, dest_key)
    problem, copied = read_checked(dest, replace(ref, key=dest_key))
    if problem is None and copied != digest:
        problem = "differs from the source"
    return problem
