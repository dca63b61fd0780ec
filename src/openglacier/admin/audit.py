"""Integrity audit: re-read stored archives and compare with their recorded hashes.

Checks, per archive, every segment's bytes against its stored 1 MiB leaf digests
(the scrubber's check, domain/scrub/verify.py) and the archive tree hash
against the root of all leaves (design principle 2: verified at rest). Used by
the admin API and by crash-recovery tests.

What it finds is damage like any other (domain/damage.py): recorded durably
(`found_by` "audit"), the archive quarantined, one ERROR line and the metric,
and listed by `GET /_admin/damage`; the scrubber closes the record once the
blob verifies again. A blob that cannot be read for a reason that is not
damage (a store outage, a key id this process lacks: StorageError) stops the
audit with that error instead of being recorded as damaged. With a replica,
reads fall back to the good copy, so the audit finds only archives with no
good copy left; the scrubber verifies (and repairs) each copy.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from openglacier.domain import damage
from openglacier.domain.context import Deps
from openglacier.domain.scrub.verify import check_whole
from openglacier.ports import BlobStore, MetadataTx, ScrubTarget
from openglacier.records import Archive, Segment, Vault
from openglacier.treehash import root_of_leaves

PAGE = 200


def verify_segment(blobs: BlobStore, segment: Segment) -> str | None:
    """None if the blob matches its leaves, else a description of the damage."""
    # The vault is not part of the check: only the blob, its size and leaves.
    target = ScrubTarget(
        segment.blob_key, segment.size, segment.leaf_hashes, 0, segment.archive_id, None
    )
    return check_whole(blobs, target)


async def audit_archives(deps: Deps) -> dict[str, Any]:
    """Audit every live archive in every vault; returns counts and problems.

    Each problem names the archive, its vault's ARN and what is wrong (the
    blob, for blob damage), and is recorded as damage (domain/damage.py).
    """
    checked = 0
    problems: list[dict[str, str]] = []
    vault_ids = await deps.in_tx(lambda tx: tx.all_vault_ids())
    for vault_id in vault_ids:
        vault = await deps.in_tx(partial(_vault, vault_id=vault_id))
        if vault is None:
            continue  # deleted since the list was read
        arn = deps.vault_arn(vault.region, vault.account_id, vault.name)
        after: str | None = None
        while True:
            page = await deps.in_tx(partial(_page, vault_id=vault_id, after=after))
            for archive in page:
                issue, segments = await _audit_archive(deps, archive)
                if issue is not None:
                    where = (archive.archive_id, arn)
                    await deps.in_tx(
                        partial(_record, deps=deps, where=where, segments=segments, issue=issue)
                    )
                    problems.append(
                        {"ArchiveId": archive.archive_id, "VaultARN": arn, "problem": issue}
                    )
                checked += 1
            if len(page) < PAGE:
                break
            after = page[-1].archive_id
    return {"checked": checked, "problems": problems}


async def _audit_archive(deps: Deps, archive: Archive) -> tuple[str | None, list[Segment]]:
    segments = await deps.in_tx(partial(_segments, archive_id=archive.archive_id))
    issue = await deps.blocking(partial(_check, deps.blobs, segments))
    leaves = b"".join(s.leaf_hashes for s in segments)
    if issue is None and root_of_leaves(leaves).hex() != archive.tree_hash:
        issue = "stored leaves do not produce the archive tree hash"
    return issue, segments


def _record(
    tx: MetadataTx, *, deps: Deps, where: tuple[str, str], segments: list[Segment], issue: str
) -> None:
    """The finding, unless the archive was deleted since its page was read
    (its blobs may be collected meanwhile: missing, not damaged)."""
    archive_id, arn = where
    archive = tx.get_archive(archive_id)
    if archive is None or archive.removed_seq is not None:
        return
    now: datetime = deps.clock.now()
    finding = damage.finding(
        blob_key=damage.blob_named(issue, segments) if segments else "",
        problem=issue,
        found_by="audit",
        vault=arn,
        now=now,
        archive_id=archive_id,
        note=damage.note_for(deps.blobs),
    )
    damage.found(tx, finding)


def _vault(tx: MetadataTx, *, vault_id: int) -> Vault | None:
    return tx.get_vault_by_id(vault_id)


def _page(tx: MetadataTx, *, vault_id: int, after: str | None) -> list[Archive]:
    return tx.list_live_archives(vault_id, after, PAGE)


def _segments(tx: MetadataTx, *, archive_id: str) -> list[Segment]:
    return tx.get_segments(archive_id)


def _check(blobs: BlobStore, segments: list[Segment]) -> str | None:
    for segment in segments:
        issue = verify_segment(blobs, segment)
        if issue is not None:
            return issue
    return None
