"""MetadataStore contract: the usage report's daily rollup (`add_usage`,
`snapshot_usage`, `usage_rows`) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from openglacier.ports import UsageRow
from openglacier.storage.metadata.store import SqlMetadataStore

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
A, B = "111122223333", "444455556666"


def test_additions_add_up(metadata_store: SqlMetadataStore) -> None:
    # Two processes' flushes of the same cells, and one of another cell.
    first = [
        UsageRow("2024-05-06", A, "v", "request", "UploadArchive", 2, 0),
        UsageRow("2024-05-06", A, "v", "upload", "", 2, 300),
    ]
    second = [
        UsageRow("2024-05-06", A, "v", "request", "UploadArchive", 1, 0),
        UsageRow("2024-05-06", A, "v", "upload", "", 1, 50),
        UsageRow("2024-05-06", A, "v", "retrieval", "Bulk", 1, 7),
    ]
    with metadata_store.transaction() as tx:
        tx.add_usage(first)
        tx.add_usage([])
    with metadata_store.transaction() as tx:
        tx.add_usage(second)
    with metadata_store.transaction(readonly=True) as tx:
        rows = tx.usage_rows(None, None, None)
    assert rows == [
        UsageRow("2024-05-06", A, "v", "request", "UploadArchive", 3, 0),
        UsageRow("2024-05-06", A, "v", "retrieval", "Bulk", 1, 7),
        UsageRow("2024-05-06", A, "v", "upload", "", 3, 350),
    ]


def test_snapshot_sets_from_vault_counters(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        va = tx.create_vault(A, "us-east-1", "a", T0)
        vb = tx.create_vault(B, "us-east-1", "a", T0)
        tx.record_write(va.id, 2, 300, T0)
        assert tx.snapshot_usage("2024-05-06") == 2
    with metadata_store.transaction() as tx:
        tx.record_write(va.id, -1, -100, T0)
        tx.record_write(vb.id, 4, 4000, T0)
        tx.snapshot_usage("2024-05-06")  # set again, not added
        tx.snapshot_usage("2024-05-07")
    with metadata_store.transaction(readonly=True) as tx:
        rows = tx.usage_rows(None, None, None)
    assert rows == [
        UsageRow("2024-05-06", A, "a", "stored", "", 1, 200),
        UsageRow("2024-05-06", B, "a", "stored", "", 4, 4000),
        UsageRow("2024-05-07", A, "a", "stored", "", 1, 200),
        UsageRow("2024-05-07", B, "a", "stored", "", 4, 4000),
    ]


def test_rows_by_account_and_days(metadata_store: SqlMetadataStore) -> None:
    days = ("2024-05-05", "2024-05-06", "2024-05-07")
    rows = [UsageRow(d, acc, "v", "request", "ListVaults", 1, 0) for d in days for acc in (A, B)]
    with metadata_store.transaction() as tx:
        tx.add_usage(rows)
    with metadata_store.transaction(readonly=True) as tx:
        only_a = tx.usage_rows(A, "2024-05-06", None)
        until = tx.usage_rows(None, None, "2024-05-05")
        window = tx.usage_rows(B, "2024-05-06", "2024-05-06")
    assert [(r.day, r.account_id) for r in only_a] == [("2024-05-06", A), ("2024-05-07", A)]
    assert [(r.day, r.account_id) for r in until] == [("2024-05-05", A), ("2024-05-05", B)]
    assert [(r.day, r.account_id) for r in window] == [("2024-05-06", B)]


def test_vault_names_are_case_sensitive(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        tx.add_usage(
            [
                UsageRow("2024-05-06", A, "Logs", "upload", "", 1, 1),
                UsageRow("2024-05-06", A, "logs", "upload", "", 1, 2),
            ]
        )
    with metadata_store.transaction(readonly=True) as tx:
        rows = tx.usage_rows(A, None, None)
    assert [(r.vault, r.bytes) for r in rows] == [("Logs", 1), ("logs", 2)]
