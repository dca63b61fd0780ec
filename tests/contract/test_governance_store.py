"""MetadataStore contract: vault access policies and vault locks (spec 2.8-2.14).

Runs unchanged over SQLite and PostgreSQL (fixtures in conftest.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from openglacier.ids import new_lock_id
from openglacier.ports import MetadataTx
from openglacier.records import (
    GovernedVault,
    LockState,
    Vault,
    VaultGovernance,
    VaultLock,
)
from openglacier.storage.metadata.store import SqlMetadataStore

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "us-east-1"
LOCK_TTL = timedelta(hours=24)
US = timedelta(microseconds=1)

LOCK_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "deny-delete",
                "Principal": "*",
                "Effect": "Deny",
                "Action": "glacier:DeleteArchive",
                "Resource": "arn:aws:glacier:us-east-1:111122223333:vaults/photos",
                "Condition": {"NumericLessThanEquals": {"glacier:ArchiveAgeInDays": "365"}},
            }
        ],
    }
)


def make_vault(tx: MetadataTx, name: str = "photos", account: str = ACCOUNT) -> Vault:
    return tx.create_vault(account, REGION, name, T0)


def in_progress(
    vault: Vault, *, lock_id: str | None = None, expires: datetime | None = None
) -> VaultLock:
    return VaultLock(
        vault_id=vault.id,
        policy=LOCK_POLICY,
        state=LockState.IN_PROGRESS,
        lock_id=lock_id or new_lock_id(),
        created_at=T0,
        expires_at=T0 + LOCK_TTL if expires is None else expires,
    )


def odd_policy() -> str:
    """~20 KB of JSON-ish text a careless adapter would trim, re-encode or re-quote."""
    statement = (
        '{"Sid": "caf\u00e9 \u2603 \\"quoted\\" \\\\ back",\t"Effect":  "Allow",\r\n'
        '   "Principal": {"AWS": "arn:aws:iam::111122223333:root"} }'
    )
    body = ",\n\t  ".join([statement] * 160)
    policy = f'  \n{{"Version":"2012-10-17",  "Statement": [\n\t  {body}\n]}}\t \r\n  '
    assert 19_000 < len(policy.encode()) < 25_000
    return policy


# --- access policies ---------------------------------------------------------


def test_fresh_vault_has_no_governance(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
    with metadata_store.transaction() as tx:
        assert tx.get_vault_governance(vault.id) == VaultGovernance(access_policy=None, lock=None)
        assert tx.get_vault_lock(vault.id) is None
        assert tx.list_governed_vaults() == []


def test_access_policy_round_trips_byte_for_byte(metadata_store: SqlMetadataStore) -> None:
    policy = odd_policy()
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        tx.set_vault_access_policy(vault.id, policy, T0)
    with metadata_store.transaction() as tx:
        governance = tx.get_vault_governance(vault.id)
    assert governance.lock is None
    stored = governance.access_policy
    assert isinstance(stored, str)
    assert len(stored) == len(policy)
    assert stored.encode("utf-8") == policy.encode("utf-8")
    assert stored.startswith("  \n{")
    assert stored.endswith("}\t \r\n  ")
    assert 'caf\u00e9 \u2603 \\"quoted\\" \\\\ back' in stored


def test_access_policy_replace_and_delete(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        other = make_vault(tx, "other")
        tx.set_vault_access_policy(vault.id, '{"v": 1}', T0)
        tx.set_vault_access_policy(other.id, '{"other": true}', T0)
    with metadata_store.transaction() as tx:
        tx.set_vault_access_policy(vault.id, '{"v": 2}', T0 + timedelta(minutes=1))
    with metadata_store.transaction() as tx:
        assert tx.get_vault_governance(vault.id).access_policy == '{"v": 2}'
        assert tx.get_vault_governance(other.id).access_policy == '{"other": true}'
        tx.delete_vault_access_policy(vault.id)
    with metadata_store.transaction() as tx:
        assert tx.get_vault_governance(vault.id) == VaultGovernance(None, None)
        tx.delete_vault_access_policy(vault.id)  # absent: a no-op, not an error
        tx.delete_vault_access_policy(vault.id + 1000)
    with metadata_store.transaction() as tx:
        assert tx.get_vault_governance(vault.id).access_policy is None
        assert tx.get_vault_governance(other.id).access_policy == '{"other": true}'
        tx.set_vault_access_policy(vault.id, '{"v": 3}', T0 + timedelta(minutes=2))
    with metadata_store.transaction() as tx:
        assert tx.get_vault_governance(vault.id).access_policy == '{"v": 3}'


def test_governance_rolls_back_with_the_transaction(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)

    def doomed() -> None:
        with metadata_store.transaction() as tx:
            tx.set_vault_access_policy(vault.id, '{"v": 1}', T0)
            tx.put_vault_lock(in_progress(vault))
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        doomed()
    with metadata_store.transaction() as tx:
        assert tx.get_vault_governance(vault.id) == VaultGovernance(None, None)


# --- locks: storage ----------------------------------------------------------


def test_put_vault_lock_round_trips(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        lock = in_progress(vault)
        tx.put_vault_lock(lock)
    with metadata_store.transaction() as tx:
        got = tx.get_vault_lock(vault.id)
        governance = tx.get_vault_governance(vault.id)
    assert got == lock
    assert got is not None
    assert got.state is LockState.IN_PROGRESS
    assert type(got.state) is LockState
    assert got.created_at == T0
    assert got.created_at.microsecond == 123456
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.expires_at == T0 + LOCK_TTL
    assert got.expires_at is not None
    assert got.expires_at.utcoffset() == timedelta(0)
    assert got.policy == LOCK_POLICY
    assert governance == VaultGovernance(access_policy=None, lock=lock)


def test_put_vault_lock_normalises_offsets_to_utc(metadata_store: SqlMetadataStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        lock = VaultLock(
            vault_id=vault.id,
            policy=LOCK_POLICY,
            state=LockState.IN_PROGRESS,
            lock_id=new_lock_id(),
            created_at=T0.astimezone(plus_two),
            expires_at=(T0 + LOCK_TTL).astimezone(plus_two),
        )
        tx.put_vault_lock(lock)
    with metadata_store.transaction() as tx:
        got = tx.get_vault_lock(vault.id)
    assert got is not None
    assert got.created_at == T0
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.expires_at == T0 + LOCK_TTL
    assert got.expires_at.utcoffset() == timedelta(0)


def test_put_vault_lock_replaces_the_row(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        tx.put_vault_lock(in_progress(vault))
    replacement = VaultLock(
        vault_id=vault.id,
        policy='{"Version": "2012-10-17", "Statement": []}',
        state=LockState.IN_PROGRESS,
        lock_id=new_lock_id(),
        created_at=T0 + timedelta(hours=1, microseconds=7),
        expires_at=T0 + timedelta(hours=25, microseconds=7),
    )
    with metadata_store.transaction() as tx:
        tx.put_vault_lock(replacement)
    with metadata_store.transaction() as tx:
        assert tx.get_vault_lock(vault.id) == replacement
    locked = VaultLock(vault.id, "{}", LockState.LOCKED, new_lock_id(), T0, None)
    with metadata_store.transaction() as tx:
        tx.put_vault_lock(locked)
    with metadata_store.transaction() as tx:
        got = tx.get_vault_lock(vault.id)
        assert got == locked
        assert got is not None
        assert got.state is LockState.LOCKED
        assert got.expires_at is None
        assert [g.vault.id for g in tx.list_governed_vaults()] == [vault.id]


def test_locks_are_per_vault(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        a = make_vault(tx, "a")
        b = make_vault(tx, "b")
        lock_a = in_progress(a)
        lock_b = in_progress(b, expires=T0 + timedelta(hours=3))
        tx.put_vault_lock(lock_a)
        tx.put_vault_lock(lock_b)
    with metadata_store.transaction() as tx:
        assert tx.lock_vault(a.id, lock_b.lock_id) is False  # b's id does not lock a
        tx.delete_vault_lock(b.id)
    with metadata_store.transaction() as tx:
        assert tx.get_vault_lock(a.id) == lock_a
        assert tx.get_vault_lock(b.id) is None


# --- locks: state machine ----------------------------------------------------


def test_lock_vault_needs_the_matching_lock_id(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        lock = in_progress(vault, lock_id="AbCdEfGhIjKlMnOpQrStUv-_")
        tx.put_vault_lock(lock)
    with metadata_store.transaction() as tx:
        assert tx.lock_vault(vault.id, new_lock_id()) is False
        assert tx.lock_vault(vault.id, lock.lock_id.swapcase()) is False  # ids are case-exact
        assert tx.lock_vault(vault.id, lock.lock_id[:-1]) is False
        assert tx.lock_vault(vault.id + 1000, lock.lock_id) is False
    with metadata_store.transaction() as tx:
        assert tx.get_vault_lock(vault.id) == lock
    with metadata_store.transaction() as tx:
        assert tx.lock_vault(vault.id, lock.lock_id) is True
    with metadata_store.transaction() as tx:
        got = tx.get_vault_lock(vault.id)
    assert got == VaultLock(
        vault_id=vault.id,
        policy=LOCK_POLICY,
        state=LockState.LOCKED,
        lock_id=lock.lock_id,
        created_at=T0,
        expires_at=None,
    )
    assert got is not None
    assert got.state is LockState.LOCKED
    with metadata_store.transaction() as tx:
        assert tx.lock_vault(vault.id, lock.lock_id) is False  # already Locked
    with metadata_store.transaction() as tx:
        assert tx.get_vault_lock(vault.id) == got


def test_lock_vault_without_a_lock_row(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        assert tx.lock_vault(vault.id, new_lock_id()) is False
        assert tx.get_vault_lock(vault.id) is None


def test_delete_vault_lock_spares_a_locked_row_by_default(
    metadata_store: SqlMetadataStore,
) -> None:
    with metadata_store.transaction() as tx:
        pending = make_vault(tx, "pending")
        locked = make_vault(tx, "locked")
        pending_lock = in_progress(pending)
        locked_lock = in_progress(locked)
        tx.put_vault_lock(pending_lock)
        tx.put_vault_lock(locked_lock)
        assert tx.lock_vault(locked.id, locked_lock.lock_id) is True
    with metadata_store.transaction() as tx:
        tx.delete_vault_lock(pending.id)
        tx.delete_vault_lock(locked.id)
    with metadata_store.transaction() as tx:
        assert tx.get_vault_lock(pending.id) is None
        kept = tx.get_vault_lock(locked.id)
        assert kept is not None
        assert kept.state is LockState.LOCKED
        assert kept.lock_id == locked_lock.lock_id
        tx.delete_vault_lock(locked.id, unless_locked=True)
    with metadata_store.transaction() as tx:
        assert tx.get_vault_lock(locked.id) == kept
        tx.delete_vault_lock(locked.id, unless_locked=False)
    with metadata_store.transaction() as tx:
        assert tx.get_vault_lock(locked.id) is None
        tx.delete_vault_lock(locked.id)  # absent: a no-op
        tx.delete_vault_lock(locked.id, unless_locked=False)
        assert tx.get_vault_governance(locked.id) == VaultGovernance(None, None)


def test_delete_vault_lock_unless_locked_false_deletes_in_progress(
    metadata_store: SqlMetadataStore,
) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        tx.put_vault_lock(in_progress(vault))
    with metadata_store.transaction() as tx:
        tx.delete_vault_lock(vault.id, unless_locked=False)
    with metadata_store.transaction() as tx:
        assert tx.get_vault_lock(vault.id) is None


def test_purge_expired_locks(metadata_store: SqlMetadataStore) -> None:
    now = T0 + LOCK_TTL
    with metadata_store.transaction() as tx:
        past = make_vault(tx, "past")
        at_now = make_vault(tx, "at-now")
        just_after = make_vault(tx, "just-after")
        later = make_vault(tx, "later")
        locked = make_vault(tx, "locked")
        locked_stale = make_vault(tx, "locked-stale")
        bare = make_vault(tx, "bare")
        tx.put_vault_lock(in_progress(past, expires=now - timedelta(days=3)))
        tx.put_vault_lock(in_progress(at_now, expires=now))
        after_lock = in_progress(just_after, expires=now + US)
        later_lock = in_progress(later, expires=now + timedelta(hours=5))
        tx.put_vault_lock(after_lock)
        tx.put_vault_lock(later_lock)
        locked_lock = in_progress(locked, expires=now - timedelta(hours=1))
        tx.put_vault_lock(locked_lock)
        assert tx.lock_vault(locked.id, locked_lock.lock_id) is True
        # A Locked row that still carries an (expired) time: the state alone spares it.
        stale = VaultLock(
            locked_stale.id, LOCK_POLICY, LockState.LOCKED, new_lock_id(), T0, now - US
        )
        tx.put_vault_lock(stale)
        tx.set_vault_access_policy(bare.id, '{"bare": 1}', T0)
    with metadata_store.transaction() as tx:
        assert tx.purge_expired_locks(now) == 2
    with metadata_store.transaction() as tx:
        assert tx.get_vault_lock(past.id) is None
        assert tx.get_vault_lock(at_now.id) is None
        assert tx.get_vault_lock(just_after.id) == after_lock
        assert tx.get_vault_lock(later.id) == later_lock
        kept = tx.get_vault_lock(locked.id)
        assert kept is not None
        assert kept.state is LockState.LOCKED
        assert tx.get_vault_lock(locked_stale.id) == stale
        assert tx.get_vault_governance(bare.id).access_policy == '{"bare": 1}'
        assert tx.purge_expired_locks(now) == 0
    with metadata_store.transaction() as tx:
        # `now` in another offset is the same instant: 1 µs later expires just_after.
        assert tx.purge_expired_locks((now + US).astimezone(timezone(timedelta(hours=-7)))) == 1
    with metadata_store.transaction() as tx:
        assert tx.get_vault_lock(just_after.id) is None
        assert tx.get_vault_lock(later.id) == later_lock
        assert tx.purge_expired_locks(now + timedelta(days=365)) == 1
    with metadata_store.transaction() as tx:
        assert tx.get_vault_lock(later.id) is None
        assert tx.get_vault_lock(locked.id) == kept
        assert tx.get_vault_lock(locked_stale.id) == stale


# --- operator listing ----------------------------------------------------------


def test_list_governed_vaults(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        # Created out of order; "B" < "a" in byte order (and not in most locales).
        other_both = tx.create_vault(OTHER_ACCOUNT, REGION, "zeta", T0)
        a_lock = tx.create_vault(ACCOUNT, REGION, "a", T0)
        b_policy = tx.create_vault(ACCOUNT, REGION, "B", T0)
        eu_policy = tx.create_vault(ACCOUNT, "eu-west-1", "zz", T0)
        other_eu = tx.create_vault(OTHER_ACCOUNT, "eu-west-1", "aaa", T0)
        tx.create_vault(ACCOUNT, REGION, "0-plain", T0)
        tx.create_vault(OTHER_ACCOUNT, REGION, "plain", T0)
        emptied = tx.create_vault(ACCOUNT, REGION, "emptied", T0)

        tx.set_vault_access_policy(other_both.id, '{"other": "both"}', T0)
        other_lock = in_progress(other_both)
        tx.put_vault_lock(other_lock)
        a_lock_row = in_progress(a_lock, expires=T0 + timedelta(hours=2))
        tx.put_vault_lock(a_lock_row)
        tx.set_vault_access_policy(b_policy.id, '{"b": 1}', T0)
        tx.set_vault_access_policy(eu_policy.id, '{"eu": 1}', T0)
        tx.set_vault_access_policy(other_eu.id, '{"other": "eu"}', T0)
        tx.set_vault_access_policy(emptied.id, '{"gone": 1}', T0)
        tx.put_vault_lock(in_progress(emptied))
    with metadata_store.transaction() as tx:
        tx.delete_vault_access_policy(emptied.id)
        tx.delete_vault_lock(emptied.id)
        assert tx.lock_vault(other_both.id, other_lock.lock_id) is True
    with metadata_store.transaction() as tx:
        listed = tx.list_governed_vaults()
        fresh = {
            v.id: tx.get_vault_by_id(v.id)
            for v in (other_both, a_lock, b_policy, eu_policy, other_eu)
        }
    other_locked = VaultLock(
        other_both.id, LOCK_POLICY, LockState.LOCKED, other_lock.lock_id, T0, None
    )
    assert [(g.vault.account_id, g.vault.region, g.vault.name) for g in listed] == [
        (ACCOUNT, "eu-west-1", "zz"),
        (ACCOUNT, REGION, "B"),
        (ACCOUNT, REGION, "a"),
        (OTHER_ACCOUNT, "eu-west-1", "aaa"),
        (OTHER_ACCOUNT, REGION, "zeta"),
    ]
    assert listed == [
        GovernedVault(eu_policy, VaultGovernance('{"eu": 1}', None)),
        GovernedVault(b_policy, VaultGovernance('{"b": 1}', None)),
        GovernedVault(a_lock, VaultGovernance(None, a_lock_row)),
        GovernedVault(other_eu, VaultGovernance('{"other": "eu"}', None)),
        GovernedVault(other_both, VaultGovernance('{"other": "both"}', other_locked)),
    ]
    assert [g.vault for g in listed] == [fresh[g.vault.id] for g in listed]
    assert listed[4].governance.lock is not None
    assert listed[4].governance.lock.state is LockState.LOCKED


# --- VaultLock.in_force ------------------------------------------------------


def test_in_force_while_in_progress_until_expiry() -> None:
    lock = VaultLock(1, "{}", LockState.IN_PROGRESS, "x" * 24, T0, T0 + LOCK_TTL)
    assert lock.in_force(T0) is True
    assert lock.in_force(T0 - timedelta(days=1)) is True
    assert lock.in_force(T0 + LOCK_TTL - US) is True
    assert lock.in_force(T0 + LOCK_TTL) is False  # expires at the instant itself
    assert lock.in_force(T0 + LOCK_TTL + US) is False
    assert lock.in_force(T0 + timedelta(days=400)) is False


def test_in_force_once_locked_for_ever() -> None:
    locked = VaultLock(1, "{}", LockState.LOCKED, "x" * 24, T0, None)
    assert locked.in_force(T0 - timedelta(days=1)) is True
    assert locked.in_force(T0) is True
    assert locked.in_force(T0 + timedelta(days=36500)) is True
    stale = VaultLock(1, "{}", LockState.LOCKED, "x" * 24, T0, T0)
    assert stale.in_force(T0 + timedelta(days=1)) is True


def test_in_progress_without_expiry_is_not_in_force() -> None:
    odd = VaultLock(1, "{}", LockState.IN_PROGRESS, "x" * 24, T0, None)
    assert odd.in_force(T0) is False


# --- vault deletion ----------------------------------------------------------


@pytest.mark.parametrize("lock_state", [LockState.IN_PROGRESS, LockState.LOCKED])
def test_delete_vault_removes_its_governance(
    metadata_store: SqlMetadataStore, lock_state: LockState
) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        neighbour = make_vault(tx, "neighbour")
        tx.set_vault_access_policy(vault.id, '{"doomed": 1}', T0)
        lock = in_progress(vault)
        tx.put_vault_lock(lock)
        if lock_state is LockState.LOCKED:
            assert tx.lock_vault(vault.id, lock.lock_id) is True
        tx.set_vault_access_policy(neighbour.id, '{"kept": 1}', T0)
        neighbour_lock = in_progress(neighbour)
        tx.put_vault_lock(neighbour_lock)
    with metadata_store.transaction() as tx:
        stored = tx.get_vault_lock(vault.id)
        assert stored is not None
        assert stored.state is lock_state
        tx.delete_vault(vault.id, T0 + timedelta(hours=1))
    with metadata_store.transaction() as tx:
        assert tx.get_vault(ACCOUNT, REGION, "photos") is None
        assert tx.get_vault_governance(vault.id) == VaultGovernance(None, None)
        assert tx.get_vault_lock(vault.id) is None
        assert tx.list_governed_vaults() == [
            GovernedVault(neighbour, VaultGovernance('{"kept": 1}', neighbour_lock))
        ]
    with metadata_store.transaction() as tx:
        again = make_vault(tx)
    assert again.id != vault.id
    with metadata_store.transaction() as tx:
        assert tx.get_vault_governance(again.id) == VaultGovernance(None, None)
        assert tx.lock_vault(again.id, lock.lock_id) is False
        assert [g.vault.id for g in tx.list_governed_vaults()] == [neighbour.id]
        assert tx.get_vault_governance(neighbour.id) == VaultGovernance(
            '{"kept": 1}', neighbour_lock
        )
