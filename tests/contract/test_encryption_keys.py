"""Encryption keys in the metadata store, on SQLite and PostgreSQL: the
recorded key ids and the start-up rules on them (storage/encryption_keys.py),
sealed secrets in the credentials table, and repointing a blob's rows to a
re-encrypted copy (MetadataTx.repoint_blob)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from test_blob_migration import add_archive, add_output, add_part, add_pin

from openglacier.errors import StorageError
from openglacier.ids import new_blob_key
from openglacier.keyring import Keyring
from openglacier.records import Credential
from openglacier.storage.encryption_keys import KeyCheckError, check_keys, record_keys
from openglacier.storage.metadata.schema import (
    archive_segments,
    blob_deletes,
    credentials,
    job_segments,
    jobs,
    parts,
)
from openglacier.storage.metadata.store import SqlMetadataStore

NOW = datetime(2026, 12, 4, tzinfo=UTC)
RING = Keyring({"k-one": os.urandom(32), "k-two": os.urandom(32)}, "k-one", "/etc/og/keys.toml")
SECRETS = {"OGAKAAAAAAAAAAAAAAAA": "secret-a" * 5, "OGAKBBBBBBBBBBBBBBBB": "secret-b" * 5}


def stored_secrets(store: SqlMetadataStore) -> dict[str, str]:
    """The column as the database holds it (no adapter in between)."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(credentials.c.access_key_id, credentials.c.secret_access_key))
        return {str(r[0]): str(r[1]) for r in rows}


def put_secrets(store: SqlMetadataStore) -> None:
    with store.transaction() as tx:
        for key_id, secret in SECRETS.items():
            tx.put_credential(Credential(key_id, secret, "111122223333", NOW, "d"))


# --- recorded key ids and the start-up rules ---------------------------------------------


def test_record_key_check_is_insert_if_absent(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        assert tx.recorded_key_checks() == {}
        assert tx.record_key_check("k-one", "c1", NOW) == "c1"
        assert tx.record_key_check("k-one", "c2", NOW) == "c1"
        assert tx.record_key_check("k-two", "c3", NOW) == "c3"
        assert tx.recorded_key_checks() == {"k-one": "c1", "k-two": "c3"}


def test_a_start_records_every_id_of_its_keyring_and_may_start_again(
    metadata_store: SqlMetadataStore,
) -> None:
    check_keys(metadata_store, None)  # nothing recorded: any start goes
    check_keys(metadata_store, RING)
    record_keys(metadata_store, RING, NOW)
    with metadata_store.transaction(readonly=True) as tx:
        assert tx.recorded_key_checks() == {k: RING.check_value(k) for k in ("k-one", "k-two")}
    check_keys(metadata_store, RING)
    # A later key file with one more key (rotation) fits; its new id is recorded.
    rotated = Keyring({**RING.keys, "k-three": os.urandom(32)}, "k-three", RING.source)
    check_keys(metadata_store, rotated)
    record_keys(metadata_store, rotated, NOW)
    with metadata_store.transaction(readonly=True) as tx:
        assert set(tx.recorded_key_checks()) == {"k-one", "k-two", "k-three"}


def refusal(store: SqlMetadataStore, keyring: Keyring | None) -> str:
    with pytest.raises(KeyCheckError) as caught:
        check_keys(store, keyring)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_starts_that_do_not_fit_the_recorded_keys_are_refused(
    metadata_store: SqlMetadataStore,
) -> None:
    record_keys(metadata_store, RING, NOW)
    assert refusal(metadata_store, None) == (
        "blobs and secrets are encrypted with key id(s) k-one, k-two; "
        "start with --encryption-key-file FILE"
    )
    lacking = Keyring({"k-one": RING.keys["k-one"]}, "k-one", "/tmp/other.toml")
    message = refusal(metadata_store, lacking)
    assert message.startswith("key id(s) k-two encrypted data here but /tmp/other.toml does not")
    wrong = Keyring({**RING.keys, "k-two": os.urandom(32)}, "k-one", "/tmp/wrong.toml")
    message = refusal(metadata_store, wrong)
    assert message.startswith("the key for id k-two in /tmp/wrong.toml is not the one the data")


def test_recording_checks_again_in_its_transaction(metadata_store: SqlMetadataStore) -> None:
    """Two processes starting at once with different keys under a new id both
    pass check_keys; the second to record is refused and records nothing."""
    first = Keyring({"k-new": os.urandom(32)}, "k-new", "a.toml")
    second = Keyring({"k-new": os.urandom(32), "k-other": os.urandom(32)}, "k-new", "b.toml")
    check_keys(metadata_store, first)
    check_keys(metadata_store, second)
    record_keys(metadata_store, first, NOW)
    with pytest.raises(KeyCheckError, match=r"the key for id k-new in b\.toml is not the one"):
        record_keys(metadata_store, second, NOW)
    with metadata_store.transaction(readonly=True) as tx:
        assert tx.recorded_key_checks() == {"k-new": first.check_value("k-new")}


# --- sealed secrets ----------------------------------------------------------------------


def test_secrets_are_stored_sealed_and_read_in_the_clear(metadata_store: SqlMetadataStore) -> None:
    metadata_store.keyring = RING
    put_secrets(metadata_store)
    stored = stored_secrets(metadata_store)
    for key_id, secret in SECRETS.items():
        assert stored[key_id].startswith("og1:k-one:")
        assert secret not in stored[key_id]
    with metadata_store.transaction(readonly=True) as tx:
        for key_id, secret in SECRETS.items():
            found = tx.get_credential(key_id)
            assert found is not None
            assert found.secret_access_key == secret
        assert [c.secret_access_key for c in tx.list_credentials()] == list(SECRETS.values())
    # A store without the keyring (a tool without --encryption-key-file) only
    # ever sees the sealed text, never a working secret.
    metadata_store.keyring = None
    with metadata_store.transaction(readonly=True) as tx:
        found = tx.get_credential("OGAKAAAAAAAAAAAAAAAA")
        assert found is not None
        assert found.secret_access_key == stored["OGAKAAAAAAAAAAAAAAAA"]


def test_seal_secrets_seals_plaintext_once_and_follows_the_current_key(
    metadata_store: SqlMetadataStore,
) -> None:
    put_secrets(metadata_store)  # written before encryption was on
    assert stored_secrets(metadata_store) == SECRETS
    assert record_keys(metadata_store, RING, NOW) == 2
    assert record_keys(metadata_store, RING, NOW) == 0  # idempotent: nothing left to seal
    sealed = stored_secrets(metadata_store)
    assert all(v.startswith("og1:k-one:") for v in sealed.values())
    assert not set(sealed.values()) & set(SECRETS.values())
    rotated = replace(RING, current="k-two")
    # A start with the rotated file leaves them on k-one: nodes not yet
    # restarted with the new file must still check signatures.
    assert record_keys(metadata_store, rotated, NOW) == 0
    assert stored_secrets(metadata_store) == sealed
    # Rotation's rewrite re-seals them with the current key.
    assert record_keys(metadata_store, rotated, NOW, reseal=True) == 2
    assert all(v.startswith("og1:k-two:") for v in stored_secrets(metadata_store).values())
    with metadata_store.transaction(readonly=True) as tx:
        found = tx.get_credential("OGAKBBBBBBBBBBBBBBBB")
        assert found is not None
        assert found.secret_access_key == SECRETS["OGAKBBBBBBBBBBBBBBBB"]


def test_a_sealed_secret_moved_to_another_row_does_not_open(
    metadata_store: SqlMetadataStore,
) -> None:
    metadata_store.keyring = RING
    put_secrets(metadata_store)
    stolen = stored_secrets(metadata_store)["OGAKAAAAAAAAAAAAAAAA"]
    with metadata_store.engine.begin() as conn:
        target = credentials.c.access_key_id == "OGAKBBBBBBBBBBBBBBBB"
        conn.execute(update(credentials).where(target).values(secret_access_key=stolen))
    with metadata_store.transaction(readonly=True) as tx:
        with pytest.raises(StorageError, match=r"OGAKBBBBBBBBBBBBBBBB.*does not open"):
            tx.get_credential("OGAKBBBBBBBBBBBBBBBB")
        found = tx.get_credential("OGAKAAAAAAAAAAAAAAAA")  # where it belongs, it opens
        assert found is not None
        assert found.secret_access_key == SECRETS["OGAKAAAAAAAAAAAAAAAA"]
    # Nor with a keyring holding another key under the same id.
    metadata_store.keyring = Keyring({"k-one": os.urandom(32)}, "k-one", "x")
    altered = pytest.raises(StorageError, match="wrong key, or the stored value was altered")
    with metadata_store.transaction(readonly=True) as tx, altered:
        tx.get_credential("OGAKAAAAAAAAAAAAAAAA")


# --- repointing blobs --------------------------------------------------------------------


def names(store: SqlMetadataStore, key: str) -> dict[str, int]:
    columns = (
        archive_segments.c.blob_key,
        parts.c.blob_key,
        job_segments.c.blob_key,
        jobs.c.output_blob_key,
        blob_deletes.c.blob_key,
    )
    with store.engine.connect() as conn:
        return {
            c.table.name: n
            for c in columns
            if (n := len(conn.execute(select(c).where(c == key)).all()))
        }


def test_repoint_moves_every_row_naming_the_blob_and_queues_the_old_key(
    metadata_store: SqlMetadataStore,
) -> None:
    archived, part, output = new_blob_key(), new_blob_key(), new_blob_key()
    with metadata_store.transaction() as tx:
        archive_id = add_archive(tx, archived, b"archive bytes")
        add_pin(tx, archive_id, archived, b"archive bytes")
        add_pin(tx, archive_id, archived, b"archive bytes")
        add_part(tx, part, b"part bytes")
        add_output(tx, output, b"inventory")
    moved = {}
    for old in (archived, part, output):
        new = new_blob_key()
        with metadata_store.transaction() as tx:
            assert tx.blob_named(old)
            moved[old] = (new, tx.repoint_blob(old, new, NOW))
            assert not tx.blob_named(old)
            assert tx.blob_named(new)
        assert names(metadata_store, old) == {"blob_deletes": 1}
    assert names(metadata_store, moved[archived][0]) == {"archive_segments": 1, "job_segments": 2}
    assert moved[archived][1] == 3
    assert names(metadata_store, moved[part][0]) == {"parts": 1}
    assert names(metadata_store, moved[output][0]) == {"jobs": 1}
    with metadata_store.transaction() as tx:
        # The old keys are collectable: nothing names them any more.
        assert set(tx.pending_blob_deletes(10)) == {archived, part, output}
        segments = tx.get_segments(archive_id)
    assert [s.blob_key for s in segments] == [moved[archived][0]]


def test_repoint_of_a_blob_nothing_names_queues_the_copy(metadata_store: SqlMetadataStore) -> None:
    old, new = new_blob_key(), new_blob_key()
    with metadata_store.transaction() as tx:
        archive_id = add_archive(tx, old, b"deleted meanwhile")
        tx.remove_archive(archive_id, 2, NOW)  # queues `old`
        assert tx.repoint_blob(old, new, NOW) == 0
        assert not tx.blob_named(new)
    assert names(metadata_store, old) == {"blob_deletes": 1}
    assert names(metadata_store, new) == {"blob_deletes": 1}


def test_a_switched_blob_is_due_for_deletion_only_at_its_time(
    metadata_store: SqlMetadataStore,
) -> None:
    """Reads that found the old key before the switch keep it meanwhile, also
    when the key was queued already (a deleted archive's blob a pin names)."""
    later = NOW + timedelta(hours=1)
    pinned, plain = new_blob_key(), new_blob_key()
    with metadata_store.transaction() as tx:
        gone = add_archive(tx, pinned, b"pinned")
        add_pin(tx, gone, pinned, b"pinned")
        tx.remove_archive(gone, 2, NOW - timedelta(days=1))  # queued long ago
        add_archive(tx, plain, b"plain")
        assert tx.repoint_blob(pinned, new_blob_key(), later) == 1
        assert tx.repoint_blob(plain, new_blob_key(), later) == 1
        assert tx.pending_blob_deletes(10, NOW) == []
        assert sorted(tx.pending_blob_deletes(10, later)) == sorted([pinned, plain])
