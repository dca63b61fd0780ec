"""`openglacier blobs migrate`: copy the deployment's blobs to another store,
verified, then switch the recorded blob URL (issue 13).

What is copied: every blob a metadata row names as data (archive segments,
multipart parts, blobs pinned by finished retrievals, job output documents).
Orphans (blobs no row names) and blobs in the deletion queue are left behind:
nothing can read them. Written against the BlobStore port only, so any
adapter pair works (file -> file, file -> s3, s3 -> file, s3 -> s3).

Verification: segment, part and pinned blobs against their stored 1 MiB leaf
digests, both while the source is read (a damaged source stops the migration
before anything is switched) and after the copy is committed (the
destination is re-read). A job output document has no stored hash: its copy
is checked against its recorded size and the SHA-256 of the source read.

Resumable with no state of its own: a blob is committed at the destination
only whole (the BlobStore contract), and one found there on a rerun is
verified and skipped (or, if it does not verify, replaced). The recorded URL is
switched last, in one transaction that also checks that the metadata did not
change while copying (the sign of a serve or worker still running), and that
nobody switched the URL meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from openglacier.errors import StorageError
from openglacier.ports import BlobCensus, BlobRef, BlobStore, MetadataStore
from openglacier.storage.blobs import put_blob
from openglacier.treehash import DIGEST_LEN, MIB

log = logging.getLogger("openglacier.migrate")

PAGE = 200


class MigrationError(StorageError):
    """Why the migration stopped, in one line; the recorded URL is unchanged."""


@dataclass
class Summary:
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0


class _Check:
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
    check = _Check(ref)
    try:
        for chunk in blobs.open(ref.key):
            check.feed(chunk)
    except FileNotFoundError:
        return "missing", b""
    except Exception as exc:  # any read failure is damage to report
        return f"unreadable ({exc})", b""
    return check.finish(), check.sha.digest()


class Migration:
    """Copies every referenced blob from `source` to `dest`; `advance(n)` is
    told of each n bytes done (copied or skipped)."""

    def __init__(
        self,
        store: MetadataStore,
        source: BlobStore,
        dest: BlobStore,
        advance: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self.store, self.source, self.dest, self.advance = store, source, dest, advance
        self.summary = Summary()

    def census(self) -> BlobCensus:
        with self.store.transaction(readonly=True) as tx:
            return tx.blob_census()

    def copy_all(self) -> Summary:
        after: str | None = None
        while True:
            with self.store.transaction(readonly=True) as tx:
                page = tx.blob_refs(after, PAGE)
            if not page:
                return self.summary
            for ref in page:
                self._one(ref)
                self.advance(ref.size)
            after = page[-1].key

    def _one(self, ref: BlobRef) -> None:
        if self.dest.stat(ref.key) is not None:
            if self._verified_copy(ref):
                log.debug("skipped blob %s (%s, %d bytes)", ref.key, ref.owner, ref.size)
                self.summary.skipped += 1
                self.summary.skipped_bytes += ref.size
                return
            self.dest.delete(ref.key)  # a damaged copy of ours: copy it again
        digest = self._copy(ref)
        problem, copied = read_checked(self.dest, ref)
        if problem is None and copied != digest:
            problem = "differs from the source"
        if problem is not None:
            raise MigrationError(
                f"the copy of blob {ref.key} ({ref.owner}) at the destination: {problem}; "
                "nothing was switched"
            )
        log.debug("copied blob %s (%s, %d bytes)", ref.key, ref.owner, ref.size)
        self.summary.copied += 1
        self.summary.copied_bytes += ref.size

    def _verified_copy(self, ref: BlobRef) -> bool:
        problem, digest = read_checked(self.dest, ref)
        if problem is None and ref.leaf_hashes is None:
            # No stored hash: the copy must equal the source's bytes.
            source_problem, source_digest = read_checked(self.source, ref)
            return source_problem is None and source_digest == digest
        return problem is None

    def _copy(self, ref: BlobRef) -> bytes:
        """Stream the source into the destination, checking it on the way: a
        damaged source aborts the write, so nothing of it is committed."""
        check = _Check(ref)

        def checked_chunks() -> Iterator[bytes]:
            try:
                for chunk in self.source.open(ref.key):
                    check.feed(chunk)
                    yield chunk
            except FileNotFoundError:
                raise self._damaged(ref, "missing") from None
            except MigrationError:
                raise
            except Exception as exc:
                raise self._damaged(ref, f"unreadable ({exc})") from None
            problem = check.finish()
            if problem is not None:
                raise self._damaged(ref, problem)

        put_blob(self.dest, ref.key, checked_chunks())
        return check.sha.digest()

    @staticmethod
    def _damaged(ref: BlobRef, problem: str) -> MigrationError:
        return MigrationError(
            f"blob {ref.key} ({ref.owner}) in the current store: {problem}; nothing was "
            "switched: restore it (or delete what names it) and run the migration again"
        )

    def switch(self, old: str | None, new: str, before: BlobCensus) -> None:
        """Record `new` as the blob URL, iff the metadata is as it was when the
        copy began and the recorded URL is still `old`."""
        with self.store.transaction() as tx:
            if tx.blob_census() != before:
                raise MigrationError(
                    "the metadata changed while the blobs were copied (is a serve or worker "
                    "still running?): stop them all and run the migration again; what was "
                    "copied is skipped"
                )
            if not tx.switch_blob_url(old, new, datetime.now(UTC)):
                raise MigrationError(
                    f"the recorded blob URL is no longer {old} (another migration?); "
                    "nothing was switched"
                )
