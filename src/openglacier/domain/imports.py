"""Importing an archive under the id it had elsewhere (`openglacier migrate`).

People leaving AWS Glacier keep archive ids in their catalogues and scripts, so an
operator may create an archive with a given id, description, creation date and tree
hash. The body streams through the same path as UploadArchive (`domain/ingest.py`):
hashed while written, never held in memory, and nothing is recorded unless the tree
hash of the bytes received is the one declared.

Archive ids are random tokens of 138 characters from `[A-Za-z0-9_-]` (ids.py), the
shape AWS issues too; every later operation looks archives up by that string alone
(nothing is encoded in it), so a foreign id of that shape works everywhere, and
anything else is refused before a byte is read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import anyio

from openglacier.domain.archives import archive_location
from openglacier.domain.context import MAX_ARCHIVE_SIZE, Deps
from openglacier.domain.ingest import Ingested, discard, ingest
from openglacier.domain.vaults import require_vault
from openglacier.errors import GlacierError, InvalidParameterValueException
from openglacier.ids import ARCHIVE_ID_LEN, looks_like_id
from openglacier.ports import MetadataTx
from openglacier.records import Archive, Caller, Segment, Vault


class ImportConflict(GlacierError):
    """The id is taken by another archive (other bytes, another vault, or deleted)."""

    code = "ConflictException"
    http_status = 409
    fault = "Client"


@dataclass(frozen=True)
class ImportRequest:
    archive_id: str
    description: str | None
    created_at: datetime
    tree_hash: str  # lowercase hex, checked by the caller
    size: int


@dataclass(frozen=True)
class ImportResult:
    imported: bool  # False: the same archive was already there (idempotent skip)
    archive_id: str
    size: int
    tree_hash: str
    location: str


def check_archive_id(archive_id: str) -> str:
    if not looks_like_id(archive_id, ARCHIVE_ID_LEN):
        raise InvalidParameterValueException(
            f"Invalid archive id: an archive id is {ARCHIVE_ID_LEN} characters "
            "from A-Z, a-z, 0-9, '_' and '-'"
        )
    return archive_id


class ArchiveImporter:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def run(
        self, caller: Caller, vault_name: str, req: ImportRequest, body: AsyncIterator[bytes]
    ) -> ImportResult:
        """Import `body` as archive `req.archive_id`; a no-op if it is already there.

        The id is checked before the body is read, so a repeated import (a resumed
        migration) costs no transfer: the answer goes out with the body unread.
        """
        check_archive_id(req.archive_id)
        if not 1 <= req.size <= MAX_ARCHIVE_SIZE:
            raise InvalidParameterValueException(f"Invalid Content-Length: {req.size}")
        if req.created_at > self.deps.clock.now():
            raise InvalidParameterValueException(
                "Invalid creation date: it is later than the server's clock"
            )
        found = await self.deps.in_read_tx(partial(self._existing, caller, vault_name, req))
        if found is not None:
            return found
        ingested = await ingest(
            self.deps,
            body,
            max_bytes=req.size,
            too_long=lambda n: InvalidParameterValueException(f"Invalid Content-Length: {n}"),
        )
        try:
            if ingested.size != req.size:
                raise InvalidParameterValueException(
                    f"Invalid Content-Length: {req.size}, received {ingested.size} bytes"
                )
            if ingested.tree_hash != req.tree_hash:
                raise InvalidParameterValueException(
                    f"Checksum mismatch: expected {req.tree_hash}, computed {ingested.tree_hash}"
                )
            await self.deps.blocking(ingested.commit)
        except BaseException:
            await discard(self.deps, ingested)
            raise
        return await self._record(caller, vault_name, req, ingested)

    def _existing(
        self, caller: Caller, vault_name: str, req: ImportRequest, tx: MetadataTx
    ) -> ImportResult | None:
        vault = require_vault(self.deps, tx, caller, vault_name)
        return self._same(tx, caller, vault, req)

    def _same(
        self, tx: MetadataTx, caller: Caller, vault: Vault, req: ImportRequest
    ) -> ImportResult | None:
        """None if the id is free; the skip answer if this very archive is there."""
        archive = tx.get_archive(req.archive_id)
        if archive is None:
            return None
        # Archive ids are unique across the server (the table's primary key), and a
        # deleted archive's row stays until an inventory no longer lists it.
        if archive.removed_seq is not None:
            raise ImportConflict(f"Archive {req.archive_id} was deleted here; ids are not reused")
        if archive.vault_id != vault.id:
            raise ImportConflict(f"Archive {req.archive_id} exists in another vault")
        if archive.tree_hash != req.tree_hash or archive.size != req.size:
            raise ImportConflict(
                f"Archive {req.archive_id} exists with another content: tree hash "
                f"{archive.tree_hash}, {archive.size} bytes"
            )
        return ImportResult(
            False,
            archive.archive_id,
            archive.size,
            archive.tree_hash,
            archive_location(caller.account_id, vault.name, archive.archive_id),
        )

    async def _record(
        self, caller: Caller, vault_name: str, req: ImportRequest, ingested: Ingested
    ) -> ImportResult:
        """Metadata second (design 1.3): the blob is durable before the archive exists."""

        def run(tx: MetadataTx) -> ImportResult | None:
            vault = require_vault(self.deps, tx, caller, vault_name, for_update=True)
            same = self._same(tx, caller, vault, req)  # a concurrent import of the same id
            if same is not None:
                return same
            seq = tx.record_write(vault.id, 1, ingested.size, self.deps.clock.now())
            archive = Archive(
                archive_id=req.archive_id,
                vault_id=vault.id,
                description=req.description,
                size=ingested.size,
                tree_hash=ingested.tree_hash,
                sha256=ingested.sha256,
                created_at=req.created_at,
                added_seq=seq,
            )
            segment = Segment(
                req.archive_id, 0, 0, ingested.size, ingested.writer.key, ingested.leaves
            )
            tx.insert_archive(archive, [segment])
            self.deps.instant_inventory(tx, vault.id)
            return None

        try:
            same = await self.deps.in_tx(run)
        except BaseException:
            await self._drop(ingested)
            raise
        if same is not None:
            await self._drop(ingested)
            return same
        location = archive_location(caller.account_id, vault_name, req.archive_id)
        return ImportResult(True, req.archive_id, ingested.size, ingested.tree_hash, location)

    async def _drop(self, ingested: Ingested) -> None:
        with anyio.CancelScope(shield=True):
            await self.deps.blocking(partial(self.deps.blobs.delete, ingested.writer.key))
