"""MetadataTx.inventory_items over SQLite and PostgreSQL, and inventory documents
written from it (spec 4.5, 4.6, 5).

inventory_items lists the archives of the inventory taken at a write sequence:
added at or before it, not removed at or before it, by (created_at, archive_id),
bounded by [start, end) and strictly after a position.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from openglacier.clock import iso_seconds
from openglacier.domain.inventory_doc import (
    encode_marker,
    inventory_window,
    parse_inventory_request,
    write_inventory,
)
from openglacier.ids import new_archive_id
from openglacier.ports import MetadataTx
from openglacier.records import Archive, InventoryItem, InventorySnapshot, Vault
from openglacier.storage.metadata.store import SqlMetadataStore
from support.inventory import parse_inventory

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
ACCOUNT, REGION = "111122223333", "us-east-1"
ARN = f"arn:aws:glacier:{REGION}:{ACCOUNT}:vaults/photos"
US = timedelta(microseconds=1)
Position = tuple[datetime, str]


def make_vault(tx: MetadataTx, name: str = "photos") -> Vault:
    return tx.create_vault(ACCOUNT, REGION, name, T0)


def add(
    tx: MetadataTx,
    vault: Vault,
    created: datetime,
    *,
    archive_id: str | None = None,
    description: str | None = "backup",
    size: int = 1000,
) -> Archive:
    seq = tx.record_write(vault.id, 1, size, created)
    archive = Archive(
        archive_id=archive_id or new_archive_id(),
        vault_id=vault.id,
        description=description,
        size=size,
        tree_hash=f"{seq:064x}",
        sha256=None,
        created_at=created,
        added_seq=seq,
    )
    tx.insert_archive(archive, [])
    return archive


def remove(tx: MetadataTx, vault: Vault, archive: Archive) -> None:
    seq = tx.record_write(vault.id, -1, -archive.size, T0)
    tx.remove_archive(archive.archive_id, seq, T0)


def snapshot(tx: MetadataTx, vault: Vault, at: datetime) -> InventorySnapshot:
    snap = tx.take_inventory(vault.id, at)
    assert snap is not None
    return snap


def as_item(archive: Archive) -> InventoryItem:
    return InventoryItem(
        archive.archive_id, archive.description, archive.created_at, archive.size, archive.tree_hash
    )


def in_order(archives: list[Archive]) -> list[InventoryItem]:
    return sorted((as_item(a) for a in archives), key=lambda i: (i.created_at, i.archive_id))


def listing(
    tx: MetadataTx,
    vault: Vault,
    seq: int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    after: Position | None = None,
    limit: int = 1000,
) -> list[InventoryItem]:
    return tx.inventory_items(vault.id, seq, start=start, end=end, after=after, limit=limit)


def ids(items: list[InventoryItem]) -> list[str]:
    return [i.archive_id for i in items]


def test_listing_is_the_snapshot_not_live_data(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        other = make_vault(tx, "other")
        gone_before = add(tx, vault, T0)
        kept = [add(tx, vault, T0 + i * US) for i in range(1, 4)]
        remove(tx, vault, gone_before)
        add(tx, other, T0)  # another vault's archive, same time
        first = snapshot(tx, vault, T0 + timedelta(hours=1))
        added_after = add(tx, vault, T0 - timedelta(days=1))  # sorts first, but is newer
        remove(tx, vault, kept[1])  # removed after the snapshot: still listed in it
    with metadata_store.transaction(readonly=True) as tx:
        assert listing(tx, vault, first.seq) == in_order(kept)
        current = tx.get_vault_by_id(vault.id)
        assert current is not None
        live = listing(tx, vault, current.write_seq)
        assert live == in_order([added_after, kept[0], kept[2]])
    with metadata_store.transaction() as tx:
        second = snapshot(tx, vault, T0 + timedelta(hours=2))
        assert listing(tx, vault, second.seq) == in_order([added_after, kept[0], kept[2]])
        assert second.archive_count == 3


def test_items_carry_every_inventory_field(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        plain = add(tx, vault, T0, description=None, size=0)
        big = add(tx, vault, T0 + US, description='q"uo\\te, \u00e9', size=2**62)
        snap = snapshot(tx, vault, T0)
        got = listing(tx, vault, snap.seq)
    assert got == [as_item(plain), as_item(big)]
    for entry in got:
        assert entry.created_at.utcoffset() == timedelta(0)


def test_date_window_is_start_inclusive_end_exclusive(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        times = [T0 - US, T0, T0 + US, T0 + timedelta(seconds=1), T0 + timedelta(days=1)]
        archives = [add(tx, vault, at) for at in times]
        seq = snapshot(tx, vault, T0 + timedelta(days=2)).seq
        by_time = dict(zip(times, archives, strict=True))

        def window(start: datetime | None, end: datetime | None) -> list[datetime]:
            return [i.created_at for i in listing(tx, vault, seq, start=start, end=end)]

        assert window(None, None) == times
        assert window(T0, None) == times[1:]
        assert window(None, T0) == times[:1]
        assert window(T0, T0 + US) == [T0]
        assert window(T0 + US, T0 + timedelta(seconds=1)) == [T0 + US]
        assert window(T0 - timedelta(days=9), T0 + timedelta(days=9)) == times
        assert window(T0 + timedelta(days=3), None) == []
        assert listing(tx, vault, seq, start=T0, end=T0 + US) == [as_item(by_time[T0])]


def test_ties_on_creation_date_go_by_archive_id_bytewise(
    metadata_store: SqlMetadataStore,
) -> None:
    # Binary order of the id alphabet: '-' < digits < upper case < '_' < lower case.
    # A linguistic collation (the PostgreSQL test database uses ICU) would differ.
    stem = new_archive_id()[1:]
    tied = [first + stem for first in "a_Z0-bA"] + [new_archive_id() for _ in range(5)]
    before, after = "z" + new_archive_id()[1:], "-" + new_archive_id()[1:]
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        for archive_id in tied:
            add(tx, vault, T0, archive_id=archive_id)
        add(tx, vault, T0 - US, archive_id=before)
        add(tx, vault, T0 + US, archive_id=after)
        seq = snapshot(tx, vault, T0).seq
        got = ids(listing(tx, vault, seq))
    assert got == [before, *sorted(tied), after]
    assert [i[0] for i in got if i[1:] == stem] == list("-0AZ_ab")


def test_paging_after_a_position_returns_each_archive_once(
    metadata_store: SqlMetadataStore,
) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        # 23 archives over 5 distinct instants a microsecond apart: many ties.
        archives = [add(tx, vault, T0 + (i % 5) * US) for i in range(23)]
        seq = snapshot(tx, vault, T0).seq
        everything = in_order(archives)
        for page_size in (1, 2, 3, 7, 22, 23, 24):
            seen: list[InventoryItem] = []
            after: Position | None = None
            while True:
                page = listing(tx, vault, seq, after=after, limit=page_size)
                seen.extend(page)
                if len(page) < page_size:
                    break
                after = (page[-1].created_at, page[-1].archive_id)
            assert seen == everything, page_size
        # Positions between items (no such archive) work as well.
        middle = everything[10]
        assert (
            listing(tx, vault, seq, after=(middle.created_at, middle.archive_id + "~"))
            == (everything[11:])
        )
        assert listing(tx, vault, seq, after=(middle.created_at - US / 2, "")) == [
            i for i in everything if i.created_at >= middle.created_at
        ]
        assert listing(tx, vault, seq, after=(T0 + 5 * US, ""), limit=5) == []
        # Window and position combine.
        start, end = T0 + US, T0 + 3 * US
        windowed = [i for i in everything if start <= i.created_at < end]
        assert listing(tx, vault, seq, start=start, end=end, after=(start, "")) == windowed
        assert listing(tx, vault, seq, start=start, end=end, after=None, limit=3) == windowed[:3]


# --- documents written from the store --------------------------------------------------

_DESCRIPTIONS = [
    None,
    "",
    "plain",
    'my archive description,1"2',
    'my archive description,1\\"2',
    "ends with a backslash\\",
    "caf\u00e9, \u65e5\u672c",
]


def run_job(
    store: SqlMetadataStore,
    vault: Vault,
    fmt: str,
    body: dict[str, str],
    *,
    page_size: int,
) -> tuple[bytes, str | None]:
    """What the job runner does: one read snapshot, the latest inventory, the window
    bound into fetch."""
    params = parse_inventory_request(fmt, body)
    start, end = inventory_window(params)
    chunks: list[bytes] = []
    with store.transaction(readonly=True) as tx:
        snap = tx.latest_inventory(vault.id)
        assert snap is not None

        def fetch(after: Position | None, limit: int) -> list[InventoryItem]:
            assert limit <= page_size + 1
            return tx.inventory_items(
                vault.id, snap.seq, start=start, end=end, after=after, limit=limit
            )

        outcome = write_inventory(
            fetch, params, ARN, snap.taken_at, chunks.append, page_size=page_size
        )
    data = b"".join(chunks)
    assert outcome.size == len(data)
    return data, outcome.next_marker


def expected_rows(items: list[InventoryItem]) -> list[tuple[str, str, str, int, str]]:
    return [
        (i.archive_id, i.description or "", iso_seconds(i.created_at), i.size, i.tree_hash)
        for i in items
    ]


@pytest.mark.parametrize("fmt", ["JSON", "CSV"])
def test_inventory_document_pages_through_the_store(
    metadata_store: SqlMetadataStore, fmt: str
) -> None:
    taken = T0 + timedelta(days=1, microseconds=654321)
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        archives = [
            add(
                tx,
                vault,
                T0 + (i // 3) * timedelta(seconds=1) + (i % 2) * US,
                description=_DESCRIPTIONS[i % len(_DESCRIPTIONS)],
                size=i * 1000,
            )
            for i in range(40)
        ]
        remove(tx, vault, archives[5])
        snapshot(tx, vault, taken)
        add(tx, vault, T0 + timedelta(seconds=4))  # after the inventory: never listed
        remove(tx, vault, archives[6])  # after the inventory: still listed
    listed = in_order([a for a in archives if a is not archives[5]])
    start, end = T0 + timedelta(seconds=2), T0 + timedelta(seconds=11)
    window = [i for i in listed if start <= i.created_at < end]
    assert 20 < len(window) < len(listed)

    for body, expected in [
        ({}, listed),
        ({"StartDate": start.isoformat()}, [i for i in listed if i.created_at >= start]),
        (
            {"EndDate": "2024-05-06T07:08:20.123456+00:00"},
            [i for i in listed if i.created_at < end],
        ),
        ({"StartDate": start.isoformat(), "EndDate": "2024-05-06T09:08:20.123456+02:00"}, window),
    ]:
        for limit in (None, 1, 4, len(expected), len(expected) + 1):
            seen: list[tuple[str, str, str, int, str]] = []
            marker: str | None = None
            for _ in range(len(expected) + 2):
                request = dict(body)
                if limit is not None:
                    request["Limit"] = str(limit)
                if marker is not None:
                    request["Marker"] = marker
                data, marker = run_job(metadata_store, vault, fmt, request, page_size=3)
                parsed = parse_inventory(fmt, data)
                if fmt == "JSON":
                    assert (parsed.vault_arn, parsed.inventory_date) == (ARN, iso_seconds(taken))
                assert len(parsed.rows) <= (limit or len(expected))
                seen.extend(parsed.rows)
                if marker is None:
                    break
                last = expected[len(seen) - 1]
                assert marker == encode_marker(last.created_at, last.archive_id)
            assert seen == expected_rows(expected), (body, limit)


def test_marker_from_an_older_inventory_continues_by_position(
    metadata_store: SqlMetadataStore,
) -> None:
    # Spec 4.5 [R]: a later inventory does not restart the listing.
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        archives = [add(tx, vault, T0 + i * US) for i in range(6)]
        snapshot(tx, vault, T0 + timedelta(days=1))
    data, marker = run_job(metadata_store, vault, "JSON", {"Limit": "3"}, page_size=2)
    assert marker is not None
    with metadata_store.transaction() as tx:
        earlier = add(tx, vault, T0 - timedelta(days=1))  # before the marker: not revisited
        later = add(tx, vault, T0 + timedelta(days=1))
        remove(tx, vault, archives[4])
        snapshot(tx, vault, T0 + timedelta(days=2))
    data, marker = run_job(metadata_store, vault, "CSV", {"Marker": marker}, page_size=2)
    rows = parse_inventory("CSV", data).rows
    assert [r[0] for r in rows] == [a.archive_id for a in (archives[3], archives[5], later)]
    assert earlier.archive_id not in {r[0] for r in rows}
    assert marker is None


def test_inventory_items_limit_bounds_the_page(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        archives = [add(tx, vault, T0) for _ in range(5)]
        seq = snapshot(tx, vault, T0).seq
        assert listing(tx, vault, seq, limit=2) == in_order(archives)[:2]
        assert listing(tx, vault, seq, limit=5) == in_order(archives)
        assert listing(tx, vault, seq, limit=6) == in_order(archives)
        # Before the first write nothing was listed; another vault lists nothing.
        assert listing(tx, vault, 0) == []
        assert listing(tx, replace(vault, id=vault.id + 10_000), seq) == []
