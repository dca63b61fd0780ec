"""Records the domain works with. Plain frozen dataclasses: no ORM, no I/O.

They sit below both the domain and `ports.py`, so each imports them downward.
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


class JobAction(StrEnum):
    """`Action` in job descriptions (spec 4.1)."""

    ARCHIVE = "ArchiveRetrieval"
    INVENTORY = "InventoryRetrieval"
    SELECT = "Select"


class JobStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class InventoryParams:
    """InventoryRetrievalParameters as given (spec 4.5); strings echo the input."""

    format: str = "JSON"
    start_date: str | None = None
    end_date: str | None = None
    limit: str | None = None
    marker: str | None = None


@dataclass(frozen=True)
class Job:
    """A retrieval job (spec 2.26-2.29, 4).

    `due_at` is when the job's data is "prepared" on the timing profile; a
    runner completes it at or after that instant. `lease_owner`/`lease_until`
    record which runner holds it; completion is accepted only from the holder
    of an unexpired lease, so a job is never completed twice.
    """

    job_id: str
    vault_id: int
    action: JobAction
    status: JobStatus
    created_at: datetime
    due_at: datetime
    description: str | None = None
    sns_topic: str | None = None
    tier: str | None = None
    status_message: str | None = None
    completed_at: datetime | None = None
    # archive retrieval and select
    archive_id: str | None = None
    archive_size: int | None = None
    archive_tree_hash: str | None = None
    archive_description: str | None = None
    range_start: int | None = None
    range_end: int | None = None  # inclusive
    range_tree_hash: str | None = None  # SHA256TreeHash: set iff the range is tree-hash aligned
    # inventory retrieval
    inventory: InventoryParams | None = None
    next_marker: str | None = None
    # select: the request's JSON members, stored verbatim (echoed in descriptions)
    select_parameters: str | None = None
    output_location: str | None = None
    output_path: str | None = None
    # output (inventory: a blob of its own; archive: job segments)
    output_blob_key: str | None = None
    output_size: int | None = None
    # runner bookkeeping
    lease_owner: str | None = None
    lease_until: datetime | None = None
    attempts: int = 0

    @property
    def completed(self) -> bool:
        return self.status != JobStatus.IN_PROGRESS


@dataclass(frozen=True)
class NotificationConfig:
    """A vault's notification configuration (spec 2.5)."""

    sns_topic: str
    events: tuple[str, ...]


@dataclass(frozen=True)
class Notification:
    """One message to deliver to one topic; kept until delivered or given up."""

    id: int
    topic_arn: str
    message: str
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    state: str = "pending"  # pending | delivered | failed


@dataclass(frozen=True)
class InventoryItem:
    """One archive as an inventory lists it (spec 4.6)."""

    archive_id: str
    description: str | None
    created_at: datetime
    size: int
    tree_hash: str


@dataclass(frozen=True)
class DataRetrievalRule:
    """The one rule of an account's data retrieval policy (spec 2.30, 6.4)."""

    strategy: str  # "None" | "FreeTier" | "BytesPerHour"
    bytes_per_hour: int | None = None


@dataclass(frozen=True)
class CapacityUnit:
    """A provisioned capacity unit (spec 2.32, 6.5)."""

    capacity_id: str
    account_id: str
    region: str
    start_date: datetime
    expiration_date: datetime


class LockState(StrEnum):
    """`State` of GetVaultLock (spec 2.14)."""

    IN_PROGRESS = "InProgress"
    LOCKED = "Locked"


@dataclass(frozen=True)
class VaultLock:
    """A vault's lock policy and where it is in the state machine of spec 2.11-2.14."""

    vault_id: int
    policy: str
    state: LockState
    lock_id: str
    created_at: datetime
    expires_at: datetime | None  # None once Locked

    def in_force(self, now: datetime) -> bool:
        """Locked for ever, or InProgress until the lock id expires (spec 6.2)."""
        if self.state is LockState.LOCKED:
            return True
        return self.expires_at is not None and now < self.expires_at


@dataclass(frozen=True)
class VaultGovernance:
    """The documents that decide who may act on a vault (spec 6.1-6.3)."""

    access_policy: str | None
    lock: VaultLock | None  # as stored: the caller decides whether it is in force


@dataclass(frozen=True)
class GovernedVault:
    """A row of the operator listing: a vault with an access policy or a lock."""

    vault: Vault
    governance: VaultGovernance
