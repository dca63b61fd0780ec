"""UploadArchive and DeleteArchive (spec 2.18, 2.19, 3.3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

import anyio

from openglacier.domain.context import MAX_ARCHIVE_SIZE, Deps
from openglacier.domain.ingest import Ingested, discard, ingest
from openglacier.domain.validation import check_description, require_tree_hash
from openglacier.domain.vaults import require_vault
from openglacier.errors import (
    InvalidParameterValueException,
    InvalidSignatureException,
    MissingParameterValueException,
)
from openglacier.ids import new_archive_id
from openglacier.ports import MetadataTx
from openglacier.records import Archive, Caller, Segment


@dataclass(frozen=True)
class ArchiveReceipt:
    archive_id: str
    tree_hash: str
    location: str


def archive_location(account_id: str, vault_name: str, archive_id: str) -> str:
    return f"/{account_id}/vaults/{vault_name}/archives/{archive_id}"


def payload_hash_mismatch(declared: str, computed: str) -> InvalidSignatureException:
    # Spec 1.6 / 1.8: a 403 signature-class error, AWS's wording.
    return InvalidSignatureException(
        "The value passed in as x-amz-content-sha256 does not match the computed payload "
        f"hash. Computed digest: {computed} expected hash: {declared}"
    )


def verify_body(ingested: Ingested, content_sha256: str, tree_hash: str) -> None:
    """Body checks in spec order: the signature-class hash first, then the tree hash."""
    if content_sha256.lower() != ingested.sha256:
        raise payload_hash_mismatch(content_sha256, ingested.sha256)
    if tree_hash != ingested.tree_hash:
        raise InvalidParameterValueException(
            f"Checksum mismatch: expected {tree_hash}, computed {ingested.tree_hash}"
        )


class ArchiveService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def upload(
        self,
        caller: Caller,
        vault_name: str,
        *,
        description: str | None,
        tree_hash: str | None,
        content_sha256: str,
        content_length: int | None,
        body: AsyncIterator[bytes],
    ) -> ArchiveReceipt:
        await self.deps.in_read_tx(lambda tx: require_vault(self.deps, tx, caller, vault_name))
        if content_length is None:
            raise MissingParameterValueException("Required parameter missing: Content-Length")
        if not 1 <= content_length <= MAX_ARCHIVE_SIZE:
            raise InvalidParameterValueException(f"Invalid Content-Length: {content_length}")
        expected = require_tree_hash(tree_hash)
        description = check_description(description)
        ingested = await ingest(
            self.deps,
            body,
            max_bytes=content_length,
            too_long=lambda n: InvalidParameterValueException(f"Invalid Content-Length: {n}"),
        )
        try:
            verify_body(ingested, content_sha256, expected)
            await self.deps.blocking(ingested.commit)
        except BaseException:
            await discard(self.deps, ingested)
            raise
        return await self._record(caller, vault_name, description, ingested)

    async def _record(
        self, caller: Caller, vault_name: str, description: str | None, ingested: Ingested
    ) -> ArchiveReceipt:
        """Metadata second (design 1.3): the blob is durable before the archive exists."""
        archive_id = new_archive_id()

        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, vault_name, for_update=True)
            now = self.deps.clock.now()
            seq = tx.record_write(vault.id, 1, ingested.size, now)
            archive = Archive(
                archive_id=archive_id,
                vault_id=vault.id,
                description=description,
                size=ingested.size,
                tree_hash=ingested.tree_hash,
                sha256=ingested.sha256,
                created_at=now,
                added_seq=seq,
            )
            segment = Segment(archive_id, 0, 0, ingested.size, ingested.writer.key, ingested.leaves)
            tx.insert_archive(archive, [segment])
            self.deps.instant_inventory(tx, vault.id)

        try:
            await self.deps.in_tx(run)
        except BaseException:
            # The vault vanished (or the database failed): the blob is an orphan now.
            with anyio.CancelScope(shield=True):
                await self.deps.blocking(partial(self.deps.blobs.delete, ingested.writer.key))
            raise
        return ArchiveReceipt(
            archive_id,
            ingested.tree_hash,
            archive_location(caller.account_id, vault_name, archive_id),
        )

    async def delete(self, caller: Caller, vault_name: str, archive_id: str) -> None:
        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, vault_name, for_update=True)
            archive = tx.get_archive(archive_id)
            if archive is None or archive.removed_seq is not None:
                return  # idempotent, also for never-issued ids (spec 2.19 [R])
            if archive.vault_id != vault.id:
                arn = self.deps.vault_arn(caller.region, caller.account_id, vault_name)
                raise InvalidParameterValueException(f"Invalid vault name: {arn}")
            now = self.deps.clock.now()
            seq = tx.record_write(vault.id, -1, -archive.size, now)
            tx.remove_archive(archive_id, seq, now)
            self.deps.instant_inventory(tx, vault.id)

        await self.deps.in_tx(run)
        await self.deps.collect_garbage()
