"""`openglacier blobs migrate`: copy the deployment's blobs to another store,
verified, then switch the recorded blob URL (issue 13).

What is copied: every blob a metadata row names as data (archive segments,
multipart parts, blobs pinned by finished retrievals, job output documents).
Orphans (blobs no row names) and blobs in the deletion queue are left behind:
nothing can read them. Written against the BlobStore port only, so any
adapter pair works (file -> file, file -> s3, s3 -> file, s3 -> s3).

Verification (storage/blob_verify.py): segment, part and pinned blobs against
their stored 1 MiB leaf digests, both while the source is read (a damaged
source stops the migration before anything is switched) and after the copy is
committed (the destination is re-read). A job output document has no stored
hash: its copy is checked against its recorded size and the SHA-256 of the
source read.

Resumable with no state of its own: a blob is committed at the destination
only whole (the BlobStore contract), and one found there on a rerun is
verified and skipped (or, if it does not verify, replaced). The recorded URL is
switched last, in one transaction that also checks that the metadata did not
change while copying (the sign of a serve or worker still running), and that
nobody switched the URL meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from openglacier.errors import StorageError
from openglacier.ports import BlobCensus, BlobRef, BlobStore, MetadataStore
from openglacier.storage.blob_verify import SourceDamage, copy_verified, read_checked

__all__ = ["Migration", "MigrationError", "Summary", "read_checked"]

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
        try:
            problem = copy_verified(self.source, ref, self.dest, ref.key)
        except SourceDamage as exc:
            raise self._damaged(ref, exc.problem) from None
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
