"""Ports: the interfaces the domain needs from storage (design 4).

Adapters live in `storage/`. The domain depends only on these protocols.

MetadataStore
    Every domain operation runs inside one `transaction()`; the adapter commits
    when the block exits normally and rolls back on an exception. A store may
    also take writes through `submit_write` and commit several in one
    transaction, each in its own savepoint (SQLite's group commit). Methods are
    blocking; the domain calls them from a worker thread (`domain/context.py`),
    never on the event loop. `for_update=True` locks the row until commit (SQLite
    transactions are serialised already; PostgreSQL uses SELECT ... FOR UPDATE).

BlobStore
    Keys are ours (`ids.new_blob_key`), never user strings. A blob is invisible
    until `BlobWriter.commit()` returns, and durable from then on (design 3):
    callers commit the blob first and metadata second, and delete metadata first
    and blobs later (through the blob-deletion queue in the metadata store).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from openglacier.keyring import Keyring
from openglacier.records import (
    Archive,
    CapacityUnit,
    Credential,
    DataRetrievalRule,
    GovernedVault,
    InventoryItem,
    InventorySnapshot,
    Job,
    JobStatus,
    Notification,
    NotificationConfig,
    Part,
    Segment,
    Upload,
    UploadState,
    Vault,
    VaultGovernance,
    VaultLock,
)

_T = TypeVar("_T")


class MetadataTx(Protocol):
    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: an exception leaving the block undoes only what
        the block wrote, and the transaction goes on (batched job completions)."""
        ...

    # --- vaults -------------------------------------------------------------
    def get_vault(
        self, account_id: str, region: str, name: str, *, for_update: bool = False
    ) -> Vault | None: ...

    def get_vault_by_id(self, vault_id: int, *, for_update: bool = False) -> Vault | None: ...

    def create_vault(self, account_id: str, region: str, name: str, now: datetime) -> Vault:
        """Insert the vault, or return the existing one of that name (idempotent)."""
        ...

    def count_vaults(self, account_id: str, region: str) -> int: ...

    def list_vaults(
        self, account_id: str, region: str, start_name: str | None, limit: int
    ) -> list[Vault]:
        """Vaults with name >= start_name (all if None), ASCII (binary) order."""
        ...

    def delete_vault(self, vault_id: int, now: datetime) -> None:
        """Delete the vault and everything hanging off it (tags, uploads, parts,
        archive rows, snapshots). Blobs still referenced are queued for deletion."""
        ...

    def record_write(self, vault_id: int, count_delta: int, size_delta: int, now: datetime) -> int:
        """Bump write_seq and the live counters; returns the new write_seq."""
        ...

    def take_inventory(self, vault_id: int, now: datetime) -> InventorySnapshot | None:
        """If the vault is dirty: snapshot live counters at write_seq, record the
        snapshot, purge archive rows removed at or before it. Else None."""
        ...

    def vaults_due_for_inventory(self, not_after: datetime, limit: int) -> list[int]:
        """Dirty vaults whose last inventory (or creation) is at or before not_after."""
        ...

    def latest_inventory(self, vault_id: int) -> InventorySnapshot | None: ...

    def all_vault_ids(self) -> list[int]:
        """Every vault of every account and region (audits, maintenance)."""
        ...

    # --- tags ---------------------------------------------------------------
    def get_tags(self, vault_id: int) -> dict[str, str]: ...

    def put_tags(self, vault_id: int, tags: dict[str, str]) -> None: ...

    def delete_tags(self, vault_id: int, keys: Sequence[str]) -> None: ...

    # --- archives -----------------------------------------------------------
    def insert_archive(self, archive: Archive, segments: Sequence[Segment]) -> None: ...

    def get_archive(self, archive_id: str, *, for_update: bool = False) -> Archive | None:
        """Any archive row, live or removed-but-not-purged, in any vault. With
        `for_update`, DeleteArchive waits until this transaction ends."""
        ...

    def remove_archive(self, archive_id: str, removed_seq: int, now: datetime) -> None:
        """Mark removed and queue its segments' blobs for deletion."""
        ...

    def get_segments(self, archive_id: str) -> list[Segment]: ...

    def list_live_archives(self, vault_id: int, after_id: str | None, limit: int) -> list[Archive]:
        """Live archives ordered by archive_id, starting after `after_id`."""
        ...

    # --- multipart ----------------------------------------------------------
    def insert_upload(self, upload: Upload) -> None: ...

    def get_upload(self, upload_id: str, *, for_update: bool = False) -> Upload | None: ...

    def touch_upload(self, upload_id: str, now: datetime) -> None: ...

    def list_uploads(
        self, vault_id: int, after: tuple[datetime, str] | None, limit: int
    ) -> list[Upload]:
        """Active uploads ordered by (created_at, upload_id), strictly after `after`."""
        ...

    def put_part(self, part: Part) -> None:
        """Insert or replace the part at (upload_id, first_byte). A replaced
        part's blob is queued for deletion in the same transaction."""
        ...

    def list_parts(self, upload_id: str, from_byte: int, limit: int) -> list[Part]:
        """Parts with first_byte >= from_byte in range order, without leaf hashes."""
        ...

    def count_parts(self, upload_id: str) -> int: ...

    def complete_upload(self, upload_id: str, archive: Archive, now: datetime) -> None:
        """Turn the upload's parts into the archive's segments (no data copied),
        insert the archive, mark the upload completed with its archive id."""
        ...

    def end_upload(self, upload_id: str, state: UploadState, now: datetime) -> None:
        """Mark aborted (or expired): parts deleted, their blobs queued for deletion."""
        ...

    def inactive_uploads(self, idle_since: datetime, limit: int) -> list[str]:
        """Active uploads with last activity at or before idle_since."""
        ...

    def purge_ended_uploads(self, ended_before: datetime) -> int: ...

    # --- jobs (spec 2.26-2.29, 4) ---------------------------------------------
    def insert_job(self, job: Job) -> None: ...

    def get_job(self, job_id: str, *, for_update: bool = False) -> Job | None: ...

    def list_jobs(
        self,
        vault_id: int,
        after: tuple[datetime, str] | None,
        limit: int,
        *,
        status: JobStatus | None = None,
        completed: bool | None = None,
    ) -> list[Job]:
        """Jobs ordered by (created_at, job_id), strictly after `after`, filtered."""
        ...

    def retrieval_bytes(
        self, account_id: str, region: str, tier: str, *, in_progress: bool, since: datetime | None
    ) -> int:
        """Bytes of the account's archive retrievals of `tier` (in progress and/or
        initiated since `since`)."""
        ...

    def count_jobs_since(self, account_id: str, region: str, tier: str, since: datetime) -> int:
        """The account's jobs of `tier` initiated after `since`."""
        ...

    def count_due_jobs(self, now: datetime) -> int:
        """In-progress jobs due at `now`, leased or not."""
        ...

    def claim_due_jobs(
        self,
        now: datetime,
        owner: str,
        lease_until: datetime,
        limit: int,
        *,
        archive: bool | None = None,
    ) -> list[Job]:
        """Lease due in-progress jobs whose lease is free or expired, oldest due
        first; never one that another transaction is claiming at the same time.
        `archive`: only archive retrievals (True), only the others (False)."""
        ...

    def claim_job(
        self, job_id: str, now: datetime, owner: str, lease_until: datetime
    ) -> Job | None:
        """Lease one in-progress job now, due or not; None if leased or finished."""
        ...

    def renew_leases(self, job_ids: Sequence[str], owner: str, lease_until: datetime) -> set[str]:
        """Renew every listed in-progress job still leased to `owner`; those renewed.

        Never waits for a row lock: a job whose row another transaction holds
        (the same runner completing it) is skipped and left out of the result."""
        ...

    def finish_job(self, job: Job, owner: str | None) -> bool:
        """Store the finished `job` iff it is still in progress and (owner given)
        still leased to `owner`."""
        ...

    def put_job_segments(self, job_id: str, segments: Sequence[Segment]) -> None:
        """Pin segment blobs for the job (its retrieved bytes)."""
        ...

    def get_job_segments(self, job_id: str, archive_id: str) -> list[Segment]: ...

    def release_job_segments(self, job_id: str, now: datetime) -> None: ...

    def expired_jobs(self, completed_before: datetime, limit: int) -> list[str]: ...

    def delete_job(self, job_id: str, now: datetime) -> None:
        """Forget the job; queue its output blob and pinned segment blobs."""
        ...

    def inventory_items(
        self,
        vault_id: int,
        seq: int,
        *,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[InventoryItem]:
        """The archives of the inventory taken at `seq`, by (created_at, archive_id)."""
        ...

    # --- notifications (spec 2.5-2.7, 4.7) -----------------------------------
    def get_vault_notifications(self, vault_id: int) -> NotificationConfig | None: ...

    def set_vault_notifications(self, vault_id: int, config: NotificationConfig) -> None: ...

    def delete_vault_notifications(self, vault_id: int) -> None: ...

    def enqueue_notification(self, topic_arn: str, message: str, now: datetime) -> None: ...

    def claim_notifications(
        self, now: datetime, until: datetime, limit: int
    ) -> list[Notification]: ...

    def settle_notification(
        self,
        notification_id: int,
        *,
        attempts: int,
        state: str,
        next_attempt_at: datetime | None,
        last_error: str | None,
    ) -> bool:
        """Settle the claim that made `attempts`; False if a newer claim exists."""
        ...

    def list_notifications(self, state: str | None, limit: int) -> list[Notification]: ...

    def purge_delivered_notifications(self, created_before: datetime) -> int:
        """Forget delivered messages; failed ones stay for operators."""
        ...

    # --- account-level settings (spec 2.30-2.33) --------------------------------
    def get_data_retrieval_rule(self, account_id: str, region: str) -> DataRetrievalRule | None: ...

    def set_data_retrieval_rule(
        self, account_id: str, region: str, rule: DataRetrievalRule
    ) -> None: ...

    def insert_capacity(self, unit: CapacityUnit) -> None: ...

    def count_active_capacity(self, account_id: str, region: str, now: datetime) -> int: ...

    def list_capacity(
        self, account_id: str, region: str, expired_after: datetime
    ) -> list[CapacityUnit]:
        """Units expiring after `expired_after`, by start date."""
        ...

    # --- vault access policies and locks (spec 2.8-2.14) ----------------------
    def get_vault_governance(self, vault_id: int) -> VaultGovernance: ...

    def get_governed_vault(self, account_id: str, region: str, name: str) -> GovernedVault | None:
        """The vault with its access policy and lock row, in one read."""
        ...

    def set_vault_access_policy(self, vault_id: int, policy: str, now: datetime) -> None: ...

    def delete_vault_access_policy(self, vault_id: int) -> None: ...

    def get_vault_lock(self, vault_id: int) -> VaultLock | None:
        """The lock row as stored, expired or not."""
        ...

    def put_vault_lock(self, lock: VaultLock) -> None: ...

    def delete_vault_lock(self, vault_id: int, *, unless_locked: bool = True) -> None: ...

    def lock_vault(self, vault_id: int, lock_id: str) -> bool:
        """InProgress -> Locked when `lock_id` matches; False if nothing changed."""
        ...

    def purge_expired_locks(self, now: datetime) -> int: ...

    # --- metrics (storage/metadata/stats.py) ----------------------------------
    def store_stats(self) -> StoreStats:
        """Stored archives and bytes per account, open uploads, jobs: cheap reads
        (vault counters, indexes), for the gauges maintenance refreshes."""
        ...

    # --- usage report (storage/metadata/usage.py) -----------------------------
    def add_usage(self, rows: Sequence[UsageRow]) -> None:
        """Add each row's number and bytes to its (day, account, vault, kind,
        name) row, creating it at zero first: several processes' flushes add up."""
        ...

    def snapshot_usage(self, day: str) -> int:
        """Set `day`'s "stored" row of every vault to its live archives and bytes
        (the vault counters, not a scan); returns the vaults written."""
        ...

    def usage_rows(
        self, account_id: str | None, since: str | None, until: str | None
    ) -> list[UsageRow]:
        """Rollup rows, `since` and `until` ("YYYY-MM-DD") inclusive, in key order."""
        ...

    def list_governed_vaults(self) -> list[GovernedVault]: ...

    # --- blob deletion queue ------------------------------------------------
    def queue_blob_deletes(self, keys: Sequence[str], now: datetime) -> None: ...

    def pending_blob_deletes(self, limit: int, due: datetime | None = None) -> list[str]:
        """Queued keys nothing names, oldest first; with `due`, only those queued
        for deletion at or before it (blobs rewrite queues a switched blob for
        later, so reads that began before the switch can finish)."""
        ...

    def forget_blob_deletes(self, keys: Sequence[str]) -> None: ...

    def referenced_blob_keys(self, keys: Sequence[str]) -> set[str]:
        """Those of `keys` that some row names: an archive segment, a multipart
        part, a job's pinned segment or output, or the deletion queue. Each
        key is judged in one statement (one snapshot, also under PostgreSQL's
        READ COMMITTED), so a key moving between tables (a part becoming a
        segment) is never seen in neither."""
        ...

    # --- credentials --------------------------------------------------------
    def put_credential(self, credential: Credential) -> None: ...

    def get_credential(self, access_key_id: str) -> Credential | None: ...

    def list_credentials(self) -> list[Credential]: ...

    def delete_credential(self, access_key_id: str) -> bool: ...

    # --- the deployment's blob store (issue 13) --------------------------------
    def recorded_blob_url(self) -> str | None:
        """The blob URL recorded at first start (canonical form), or None."""
        ...

    def record_blob_url(self, url: str, now: datetime) -> str:
        """Record `url` unless a URL is recorded already; the recorded one (insert
        if absent, then read back: of two processes starting at once on a fresh
        store, both see the same winner)."""
        ...

    def recorded_replica_url(self) -> str | None:
        """The replica blob URL recorded (canonical form), or None: no replica."""
        ...

    def record_replica_url(self, url: str, now: datetime) -> str | None:
        """Record `url` as the replica unless one is recorded already (the blob
        URL must be recorded first); the recorded one, read back."""
        ...

    def switch_blob_url(self, old: str | None, new: str, now: datetime) -> bool:
        """Replace the recorded URL with `new` iff it is still `old` (None: none
        recorded); False if another process changed it meanwhile."""
        ...

    def blob_refs(self, after: str | None, limit: int) -> list[BlobRef]:
        """The blobs rows name as data (archive segments, parts, pinned job
        segments, job outputs; not the deletion queue), one per key, in key
        order after `after`."""
        ...

    def blob_census(self) -> BlobCensus: ...

    # --- encryption keys at rest (keyring.py, storage/encryption_keys.py) ---------
    def recorded_key_checks(self) -> dict[str, str]:
        """Every key id that encrypted data here -> its recorded check value."""
        ...

    def record_key_check(self, key_id: str, check_value: str, now: datetime) -> str:
        """Record `key_id` with `check_value` unless it is recorded already; the
        recorded check value (of two processes recording at once, both see the
        first)."""
        ...

    def seal_secrets(self, *, reseal: bool = False) -> int:
        """Seal every stored plaintext secret with the store's keyring's current
        key and, with `reseal`, also those sealed with older keys; how many
        changed. Idempotent; needs `MetadataStore.keyring`."""
        ...

    def repoint_blob(self, old_key: str, new_key: str, delete_at: datetime) -> int:
        """Make every row naming `old_key` (archive segments, multipart parts,
        pinned job segments, job outputs) name `new_key`, a verified copy of
        it, and queue `old_key` for deletion at `delete_at`; the number of rows
        repointed. If no row names `old_key` any more (its archive was deleted
        meanwhile), `new_key` is queued instead, as the orphan it is, and 0 is
        returned."""
        ...

    def blob_named(self, key: str) -> bool:
        """Whether a row names `key` as data (the deletion queue does not count)."""

    # --- damage records and the scrubber (domain/damage.py, domain/scrub/) ----
    def record_damage(self, finding: DamageRecord) -> DamageRecord:
        """Store `finding` (its `id` is ignored) and return the stored record.
        When an open record names the same blob, that one is kept instead: its
        last_seen_at moves to the finding's found_at, and it becomes
        quarantined if the finding is."""
        ...

    def open_damage(self, archive_id: str) -> DamageRecord | None:
        """The archive's oldest open quarantined record, or None."""
        ...

    def open_damage_for_blob(self, blob_key: str) -> DamageRecord | None: ...

    def list_damage(
        self, *, repaired: bool | None, after_id: int | None, limit: int
    ) -> list[DamageRecord]:
        """Records by id after `after_id`: open ones (repaired False), repaired
        ones (True) or all (None)."""
        ...

    def count_damage(self) -> tuple[int, int]:
        """(open, repaired) record counts."""
        ...

    def close_damage(self, record_id: int, now: datetime, note: str) -> bool:
        """Mark the record repaired (and no longer quarantined) with `note`;
        False if it was not open."""
        ...

    def note_damage(self, record_id: int, note: str) -> None:
        """Set an open record's repair note (why it is not repaired)."""
        ...

    def scrub_state(self) -> ScrubState | None:
        """The scrubber's row; None before any scrubber took the lease."""
        ...

    def take_scrub_lease(self, holder: str, now: datetime, until: datetime) -> ScrubState | None:
        """Lease the scrubber to `holder` until `until` if the lease is free,
        expired at `now` or already `holder`'s; the state, or None if another
        holder has it. Two takers at once never both succeed."""
        ...

    def save_scrub_state(self, holder: str, state: ScrubState) -> bool:
        """Store `state` (progress and lease, which may release it) iff
        `holder` still holds the lease; False if it lost it."""
        ...

    def scrub_targets(self, after: str | None, limit: int) -> list[ScrubTarget]:
        """The blobs the scrubber verifies, in key order after `after`: live
        archives' segments and active multipart uploads' parts."""
        ...

    def scrub_census(self) -> tuple[int, int]:
        """(blobs, bytes) of all scrub targets: a pass's progress total."""
        ...


@dataclass(frozen=True)
class StoreStats:
    archives: dict[str, int]  # account id -> live archives
    bytes: dict[str, int]  # account id -> live archive bytes
    uploads_in_progress: int
    jobs: dict[tuple[str, str, str], int]  # (action, tier or "", status) -> jobs
    oldest_in_progress: dict[tuple[str, str], datetime]  # (action, tier or "") -> created
    scrub_last_finished: datetime | None = None  # the persisted last finished scrub pass


@dataclass(frozen=True)
class UsageRow:
    """One cell of the usage rollup: kind "stored" (name "", number = archives),
    "upload" (name ""), "retrieval" (name = tier) or "request" (name = operation)."""

    day: str  # YYYY-MM-DD, UTC
    account_id: str
    vault: str
    kind: str
    name: str
    number: int
    bytes: int


@dataclass(frozen=True)
class BlobRef:
    """A blob some row names, with what proves its bytes. `leaf_hashes` are the
    1 MiB SHA-256 leaf digests (segments, parts); None for a job's output
    document, which has no stored hash (only its size)."""

    key: str
    size: int
    leaf_hashes: bytes | None
    owner: str  # "archive ID", "upload ID", "job ID": named in error messages


@dataclass(frozen=True)
class BlobCensus:
    """Distinct referenced blobs and their bytes, and the deletion queue's
    length: a migration's progress total, and its sign that nothing wrote while
    it ran (the census before equals the census at the switch)."""

    blobs: int
    size: int
    queued_deletes: int


FOUND_BY = ("scrub", "read", "job", "audit")


@dataclass(frozen=True)
class DamageRecord:
    """A damaged blob, durably recorded (domain/damage.py). `vault` is the
    vault's ARN when found; `archive_id` or `upload_id` says whose blob it is.
    Open while `repaired_at` is None; `quarantined`: no good copy is known,
    so the archive is never served."""

    id: int
    blob_key: str
    archive_id: str | None
    upload_id: str | None
    vault: str
    problem: str
    found_by: str  # one of FOUND_BY
    found_at: datetime
    last_seen_at: datetime
    quarantined: bool
    repaired_at: datetime | None = None
    repair_note: str | None = None


@dataclass(frozen=True)
class ScrubState:
    """The scrubber's row: the pass in progress (None started_at: none), the
    last key it verified, the last finished pass, and the lease."""

    pass_started_at: datetime | None = None
    cursor_key: str | None = None
    bytes_done: int = 0
    blobs_done: int = 0
    damage_found: int = 0
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_bytes: int = 0
    last_blobs: int = 0
    last_damage: int = 0
    passes_completed: int = 0
    lease_holder: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True)
class ScrubTarget:
    """A blob the scrubber verifies against its stored 1 MiB leaf digests:
    an archive's segment or an active upload's part, in a vault."""

    key: str
    size: int
    leaf_hashes: bytes
    vault_id: int
    archive_id: str | None
    upload_id: str | None


class MetadataStore(Protocol):
    dialect: str  # "sqlite" | "postgresql"
    # Short read-only transactions are local and never wait for writers (SQLite
    # in WAL mode): callers may run them on their own thread (docs/decisions.md).
    inline_reads: bool
    # Seals the secrets it stores (access keys' secret keys) with this keyring's
    # current key and opens them when read (keyring.py). None: secrets are
    # stored as given, and sealed ones are returned sealed.
    keyring: Keyring | None

    def transaction(self, *, readonly: bool = False) -> AbstractContextManager[MetadataTx]:
        """`readonly`: a consistent snapshot that never blocks writers (long reads,
        such as generating an inventory document); writing in it is an error."""
        ...

    def submit_write(self, fn: Callable[[MetadataTx], _T]) -> Future[_T] | None:
        """Run `fn` in a write transaction that may be shared with other
        writes (group commit, SQLite): the future resolves once that
        transaction has committed (or with `fn`'s exception, its writes
        undone). None: this store has no such queue; open a `transaction()`."""
        ...

    def schema_revision(self) -> str | None:
        """The schema migration the database is at (readiness: is it current?)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int  # payload bytes (format header excluded)
    codec: int = 0  # storage/blobs/format.py: 0 raw, 1+ chunked codecs
    key_id: str | None = None  # the encryption key's id (keyring.py), None if not encrypted


@dataclass(frozen=True)
class BlobEntry:
    """A committed blob as listed by `BlobStore.scan`."""

    key: str
    # When the blob was last written, by the store's own clock (a file's mtime,
    # an object's Last-Modified): the orphan collector's measure of age.
    modified_at: datetime


class BlobReader(Protocol):
    """What `BlobStore.open` returns: payload bytes in chunks, and whether the
    store checked them."""

    # True when every chunk this reader yields was checked against a checksum
    # or an authentication tag recorded when the blob was written (codecs 1+,
    # storage/blobs/format.py): damage at rest then raises IntegrityError before
    # the damaged bytes are yielded, and a caller that verified the blob's tree
    # hash once (a retrieval job when it completes) need not hash them again.
    # False for codec-0 blobs, whose bytes only the tree hash covers.
    checked: bool

    def __iter__(self) -> Iterator[bytes]: ...

    def __next__(self) -> bytes: ...

    def close(self) -> None: ...


class BlobWriter(Protocol):
    key: str

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def commit(self) -> BlobInfo:
        """Make the blob durable and visible under its key."""
        ...

    def abort(self) -> None:
        """Discard everything written; idempotent; safe after a failed write."""
        ...


class BlobStore(Protocol):
    def create(self, key: str) -> BlobWriter: ...

    def open(self, key: str, start: int = 0, end: int | None = None) -> BlobReader:
        """Payload bytes [start, end) (end None = to the end), in chunks. A key
        with no committed blob raises FileNotFoundError (BlobNotFoundError)."""
        ...

    def stat(self, key: str) -> BlobInfo | None: ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing key is not an error."""
        ...

    def keys(self) -> Iterator[str]: ...

    def scan(self, after: str | None, limit: int) -> list[BlobEntry]:
        """Up to `limit` committed blobs whose keys sort after `after` (all if
        None), in key order, so a caller can page through any number of blobs
        holding one page at a time."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class BlobCopies(Protocol):
    """A blob store that keeps every blob in two stores (--replica-blob-url,
    storage/blobs/replicated.py). Reads fall back to the good copy on their own;
    the scrubber verifies each copy against the stored leaf hashes and, when
    one is damaged or missing, rewrites it from the other with `restore`."""

    @property
    def copies(self) -> tuple[BlobStore, BlobStore]:
        """(primary, replica)."""
        ...

    def restore(self, key: str, source: int) -> None:
        """Replace the other copy of `key` (damaged or missing) with a copy of
        `copies[source]`, which the caller has verified."""
        ...


class OutputSink(Protocol):
    """Where select jobs write their objects (spec 7.3): an S3-compatible store
    or a directory. Keys are relative to the bucket."""

    def put(self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str) -> None: ...

    def close(self) -> None: ...
