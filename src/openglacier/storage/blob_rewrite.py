"""`openglacier blobs rewrite --key-id ID`: re-encrypt the deployment's blobs
with one key (after a rotation, or to encrypt blobs written before encryption
was on), while serve and workers keep running.

Each blob some row names as data (archive segments, multipart parts, blobs
pinned by finished retrievals, job output documents), unless its store
already reports it encrypted with ID (BlobInfo.key_id), is

1. copied under a new blob key through a store whose writer encrypts with
   ID, checked against its stored leaf digests while read (storage/
   blob_verify.py; a job output, which has none, against its source's
   SHA-256);
2. re-read and verified at its new key;
3. switched in one metadata transaction (MetadataTx.repoint_blob): every row
   naming the old key names the new one, and the old key goes to the
   durable deletion queue, due `grace` later: a read that found the old key
   before the switch (a download, a retrieval job checking its archive, a
   select job) keeps reading the old blob meanwhile. Were the rows gone
   (the archive was deleted), the copy is queued instead, as an orphan.

Resumable with no state of its own: after a kill, a copy not yet switched is
an orphan (unnamed; the orphan collector deletes it) and a rerun skips every
blob already on ID. A blob whose source is damaged is left as it was and
reported; the run goes on with the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from openglacier.errors import IntegrityError, StorageError
from openglacier.ids import new_blob_key
from openglacier.ports import BlobRef, BlobStore, MetadataStore
from openglacier.storage.blob_verify import SourceDamage, copy_verified
from openglacier.storage.blobs.codecs import CodecConfig

log = logging.getLogger("openglacier.rewrite")

PAGE = 200
# How long a switched blob stays for reads that began before its switch.
DEFAULT_GRACE = timedelta(hours=1)


class RewriteError(StorageError):
    """Why the rewrite cannot start or stopped, in one line; what was switched
    stays switched (every switched blob verified)."""


@dataclass
class RewriteSummary:
    rewritten: int = 0
    rewritten_bytes: int = 0
    skipped: int = 0  # already encrypted with the key
    skipped_bytes: int = 0
    gone: int = 0  # deleted while the rewrite ran: nothing to switch
    damaged: list[str] = field(default_factory=list)  # "KEY (OWNER): PROBLEM"


def writer_codecs(codecs: CodecConfig, key_id: str) -> CodecConfig:
    """`codecs` (the settings' compression and keyring) encrypting new blobs
    with `key_id`."""
    keyring = codecs.keyring
    if keyring is None:
        raise RewriteError(
            "blobs rewrite encrypts with a key of the key file: give --encryption-key-file FILE"
        )
    if key_id not in keyring.keys:
        raise RewriteError(
            f"key id {key_id} is not in {keyring.source} (it holds {', '.join(keyring.keys)}): "
            "add a key with `openglacier encryption-key create FILE --add`"
        )
    return replace(codecs, keyring=replace(keyring, current=key_id))


class Rewrite:
    """Re-encrypts every referenced blob of `blobs` not yet on `key_id`;
    `blobs` must encrypt new blobs with `key_id` (`writer_codecs`).
    `advance(n)` is told of each n bytes done; `before_switch(ref, new_key)`
    runs between a verified copy and its switch (tests change rows there);
    switched blobs are deleted `grace` after their switch."""

    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        key_id: str,
        advance: Callable[[int], None] = lambda _n: None,
        grace: timedelta = DEFAULT_GRACE,
    ) -> None:
        self.store, self.blobs, self.key_id, self.advance = store, blobs, key_id, advance
        self.grace = grace
        self.before_switch: Callable[[BlobRef, str], None] = lambda _ref, _key: None
        self.summary = RewriteSummary()
        # Copies made by this run: their random keys may sort after the page
        # being read, and need no second look.
        self._written: set[str] = set()

    def run(self) -> RewriteSummary:
        after: str | None = None
        while True:
            with self.store.transaction(readonly=True) as tx:
                page = tx.blob_refs(after, PAGE)
            if not page:
                return self.summary
            for ref in page:
                if ref.key not in self._written:
                    self._one(ref)
                    self.advance(ref.size)
            after = page[-1].key

    def _one(self, ref: BlobRef) -> None:
        try:
            info = self.blobs.stat(ref.key)
        except IntegrityError as exc:  # a damaged header or chunk index
            self._source_problem(ref, str(exc))
            return
        if info is not None and info.key_id == self.key_id:
            log.debug("skipped blob %s (%s): on key %s", ref.key, ref.owner, self.key_id)
            self.summary.skipped += 1
            self.summary.skipped_bytes += ref.size
            return
        new_key = new_blob_key()
        try:
            problem = copy_verified(self.blobs, ref, self.blobs, new_key)
        except SourceDamage as exc:
            self._source_problem(ref, exc.problem)
            return
        if problem is not None:
            self.blobs.delete(new_key)
            raise RewriteError(
                f"the re-encrypted copy of blob {ref.key} ({ref.owner}) does not verify: "
                f"{problem}; the blob was left as it was (is the blob store healthy?)"
            )
        self._written.add(new_key)
        self.before_switch(ref, new_key)
        with self.store.transaction() as tx:
            moved = tx.repoint_blob(ref.key, new_key, datetime.now(UTC) + self.grace)
        if moved:
            log.debug("rewrote blob %s (%s) as %s", ref.key, ref.owner, new_key)
            self.summary.rewritten += 1
            self.summary.rewritten_bytes += ref.size
        else:
            log.debug("blob %s (%s) was deleted meanwhile", ref.key, ref.owner)
            self.summary.gone += 1

    def _source_problem(self, ref: BlobRef, problem: str) -> None:
        """Damage, unless nothing names the blob any more: an archive deleted
        (and its blob collected) since the page was read."""
        with self.store.transaction(readonly=True) as tx:
            named = tx.blob_named(ref.key)
        if not named:
            self.summary.gone += 1
            return
        log.error("blob %s (%s) left as it was: %s", ref.key, ref.owner, problem)
        self.summary.damaged.append(f"{ref.key} ({ref.owner}): {problem}")
