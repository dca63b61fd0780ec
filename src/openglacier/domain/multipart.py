"""Multipart uploads (spec 2.20-2.25, 3.4).

Parts are stored as separate blobs; completion turns them into the archive's
segments inside one metadata transaction, so it copies no data, takes constant
time per part, and is atomic under a crash: either the archive exists with all
its parts, or the upload is still in progress with all its parts.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

import anyio

from openglacier.domain.archives import ArchiveReceipt, archive_location, verify_body
from openglacier.domain.context import Deps
from openglacier.domain.ingest import discard, ingest
from openglacier.domain.markers import decode_position, encode_position
from openglacier.domain.validation import check_description, parse_decimal, require_tree_hash
from openglacier.domain.vaults import require_vault
from openglacier.errors import (
    InvalidParameterValueException,
    MissingParameterValueException,
    ResourceNotFoundException,
)
from openglacier.ids import new_archive_id, new_upload_id
from openglacier.ports import MetadataTx
from openglacier.records import Archive, Caller, Part, Upload, UploadState
from openglacier.treehash import MIB, combine

MIN_PART_SIZE = MIB
MAX_PART_SIZE = 4096 * MIB
MAX_PARTS = 10_000
_RANGE_RE = re.compile(r"\Abytes (\d+)-(\d+)/(\*|\d+)\Z")


@dataclass(frozen=True)
class UploadPage:
    uploads: list[Upload]
    marker: str | None


@dataclass(frozen=True)
class PartPage:
    upload: Upload
    parts: list[Part]
    marker: str | None


def parse_part_size(value: str | None) -> int:
    """Spec 2.20: a power-of-two multiple of 1 MiB from 1 MiB to 4 GiB.

    A missing header is reported like a zero part size, as the real service does.
    """
    size = parse_decimal(value) if value is not None else 0
    if size is None or not MIN_PART_SIZE <= size <= MAX_PART_SIZE or size & (size - 1):
        raise InvalidParameterValueException(
            f"Invalid part size: {value if value is not None else 0}. Part size must not be "
            "null, must be a power of two and be between 1048576 and 4294967296 bytes."
        )
    return size


def parse_content_range(value: str | None) -> tuple[int, int]:
    """`bytes {first}-{last}/*` (or `/{total}`), inclusive (spec 2.21).

    A total is optional (spec 2.21 [R]) and otherwise unused, but one that the
    range itself contradicts (`bytes 0-1048575/3`: the range ends past it) makes
    the header invalid (RFC 9110 section 14.4: last-pos < complete-length), and a
    client sending it has a bug worth reporting rather than ignoring.
    """
    if value is None:
        raise MissingParameterValueException("Required parameter missing: Content-Range")
    match = _RANGE_RE.match(value)
    if (
        match is None
        or int(match[1]) > int(match[2])
        or (match[3] != "*" and int(match[3]) <= int(match[2]))
    ):
        raise InvalidParameterValueException(f"Invalid Content-Range: {value}")
    return int(match[1]), int(match[2])


def upload_not_found(upload_id: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"The upload ID was not found: {upload_id}")


def check_parts(parts: list[Part], part_size: int, archive_size: int) -> None:
    """Spec 2.22: contiguous from 0, full-size parts but the last, sizes add up."""
    expected_first = 0
    for index, part in enumerate(parts):
        if part.first_byte != expected_first:
            raise InvalidParameterValueException(
                f"Missing content range: bytes {expected_first}-{part.first_byte - 1}"
            )
        if index < len(parts) - 1 and part.size != part_size:
            raise InvalidParameterValueException(
                f"Part {part.first_byte}-{part.last_byte} is smaller than the part size "
                f"{part_size}; only the last part may be smaller."
            )
        expected_first = part.first_byte + part.size
    if expected_first < archive_size:
        raise InvalidParameterValueException(
            f"Missing content range: bytes {expected_first}-{archive_size - 1}"
        )
    if expected_first != archive_size:
        raise InvalidParameterValueException(
            f"Archive size does not match the sum of uploaded parts: {archive_size} "
            f"given, {expected_first} uploaded"
        )


def check_part_slot(part_size: int, first: int, length: int, content_range: str | None) -> None:
    """Spec 2.21: aligned to the part size, no longer than it, part number <= 10,000."""
    if first % part_size or length > part_size:
        raise InvalidParameterValueException(
            f"Content-Range: {content_range} is not aligned with part size {part_size}"
        )
    number = first // part_size + 1
    if number > MAX_PARTS:
        raise InvalidParameterValueException(
            f"This is part number {number} for the current multipart upload. "
            f"It exceeds the limit of {MAX_PARTS} parts."
        )


class MultipartService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _active_upload(
        self, tx: MetadataTx, vault_id: int, upload_id: str, *, for_update: bool = False
    ) -> Upload:
        upload = tx.get_upload(upload_id, for_update=for_update)
        if upload is None or upload.vault_id != vault_id or upload.state != UploadState.ACTIVE:
            raise upload_not_found(upload_id)
        return upload

    async def initiate(
        self, caller: Caller, vault_name: str, part_size: str | None, description: str | None
    ) -> tuple[str, str]:
        def run(tx: MetadataTx) -> str:
            vault = require_vault(self.deps, tx, caller, vault_name)
            size = parse_part_size(part_size)
            clean = check_description(description, strip_leading=True)
            now = self.deps.clock.now()
            upload_id = new_upload_id()
            tx.insert_upload(Upload(upload_id, vault.id, clean, size, now, now, UploadState.ACTIVE))
            return upload_id

        upload_id = await self.deps.in_tx(run)
        location = f"/{caller.account_id}/vaults/{vault_name}/multipart-uploads/{upload_id}"
        return upload_id, location

    async def upload_part(
        self,
        caller: Caller,
        vault_name: str,
        upload_id: str,
        *,
        content_range: str | None,
        content_length: int | None,
        tree_hash: str | None,
        content_sha256: str,
        body: AsyncIterator[bytes],
    ) -> str:
        # One lookup; its answers are raised in spec 1.8 order: vault, headers, upload.
        upload = await self.deps.in_tx(
            partial(self._find_upload, caller=caller, vault_name=vault_name, upload_id=upload_id)
        )
        first, last = parse_content_range(content_range)
        length = last - first + 1
        if content_length is not None and content_length != length:
            raise InvalidParameterValueException(
                f"Content-Range: {content_range} is incompatible with Content-Length: "
                f"{content_length}"
            )
        expected = require_tree_hash(tree_hash)
        if upload is None:
            raise upload_not_found(upload_id)
        check_part_slot(upload.part_size, first, length, content_range)

        def mismatch(n: int) -> InvalidParameterValueException:
            return InvalidParameterValueException(
                f"Content-Range: {content_range} is incompatible with Content-Length: {n}"
            )

        ingested = await ingest(self.deps, body, max_bytes=length, too_long=mismatch)
        try:
            if ingested.size != length:
                raise mismatch(ingested.size)
            verify_body(ingested, content_sha256, expected)
            await self.deps.blocking(ingested.commit)
        except BaseException:
            await discard(self.deps, ingested)
            raise
        part = Part(
            upload_id=upload_id,
            first_byte=first,
            size=length,
            tree_hash=ingested.tree_hash,
            sha256=ingested.sha256,
            blob_key=ingested.writer.key,
            uploaded_at=self.deps.clock.now(),
            leaf_hashes=ingested.leaves,
        )
        await self._record_part(caller, vault_name, part)
        return ingested.tree_hash

    def _find_upload(
        self, tx: MetadataTx, *, caller: Caller, vault_name: str, upload_id: str
    ) -> Upload | None:
        """The vault must exist (404 now); the upload's absence is reported later."""
        vault = require_vault(self.deps, tx, caller, vault_name)
        upload = tx.get_upload(upload_id)
        if upload is None or upload.vault_id != vault.id or upload.state != UploadState.ACTIVE:
            return None
        return upload

    async def _record_part(self, caller: Caller, vault_name: str, part: Part) -> None:
        def run(tx: MetadataTx) -> bool:
            vault = require_vault(self.deps, tx, caller, vault_name)
            self._active_upload(tx, vault.id, part.upload_id, for_update=True)
            existing = tx.list_parts(part.upload_id, part.first_byte, 1)
            replaced = bool(existing) and existing[0].first_byte == part.first_byte
            tx.put_part(part)
            tx.touch_upload(part.upload_id, part.uploaded_at)
            return replaced

        try:
            replaced = await self.deps.in_tx(run)
        except BaseException:
            # Aborted or completed meanwhile: this part's blob belongs to nobody.
            with anyio.CancelScope(shield=True):
                await self.deps.blocking(partial(self.deps.blobs.delete, part.blob_key))
            raise
        if replaced:
            await self.deps.collect_garbage()  # the replaced part's old blob

    async def complete(
        self,
        caller: Caller,
        vault_name: str,
        upload_id: str,
        archive_size: str | None,
        tree_hash: str | None,
    ) -> ArchiveReceipt:
        if archive_size is None or archive_size == "":
            raise MissingParameterValueException("Required parameter missing: x-amz-archive-size")
        expected = require_tree_hash(tree_hash)
        size = parse_decimal(archive_size)
        if size is None:
            raise InvalidParameterValueException(f"Invalid x-amz-archive-size: {archive_size}")

        def run(tx: MetadataTx) -> tuple[str, str]:
            vault = require_vault(self.deps, tx, caller, vault_name, for_update=True)
            upload = tx.get_upload(upload_id, for_update=True)
            if upload is None or upload.vault_id != vault.id:
                raise upload_not_found(upload_id)
            if upload.state == UploadState.COMPLETED and upload.archive_id is not None:
                # Spec 2.22: a repeated Complete returns the same archive.
                return upload.archive_id, upload.archive_tree_hash or expected
            if upload.state != UploadState.ACTIVE:
                raise upload_not_found(upload_id)
            return self._finish(tx, vault.id, upload, size, expected), expected

        archive_id, checksum = await self.deps.in_tx(run)
        location = archive_location(caller.account_id, vault_name, archive_id)
        return ArchiveReceipt(archive_id, checksum, location)

    def _finish(
        self, tx: MetadataTx, vault_id: int, upload: Upload, size: int, expected: str
    ) -> str:
        parts = tx.list_parts(upload.upload_id, 0, MAX_PARTS + 1)
        if not parts:
            raise InvalidParameterValueException(
                f"Missing content range: bytes 0-{max(size - 1, 0)}"
            )
        check_parts(parts, upload.part_size, size)
        # Spec 3.4: every part but the last is a 2^k MiB node of the archive tree.
        if combine([p.tree_hash for p in parts]) != expected:
            raise InvalidParameterValueException(f"Invalid x-amz-sha256-tree-hash: {expected}")
        now = self.deps.clock.now()
        seq = tx.record_write(vault_id, 1, size, now)
        archive = Archive(
            archive_id=new_archive_id(),
            vault_id=vault_id,
            description=upload.description,
            size=size,
            tree_hash=expected,
            sha256=None,
            created_at=now,
            added_seq=seq,
        )
        tx.complete_upload(upload.upload_id, archive, now)
        self.deps.instant_inventory(tx, vault_id)
        return archive.archive_id

    async def abort(self, caller: Caller, vault_name: str, upload_id: str) -> None:
        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, vault_name)
            upload = tx.get_upload(upload_id, for_update=True)
            if upload is None or upload.vault_id != vault.id:
                raise upload_not_found(upload_id)
            if upload.state == UploadState.COMPLETED:
                raise upload_not_found(upload_id)  # spec 2.23 [R]
            if upload.state == UploadState.ACTIVE:
                tx.end_upload(upload_id, UploadState.ABORTED, self.deps.clock.now())

        await self.deps.in_tx(run)
        await self.deps.collect_garbage()

    async def list_uploads(
        self, caller: Caller, vault_name: str, limit: int, marker: str | None
    ) -> UploadPage:
        after = decode_position(marker) if marker else None

        def run(tx: MetadataTx) -> list[Upload]:
            vault = require_vault(self.deps, tx, caller, vault_name)
            return tx.list_uploads(vault.id, after, limit + 1)

        rows = await self.deps.in_read_tx(run)
        nxt = (
            encode_position(rows[limit - 1].created_at, rows[limit - 1].upload_id)
            if len(rows) > limit
            else None
        )
        return UploadPage(rows[:limit], nxt)

    async def list_parts(
        self, caller: Caller, vault_name: str, upload_id: str, limit: int, marker: str | None
    ) -> PartPage:
        start = parse_decimal(marker) if marker else 0
        if start is None:
            raise InvalidParameterValueException(f"Invalid marker: {marker}")

        def run(tx: MetadataTx) -> tuple[Upload, list[Part]]:
            vault = require_vault(self.deps, tx, caller, vault_name)
            upload = self._active_upload(tx, vault.id, upload_id)
            # A part's first byte: aligned, and inside the 10,000 parts an upload can
            # have (which also keeps it in the store's 64-bit integer range).
            if start % upload.part_size or start >= MAX_PARTS * upload.part_size:
                raise InvalidParameterValueException(f"Invalid marker: {marker}")
            return upload, tx.list_parts(upload_id, start, limit + 1)

        upload, rows = await self.deps.in_read_tx(run)
        nxt = str(rows[limit].first_byte) if len(rows) > limit else None
        return PartPage(upload, rows[:limit], nxt)
