"""Verifying one copy of a blob against its stored 1 MiB leaf digests, a step
at a time (each step runs on a worker thread; the scrubber paces between them).

Every payload byte is read through `BlobStore.open`, so a store's own checks
(per-chunk checksums or authentication tags of codecs 1+, the file length
check) raise `IntegrityError` on the way, and every byte is then hashed
against the SHA-256 leaves the metadata holds. Damage is a `problem` (a line
naming the blob), never an exception; an outage of the store (StorageError)
is not damage and propagates: the pass stops and is retried (so does a blob
written under a key id this process lacks: MissingKeyError, a configuration
problem).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from openglacier.errors import IntegrityError, StorageError
from openglacier.ports import BlobReader, BlobStore, ScrubTarget
from openglacier.treehash import DIGEST_LEN, MIB


class CopyCheck:
    """`step(n)` reads about n more bytes (whole chunks) and checks every
    completed leaf; `done` once the blob is read or found damaged."""

    def __init__(self, blobs: BlobStore, target: ScrubTarget) -> None:
        self.blobs = blobs
        self.target = target
        self.problem: str | None = None
        self.done = False
        self.read = 0  # payload bytes read so far
        self._reader: BlobReader | None = None
        self._chunks: Iterator[bytes] | None = None
        self._pending = bytearray()
        self._leaf = 0

    def step(self, max_bytes: int) -> int:
        """Read and check up to about `max_bytes`; the bytes read (0 when done)."""
        if self.done:
            return 0
        try:
            return self._step(max_bytes)
        except FileNotFoundError:  # BlobStore.open's answer for a missing blob
            self._damaged(f"blob {self.target.key} is missing")
        except IntegrityError as exc:
            self._damaged(self._named(str(exc)))
        except StorageError:
            self.close()
            raise
        except Exception as exc:  # a read that fails otherwise is damage to report
            self._damaged(f"blob {self.target.key} is unreadable: {exc}")
        return 0

    def _step(self, max_bytes: int) -> int:
        if self._chunks is None:
            self._reader = self.blobs.open(self.target.key)
            self._chunks = iter(self._reader)
        got = 0
        while got < max_bytes:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._finish()
                return got
            got += len(chunk)
            self.read += len(chunk)
            self._feed(chunk)
            if self.done:
                return got
        return got

    def _feed(self, chunk: bytes) -> None:
        if self.read > self.target.size:
            self._damaged(
                f"blob {self.target.key} holds more than the {self.target.size} bytes expected"
            )
            return
        self._pending += chunk
        while len(self._pending) >= MIB and not self.done:
            self._check_leaf(bytes(self._pending[:MIB]))
            del self._pending[:MIB]

    def _check_leaf(self, data: bytes) -> None:
        leaves = self.target.leaf_hashes
        want = leaves[self._leaf * DIGEST_LEN : (self._leaf + 1) * DIGEST_LEN]
        if hashlib.sha256(data).digest() != want:
            first = self._leaf * MIB
            self._damaged(
                f"blob {self.target.key}: leaf {self._leaf} (blob bytes {first}-"
                f"{first + len(data) - 1}) does not match its stored SHA-256"
            )
        self._leaf += 1

    def _finish(self) -> None:
        if self._pending or self._leaf == 0:
            self._check_leaf(bytes(self._pending))
            self._pending.clear()
        if not self.done and self.read != self.target.size:
            self._damaged(
                f"blob {self.target.key} holds {self.read} bytes, expected {self.target.size}"
                " (truncated)"
            )
        if not self.done and self._leaf * DIGEST_LEN != len(self.target.leaf_hashes):
            self._damaged(f"blob {self.target.key}: {self._leaf} leaves, stored digests differ")
        self.done = True
        self.close()

    def _named(self, problem: str) -> str:
        key = self.target.key
        return problem if key in problem else f"blob {key}: {problem}"

    def _damaged(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem
        self.done = True
        self.close()

    def close(self) -> None:
        reader, self._reader, self._chunks = self._reader, None, None
        if reader is not None:
            reader.close()


def check_whole(blobs: BlobStore, target: ScrubTarget) -> str | None:
    """Verify a whole copy at once (no pacing); the problem or None."""
    check = CopyCheck(blobs, target)
    try:
        while not check.done:
            check.step(64 * MIB)
    finally:
        check.close()
    return check.problem
