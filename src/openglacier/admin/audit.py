"""Integrity audit: re-read stored archives and compare with their recorded hashes.

Checks, per archive, every segment's bytes against its stored 1 MiB leaf digests
and the archive tree hash against the root of all leaves (design principle 2:
verified at rest). Used by the admin API and by crash-recovery tests.
"""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Any

from openglacier.domain import damage
from openglacier.domain.context import Deps
from openglacier.domain.models import Archive, Segment, Vault
from openglacier.ports import BlobStore, MetadataTx
from openglacier.treehash import DIGEST_LEN, MIB, root_of_leaves

PAGE = 200


def verify_segment(blobs: BlobStore, segment: Segment) -> str | None:
    """None if the blob matches its leaves, else a description of the damage."""
    leaves = segment.leaf_hashes
    index = 0
    buffered = bytearray()
    size = 0
    try:
        for chunk in blobs.open(segment.blob_key):
            buffered += chunk
            size += len(chunk)
            while len(buffered) >= MIB:
                if hashlib.sha256(buffered[:MIB]).digest() != leaves[index * 32 : index * 32 + 32]:
                    return f"leaf {index} of blob {segment.blob_key} does not match"
                del buffered[:MIB]
                index += 1
    except FileNotFoundError:  # BlobStore.open's answer for a missing blob
        return f"blob {segment.blob_key} is missing"
    except Exception as exc:  # any read failure is damage to report, not to raise
        return f"blob {segment.blob_key} unreadable: {exc}"
    if buffered or index == 0:
        if hashlib.sha256(buffered).digest() != leaves[index * 32 : index * 32 + 32]:
            return f"last leaf of blob {segment.blob_key} does not match"
        index += 1
    if size != segment.size or index * DIGEST_LEN != len(leaves):
        return f"blob {segment.blob_key} holds {size} bytes, expected {segment.size}"
    return None


async def audit_archives(deps: Deps) -> dict[str, Any]:
    """Audit every live archive in every vault; returns counts and problems.

    Each problem names the archive, its vault's ARN and what is wrong (the
    blob, for blob damage), and is logged at ERROR (domain/damage.py).
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
                issue = await _audit_archive(deps, archive)
                if issue is not None:
                    damage.report(archive.archive_id, arn, issue)
                    problems.append(
                        {"ArchiveId": archive.archive_id, "VaultARN": arn, "problem": issue}
                    )
                checked += 1
            if len(page) < PAGE:
                break
            after = page[-1].archive_id
    return {"checked": checked, "problems": problems}


async def _audit_archive(deps: Deps, archive: Archive) -> str | None:
    segments = await deps.in_tx(partial(_segments, archive_id=archive.archive_id))
    issue = await deps.blocking(partial(_check, deps.blobs, segments))
    leaves = b"".join(s.leaf_hashes for s in segments)
    if issue is None and root_of_leaves(leaves).hex() != archive.tree_hash:
        issue = "stored leaves do not produce the archive tree hash"
    return issue


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
