"""Collecting orphan blobs: committed blobs that no metadata row names.

Where they come from. Writes go blob first, metadata second (design 3): a
process that dies after committing a blob and before committing the row that
names it (UploadArchive, UploadMultipartPart, an inventory job's output) leaves
a durable blob nothing refers to. Deletions never leave one: metadata goes
first and the blob-deletion queue removes the blob later.

The race, and why an age bound settles it. That a blob is unreferenced when
the collector looks is not enough: a live writer, on this node or another, may
have committed its blob and be about to commit the row naming it, and nothing
tells that writer apart from a dead one. So only blobs whose last write (the
store's modification time) is older than `Deps.orphan_blob_min_age` are
considered, and their references are read after that test:

- A writer writes its blob, commits it, then commits the row. The modification
  time is that of the last write, so at the row's commit the blob is as old as
  commit-to-row takes: one fsync, one link and one metadata transaction (bounded
  by the database's lock timeout), seconds, minutes on a saturated disk. A slow
  upload is not older: its body is written until the end, and a multipart
  part's row goes in right after that part's blob.
- So a blob past the minimum age is referenced already, or never will be: its
  writer has ended (crashed, or failed and deleted the blob itself). Only a
  writer stalled between its two commits for longer than the minimum age (a
  process stopped with SIGSTOP, a suspended VM) could still name it afterwards.
- No operation makes an existing unreferenced blob referenced: new rows name
  fresh keys, and the rows that copy keys (CompleteMultipartUpload turning parts
  into archive segments, a retrieval job pinning segments) copy them from rows
  that already name them. A key's references are read in one statement
  (`MetadataTx.referenced_blob_keys`), so a key moving between two tables in a
  concurrent transaction is seen in one of them, never in neither.
- Keys in the deletion queue count as referenced: the queue deletes those.

The default minimum age is 24 hours: four orders of magnitude above the normal
commit-to-row window, wide enough for clock differences between nodes and the
blob store and for most stalls, and the scale on which the spec already
expires idle multipart uploads and finished jobs. An orphan costs only disk
space until then.

Age compares the store's modification time (wall clock) with the injected
clock, so with a manual clock, advancing time ages every blob too: that is how
tests trigger a collection.

Memory stays bounded: blobs are listed a page at a time in key order
(`BlobStore.scan`) and each page is checked against the metadata with one
query per chunk of keys, so millions of blobs are never loaded at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from openglacier.domain.context import Deps
from openglacier.ports import BlobEntry, BlobStore

log = logging.getLogger("openglacier.maintenance")

SCAN_PAGE = 1000


async def collect_orphans(deps: Deps, page_size: int = SCAN_PAGE) -> int:
    """Delete every unreferenced blob older than the minimum age; the count."""
    after: str | None = None
    deleted = 0
    while True:
        page = await deps.blocking(partial(deps.blobs.scan, after, page_size))
        if page:
            deleted += await _collect_page(deps, page)
        if len(page) < page_size:
            break
        after = page[-1].key
    if deleted:
        log.info(
            "orphan blobs: deleted %d unreferenced blob(s) older than %s",
            deleted,
            deps.orphan_blob_min_age,
        )
    return deleted


async def _collect_page(deps: Deps, page: Sequence[BlobEntry]) -> int:
    # Committed blobs never change, so the listed time is still the blob's.
    cutoff = deps.clock.now() - deps.orphan_blob_min_age
    old = [entry.key for entry in page if entry.modified_at <= cutoff]
    if not old:
        return 0
    referenced = await deps.blocking(partial(_referenced, deps, old))
    orphans = [key for key in old if key not in referenced]
    if orphans:
        await deps.blocking(partial(_delete_all, deps.blobs, orphans))
    return len(orphans)


def _referenced(deps: Deps, keys: list[str]) -> set[str]:
    # A read snapshot in a worker thread: never takes SQLite's writer lock,
    # and a page's query is too long for the event loop (Deps.in_read_tx).
    with deps.store.transaction(readonly=True) as tx:
        return tx.referenced_blob_keys(keys)


def _delete_all(blobs: BlobStore, keys: list[str]) -> None:
    for key in keys:
        log.debug("orphan blob %s: deleting", key)
        blobs.delete(key)
