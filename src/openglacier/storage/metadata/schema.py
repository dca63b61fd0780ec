"""The metadata schema: one set of Core tables for SQLite and PostgreSQL.

Every query is built from these objects; `migrations/versions/` must produce the
same schema (tests/contract/test_migrations.py compares the two on both engines,
with Alembic's autogenerate plus each column's engine-specific type).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# Deterministic constraint names on both engines, so migrations can name them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every engine.

    SQLite has no timestamp type: SQLAlchemy stores a fixed-width text that drops
    the offset, so values are normalised to UTC before storing (which also keeps
    text comparisons chronological) and re-tagged as UTC when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the metadata store takes aware UTC")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        if dialect.name == "sqlite":
            # SQLite hands back the stored text ("2026-11-24 21:15:40.123456");
            # fromisoformat reads it several times faster than SQLAlchemy's
            # regex parser, which was a fifth of a ListJobs page (four dates a job).
            return _sqlite_utc
        return super().result_processor(dialect, coltype)


def _sqlite_utc(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


# SQLite only makes INTEGER PRIMARY KEY an auto-incrementing rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")


def binary_string(length: int) -> TypeEngine[str]:
    """A string compared and ordered byte by byte on both engines.

    ListVaults is in ASCII order (spec 2.3), and every id-ordered listing must
    page identically on both engines. PostgreSQL's default collation is the
    locale's; "C" compares bytes. SQLite's default BINARY collation already does,
    and it does not know a collation named "C".
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


ARCHIVE_ID = 138
UPLOAD_ID = 92
HASH_HEX = 64
BLOB_KEY = 128
DESCRIPTION = 1024
ACCOUNT = 32
REGION = 32

vaults = Table(
    "vaults",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", String(ACCOUNT), nullable=False),
    Column("region", String(REGION), nullable=False),
    Column("name", binary_string(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("write_seq", BigInteger, nullable=False),
    Column("live_count", BigInteger, nullable=False),
    Column("live_size", BigInteger, nullable=False),
    Column("inventory_seq", BigInteger, nullable=False),
    Column("inventory_date", UTCDateTime(), nullable=True),
    Column("inventory_count", BigInteger, nullable=False),
    Column("inventory_size", BigInteger, nullable=False),
    Column("last_write_at", UTCDateTime(), nullable=True),
    UniqueConstraint("account_id", "region", "name"),
    # Never reuse a deleted vault's id (PostgreSQL identities never do either).
    sqlite_autoincrement=True,
)

vault_tags = Table(
    "vault_tags",
    metadata,
    Column("vault_id", Id, ForeignKey("vaults.id"), nullable=False),
    Column("key", String(128), nullable=False),
    Column("value", String(256), nullable=False),
    PrimaryKeyConstraint("vault_id", "key"),
)

archives = Table(
    "archives",
    metadata,
    Column("archive_id", binary_string(ARCHIVE_ID), primary_key=True),
    Column("vault_id", Id, ForeignKey("vaults.id"), nullable=False),
    Column("description", String(DESCRIPTION), nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("tree_hash", String(HASH_HEX), nullable=False),
    Column("sha256", String(HASH_HEX), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("added_seq", BigInteger, nullable=False),
    Column("removed_seq", BigInteger, nullable=True),
    # archive_id last: live listings page through this index in id order.
    Index("ix_archives_vault_id_removed_seq", "vault_id", "removed_seq", "archive_id"),
    # Inventory documents list archives in (CreationDate, ArchiveId) order (spec 4.5 [R]).
    Index("ix_archives_inventory_order", "vault_id", "created_at", "archive_id"),
)

archive_segments = Table(
    "archive_segments",
    metadata,
    Column(
        "archive_id", binary_string(ARCHIVE_ID), ForeignKey("archives.archive_id"), nullable=False
    ),
    Column("seq", BigInteger, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("blob_key", binary_string(BLOB_KEY), nullable=False),
    Column("leaf_hashes", LargeBinary, nullable=False),
    PrimaryKeyConstraint("archive_id", "seq"),
    # The orphan collector asks which listed blob keys are referenced.
    Index("ix_archive_segments_blob_key", "blob_key"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("upload_id", binary_string(UPLOAD_ID), primary_key=True),
    Column("vault_id", Id, ForeignKey("vaults.id"), nullable=False),
    Column("description", String(DESCRIPTION), nullable=True),
    Column("part_size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_activity_at", UTCDateTime(), nullable=False),
    Column("state", String(16), nullable=False),
    Column("archive_id", binary_string(ARCHIVE_ID), nullable=True),
    Column("archive_size", BigInteger, nullable=True),
    Column("archive_tree_hash", String(HASH_HEX), nullable=True),
    Column("ended_at", UTCDateTime(), nullable=True),
    Index("ix_uploads_listing", "vault_id", "state", "created_at", "upload_id"),
    Index("ix_uploads_expiry", "state", "last_activity_at"),
    Index("ix_uploads_ended_at", "ended_at"),
)

parts = Table(
    "parts",
    metadata,
    Column("upload_id", binary_string(UPLOAD_ID), ForeignKey("uploads.upload_id"), nullable=False),
    Column("first_byte", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("tree_hash", String(HASH_HEX), nullable=False),
    Column("sha256", String(HASH_HEX), nullable=False),
    Column("blob_key", binary_string(BLOB_KEY), nullable=False),
    Column("uploaded_at", UTCDateTime(), nullable=False),
    Column("leaf_hashes", LargeBinary, nullable=False),
    PrimaryKeyConstraint("upload_id", "first_byte"),
    Index("ix_parts_blob_key", "blob_key"),  # orphan collector
)

inventories = Table(
    "inventories",
    metadata,
    Column("vault_id", Id, ForeignKey("vaults.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("taken_at", UTCDateTime(), nullable=False),
    Column("archive_count", BigInteger, nullable=False),
    Column("size_in_bytes", BigInteger, nullable=False),
    PrimaryKeyConstraint("vault_id", "seq"),
)

blob_deletes = Table(
    "blob_deletes",
    metadata,
    Column("blob_key", binary_string(BLOB_KEY), primary_key=True),
    Column("queued_at", UTCDateTime(), nullable=False),
    Index("ix_blob_deletes_queued_at", "queued_at"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("access_key_id", binary_string(128), primary_key=True),
    # Sealed when an encryption key is configured (keyring.py: "og1:<key id>:...",
    # longer than the secret itself), so no length limit.
    Column("secret_access_key", Text(), nullable=False),
    Column("account_id", String(ACCOUNT), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("description", String(DESCRIPTION), nullable=False),
    Column("is_root", Boolean, nullable=False),
)

JOB_ID = 92
JOB_TEXT = 200_000  # select parameters / output location JSON (expression <= 128,000 chars)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", binary_string(JOB_ID), primary_key=True),
    Column("vault_id", Id, ForeignKey("vaults.id"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("description", String(DESCRIPTION), nullable=True),
    Column("sns_topic", String(DESCRIPTION), nullable=True),
    Column("tier", String(16), nullable=True),
    Column("status_message", String(DESCRIPTION), nullable=True),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("archive_id", binary_string(ARCHIVE_ID), nullable=True),
    Column("archive_size", BigInteger, nullable=True),
    Column("archive_tree_hash", String(HASH_HEX), nullable=True),
    Column("archive_description", String(DESCRIPTION), nullable=True),
    Column("range_start", BigInteger, nullable=True),
    Column("range_end", BigInteger, nullable=True),
    Column("range_tree_hash", String(HASH_HEX), nullable=True),
    Column("inventory_format", String(8), nullable=True),
    Column("inventory_start", String(64), nullable=True),
    Column("inventory_end", String(64), nullable=True),
    Column("inventory_limit", String(32), nullable=True),
    Column("inventory_marker", String(DESCRIPTION), nullable=True),
    Column("next_marker", String(DESCRIPTION), nullable=True),
    Column("select_parameters", Text(), nullable=True),
    Column("output_location", Text(), nullable=True),
    Column("output_path", String(DESCRIPTION), nullable=True),
    Column("output_blob_key", binary_string(BLOB_KEY), nullable=True),
    Column("output_size", BigInteger, nullable=True),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False),
    # ListJobs pages in (created_at, job_id) order per vault (spec 2.28 [R]).
    Index("ix_jobs_listing", "vault_id", "created_at", "job_id"),
    # Runners claim due jobs; the purge finds expired ones.
    Index("ix_jobs_due", "status", "due_at"),
    Index("ix_jobs_completed_at", "completed_at"),
    Index("ix_jobs_output_blob_key", "output_blob_key"),  # orphan collector
)

# A finished archive retrieval's bytes: a copy of the archive's segment rows that
# overlap the retrieved range. The blobs they name stay until the job expires,
# even if the archive is deleted (blob collection skips referenced keys).
job_segments = Table(
    "job_segments",
    metadata,
    Column("job_id", binary_string(JOB_ID), ForeignKey("jobs.job_id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("blob_key", binary_string(BLOB_KEY), nullable=False),
    Column("leaf_hashes", LargeBinary, nullable=False),
    PrimaryKeyConstraint("job_id", "seq"),
    Index("ix_job_segments_blob_key", "blob_key"),
)

vault_notifications = Table(
    "vault_notifications",
    metadata,
    Column("vault_id", Id, ForeignKey("vaults.id"), primary_key=True, autoincrement=False),
    Column("sns_topic", String(DESCRIPTION), nullable=False),
    Column("events", String(256), nullable=False),  # comma-separated event names
)

# The notification outbox: written in the transaction that completes a job, so a
# notification exists exactly when the completion does, whatever crashes later.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("topic_arn", String(DESCRIPTION), nullable=False),
    Column("message", Text(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("last_error", String(DESCRIPTION), nullable=True),
    Column("state", String(16), nullable=False),
    Index("ix_notifications_due", "state", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# Account-level settings (spec 2.30-2.33): one data retrieval policy per account
# and region; provisioned capacity units.
data_retrieval_policies = Table(
    "data_retrieval_policies",
    metadata,
    Column("account_id", String(ACCOUNT), nullable=False),
    Column("region", String(REGION), nullable=False),
    Column("strategy", String(16), nullable=False),
    Column("bytes_per_hour", BigInteger, nullable=True),
    PrimaryKeyConstraint("account_id", "region"),
)

provisioned_capacity = Table(
    "provisioned_capacity",
    metadata,
    Column("capacity_id", binary_string(32), primary_key=True),
    Column("account_id", String(ACCOUNT), nullable=False),
    Column("region", String(REGION), nullable=False),
    Column("start_date", UTCDateTime(), nullable=False),
    Column("expiration_date", UTCDateTime(), nullable=False),
    Index("ix_provisioned_capacity_account", "account_id", "region", "start_date"),
)

# Vault governance (spec 2.8-2.14): the access policy and the vault lock, one of
# each per vault. Policies are kept as the exact string the client sent.
vault_access_policies = Table(
    "vault_access_policies",
    metadata,
    Column("vault_id", Id, ForeignKey("vaults.id"), primary_key=True, autoincrement=False),
    Column("policy", Text(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

vault_locks = Table(
    "vault_locks",
    metadata,
    Column("vault_id", Id, ForeignKey("vaults.id"), primary_key=True, autoincrement=False),
    Column("policy", Text(), nullable=False),
    Column("state", String(16), nullable=False),  # "InProgress" | "Locked"
    Column("lock_id", binary_string(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),  # null once Locked
    Index("ix_vault_locks_expires_at", "expires_at"),
)

# The deployment's blob store (issue 13): one row, recorded at first start, so a
# process started on another blob store is refused instead of writing where
# nobody reads. Stored in canonical form (storage/blob_url.py), never with
# credentials. `id` is always 1: the primary key makes a second row impossible.
# `replica_blob_url` (issue 14): the --replica-blob-url, NULL without a replica.
deployment = Table(
    "deployment",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("blob_url", Text(), nullable=False),
    Column("replica_blob_url", Text(), nullable=True),
    Column("recorded_at", UTCDateTime(), nullable=False),
)

# Every encryption key id that ever encrypted blobs or sealed secrets here, with
# its check value (keyring.Keyring.check_value), recorded by the first start
# that used it: a start without the key file, without one of these ids, or
# with another key under a recorded id is refused (storage/encryption_keys.py)
# instead of failing on every read later.
encryption_keys = Table(
    "encryption_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("check_value", String(64), nullable=False),
    Column("first_used_at", UTCDateTime(), nullable=False),
)

# Damage found in stored blobs (domain/damage.py): one row per damaged blob,
# kept after repair as the deployment's history. `vault` is the vault's ARN
# when the damage was found (text, not a key: the record outlives the vault).
# An open (`repaired_at` null) quarantined record keeps its archive from being
# served: retrievals fail and GetJobOutput answers the damage error.
damage_records = Table(
    "damage_records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("blob_key", binary_string(BLOB_KEY), nullable=False),
    Column("archive_id", binary_string(ARCHIVE_ID), nullable=True),
    Column("upload_id", binary_string(UPLOAD_ID), nullable=True),
    Column("vault", String(DESCRIPTION), nullable=False),
    Column("problem", String(DESCRIPTION), nullable=False),
    Column("found_by", String(16), nullable=False),  # scrub | read | job | audit
    Column("found_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("quarantined", Boolean, nullable=False),
    Column("repaired_at", UTCDateTime(), nullable=True),
    Column("repair_note", String(DESCRIPTION), nullable=True),
    # Quarantine checks (a job, GetJobOutput) and the per-blob dedup look up
    # open records; repaired_at second so both find them in the index.
    Index("ix_damage_records_archive_id", "archive_id", "repaired_at"),
    Index("ix_damage_records_blob_key", "blob_key", "repaired_at"),
    sqlite_autoincrement=True,
)

# The scrubber's one row (id 1, domain/scrub/): the pass in progress (its
# start, the last blob key verified, counts), the last finished pass, and the
# lease that lets one process of a cluster scrub at a time.
scrub_state = Table(
    "scrub_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("pass_started_at", UTCDateTime(), nullable=True),
    Column("cursor_key", binary_string(BLOB_KEY), nullable=True),
    Column("bytes_done", BigInteger, nullable=False),
    Column("blobs_done", BigInteger, nullable=False),
    Column("damage_found", BigInteger, nullable=False),
    Column("last_started_at", UTCDateTime(), nullable=True),
    Column("last_finished_at", UTCDateTime(), nullable=True),
    Column("last_bytes", BigInteger, nullable=False),
    Column("last_blobs", BigInteger, nullable=False),
    Column("last_damage", BigInteger, nullable=False),
    Column("passes_completed", BigInteger, nullable=False),
    Column("lease_holder", String(128), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
)

# The usage report's daily rollup (storage/metadata/usage.py, docs/operations.md):
# one row per (day, account, vault, kind, name). kind "stored" (name ""): the
# vault's archives and bytes at the day's last maintenance pass; "upload" (name
# ""), "retrieval" (name: the tier), "request" (name: the operation): counts and
# bytes added by every process's maintenance pass. A narrow, long table: new
# operations or tiers need no migration, and a page pivots what it shows.
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("day", String(10), nullable=False),  # YYYY-MM-DD, UTC: sorts as text
    Column("account_id", String(ACCOUNT), nullable=False),
    Column("vault", binary_string(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("number", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    PrimaryKeyConstraint("day", "account_id", "vault", "kind", "name"),
    Index("ix_usage_daily_account_id", "account_id", "day"),
)
