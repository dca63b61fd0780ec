"""Vault access policies and vault locks (spec 2.8-2.14)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, or_, select, update

from openglacier.records import (
    GovernedVault,
    LockState,
    Vault,
    VaultGovernance,
    VaultLock,
)
from openglacier.storage.metadata.base import TxBase, values_of
from openglacier.storage.metadata.schema import vault_access_policies, vault_locks, vaults


def _lock(values: dict[str, Any]) -> VaultLock:
    return VaultLock(**{**values, "state": LockState(values["state"])})


# A vault with its access policy and lock row, if any: one statement for what the
# policy check needs on every vault-scoped request. Built once, so SQLAlchemy's
# compiled cache is hit without rebuilding the expression per request.
_GOVERNED = (
    select(
        vaults,
        vault_access_policies.c.policy.label("access_policy"),
        *[c.label(f"lock_{c.name}") for c in vault_locks.c],
    )
    .outerjoin(vault_access_policies, vault_access_policies.c.vault_id == vaults.c.id)
    .outerjoin(vault_locks, vault_locks.c.vault_id == vaults.c.id)
)
_ONE_GOVERNED = _GOVERNED.where(
    vaults.c.account_id == bindparam("account_id"),
    vaults.c.region == bindparam("region"),
    vaults.c.name == bindparam("name"),
)


def _governed(row: Row[Any]) -> GovernedVault:
    values = dict(row._mapping)
    policy = values.pop("access_policy")
    lock = {c.name: values.pop(f"lock_{c.name}") for c in vault_locks.c}
    has_lock = lock["vault_id"] is not None
    return GovernedVault(
        Vault(**values), VaultGovernance(policy, _lock(lock) if has_lock else None)
    )


class GovernanceOps(TxBase):
    def get_vault_governance(self, vault_id: int) -> VaultGovernance:
        policy = self._first(
            select(vault_access_policies.c.policy).where(
                vault_access_policies.c.vault_id == vault_id
            )
        )
        return VaultGovernance(
            access_policy=None if policy is None else str(policy.policy),
            lock=self.get_vault_lock(vault_id),
        )

    def set_vault_access_policy(self, vault_id: int, policy: str, now: datetime) -> None:
        values = {"policy": policy, "updated_at": now}
        stmt = self._insert(vault_access_policies).values(vault_id=vault_id, **values)
        self._run(stmt.on_conflict_do_update(index_elements=["vault_id"], set_=values))

    def delete_vault_access_policy(self, vault_id: int) -> None:
        self._run(delete(vault_access_policies).where(vault_access_policies.c.vault_id == vault_id))

    def get_vault_lock(self, vault_id: int) -> VaultLock | None:
        row = self._first(select(vault_locks).where(vault_locks.c.vault_id == vault_id))
        return None if row is None else _lock(dict(row._mapping))

    def put_vault_lock(self, lock: VaultLock) -> None:
        """Insert or replace the vault's lock row (the domain checked the state)."""
        values = values_of(lock)
        values["state"] = str(lock.state)
        rest = {k: v for k, v in values.items() if k != "vault_id"}
        stmt = self._insert(vault_locks).values(values)
        self._run(stmt.on_conflict_do_update(index_elements=["vault_id"], set_=rest))

    def delete_vault_lock(self, vault_id: int, *, unless_locked: bool = True) -> None:
        stmt = delete(vault_locks).where(vault_locks.c.vault_id == vault_id)
        if unless_locked:
            stmt = stmt.where(vault_locks.c.state != str(LockState.LOCKED))
        self._run(stmt)

    def lock_vault(self, vault_id: int, lock_id: str) -> bool:
        """InProgress -> Locked for the holder of `lock_id`; False if nothing changed."""
        changed = self._run(
            update(vault_locks)
            .where(
                vault_locks.c.vault_id == vault_id,
                vault_locks.c.lock_id == lock_id,
                vault_locks.c.state == str(LockState.IN_PROGRESS),
            )
            .values(state=str(LockState.LOCKED), expires_at=None)
        )
        return changed > 0

    def purge_expired_locks(self, now: datetime) -> int:
        """Remove InProgress locks whose lock id expired (spec 6.2); never a Locked one."""
        return self._run(
            delete(vault_locks).where(
                vault_locks.c.state == str(LockState.IN_PROGRESS),
                vault_locks.c.expires_at <= now,
            )
        )

    def get_governed_vault(self, account_id: str, region: str, name: str) -> GovernedVault | None:
        row = self._first(_ONE_GOVERNED, {"account_id": account_id, "region": region, "name": name})
        return None if row is None else _governed(row)

    def list_governed_vaults(self) -> list[GovernedVault]:
        """Every vault with an access policy or a lock row, by account, region, name."""
        stmt = _GOVERNED.where(
            or_(
                vault_access_policies.c.vault_id.is_not(None),
                vault_locks.c.vault_id.is_not(None),
            )
        ).order_by(vaults.c.account_id, vaults.c.region, vaults.c.name)
        return [_governed(row) for row in self._rows(stmt)]
