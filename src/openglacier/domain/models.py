"""Records the domain works with. Plain frozen dataclasses: no ORM, no I/O.

Storage adapters map rows to these; the API layer renders them. Times are
timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class Vault:
    """A vault and its inventory bookkeeping (spec 5).

    `write_seq` counts writes (archive added or removed). The last inventory
    snapshot was taken at `inventory_seq`; the vault is dirty while
    `write_seq > inventory_seq`. `live_*` track the current archive set;
    `inventory_*` are what DescribeVault reports.
    """

    id: int
    account_id: str
    region: str
    name: str
    created_at: datetime
    write_seq: int
    live_count: int
    live_size: int
    inventory_seq: int
    inventory_date: datetime | None
    inventory_count: int
    inventory_size: int
    last_write_at: datetime | None

    @property
    def dirty(self) -> bool:
        return self.write_seq > self.inventory_seq


@dataclass(frozen=True)
class Archive:
    """An archive. `removed_seq` is set by DeleteArchive; the row stays until an
    inventory taken at or after that sequence no longer lists it (spec 5)."""

    archive_id: str
    vault_id: int
    description: str | None
    size: int
    tree_hash: str
    sha256: str | None  # linear hash; unknown for multipart archives
    created_at: datetime
    added_seq: int
    removed_seq: int | None = None


@dataclass(frozen=True)
class Segment:
    """A contiguous piece of an archive's bytes held in one blob.

    A single upload is one segment; a multipart archive references its parts'
    blobs in range order, so completion never copies data. `leaf_hashes` are the
    segment's 1 MiB SHA-256 leaf digests, concatenated (32 bytes each). Every
    segment but the last is a whole number of MiB, so the archive's leaves are
    the concatenation of its segments' leaves.
    """

    archive_id: str
    seq: int
    offset: int
    size: int
    blob_key: str
    leaf_hashes: bytes


class UploadState(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    ABORTED = "aborted"


@dataclass(frozen=True)
class Upload:
    upload_id: str
    vault_id: int
    description: str | None
    part_size: int
    created_at: datetime
    last_activity_at: datetime
    state: UploadState
    archive_id: str | None = None
    archive_size: int | None = None
    archive_tree_hash: str | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Part:
    """One uploaded part, keyed by (upload_id, first_byte)."""

    upload_id: str
    first_byte: int
    size: int
    tree_hash: str
    sha256: str
    blob_key: str
    uploaded_at: datetime
    leaf_hashes: bytes = b""  # not loaded by listing queries

    @property
    def last_byte(self) -> int:
        return self.first_byte + self.size - 1


@dataclass(frozen=True)
class InventorySnapshot:
    """An inventory taken at write sequence `seq` (spec 5)."""

    vault_id: int
    seq: int
    taken_at: datetime
    archive_count: int
    size_in_bytes: int


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret_access_key: str
    account_id: str
    created_at: datetime
    description: str = ""
    is_root: bool = False


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of a request."""

    access_key_id: str
    account_id: str
    region: str
