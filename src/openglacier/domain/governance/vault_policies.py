"""Vault access policies and vault locks (spec 2.8-2.14, 6.1-6.2).

Both documents are validated with the policy evaluator at write time and then
kept as the exact string the client sent, so Get returns it byte for byte.

The lock state machine: none -> InProgress (Initiate) -> Locked (Complete);
InProgress -> none (Abort, or the lock id expiring 24 h after Initiate). An
expired InProgress row is treated as absent everywhere the moment it expires;
maintenance deletes it later. Nothing in here removes or replaces a Locked row.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Any

from openglacier.clock import iso_ms
from openglacier.domain.context import Deps
from openglacier.domain.governance.policy import Policy, PolicyError, parse_policy
from openglacier.domain.vaults import require_vault
from openglacier.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    MissingParameterValueException,
    ResourceNotFoundException,
    SerializationException,
)
from openglacier.ids import new_lock_id
from openglacier.ports import MetadataTx
from openglacier.records import Caller, LockState, Vault, VaultLock

MAX_POLICY_BYTES = 20 * 1024  # spec 2.8 / 2.11: "20 KB"
LOCK_ID_LIFETIME = timedelta(hours=24)  # spec 6.2


@lru_cache(maxsize=512)
def compiled_policy(text: str) -> Policy:
    """Parse a stored policy once per process (they were valid when stored)."""
    return parse_policy(text)


def policy_member(body: dict[str, Any]) -> str:
    """The `Policy` string of a SetVaultAccessPolicy / InitiateVaultLock body, checked."""
    text = body.get("Policy")
    if text is None:
        raise MissingParameterValueException("Required parameter missing: Policy")
    if not isinstance(text, str):
        raise SerializationException("Member Policy must be a string.")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800"
        raise InvalidParameterValueException(
            "Invalid policy document: it is not valid Unicode text."
        ) from None
    if size > MAX_POLICY_BYTES:
        raise InvalidParameterValueException(
            f"Policy size {size} bytes exceeds the limit of {MAX_POLICY_BYTES} bytes."
        )
    try:
        compiled_policy(text)
    except PolicyError as error:
        raise InvalidParameterValueException(f"Invalid policy document: {error}") from None
    return text


class VaultPolicyService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _arn(self, vault: Vault) -> str:
        return self.deps.vault_arn(vault.region, vault.account_id, vault.name)

    # --- access policy (spec 2.8-2.10) --------------------------------------
    async def set_access_policy(self, caller: Caller, name: str, body: dict[str, Any]) -> None:
        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, name)
            tx.set_vault_access_policy(vault.id, policy_member(body), self.deps.clock.now())

        await self.deps.in_tx(run)

    async def get_access_policy(self, caller: Caller, name: str) -> str:
        def run(tx: MetadataTx) -> str:
            vault = require_vault(self.deps, tx, caller, name)
            policy = tx.get_vault_governance(vault.id).access_policy
            if policy is None:
                raise ResourceNotFoundException(
                    f"No vault access policy is set for: {self._arn(vault)}"
                )
            return policy

        return await self.deps.in_read_tx(run)

    async def delete_access_policy(self, caller: Caller, name: str) -> None:
        """204 also when none is set (spec 2.10)."""

        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, name)
            tx.delete_vault_access_policy(vault.id)

        await self.deps.in_tx(run)

    # --- vault lock (spec 2.11-2.14) ------------------------------------------
    def _lock_in_force(self, tx: MetadataTx, vault: Vault) -> VaultLock | None:
        lock = tx.get_vault_lock(vault.id)
        return lock if lock is not None and lock.in_force(self.deps.clock.now()) else None

    async def initiate_lock(self, caller: Caller, name: str, body: dict[str, Any]) -> str:
        def run(tx: MetadataTx) -> str:
            vault = require_vault(self.deps, tx, caller, name, for_update=True)
            text = policy_member(body)  # syntax before state (spec 1.8)
            current = self._lock_in_force(tx, vault)
            if current is not None and current.state is LockState.LOCKED:
                raise AccessDeniedException(
                    f"The vault lock policy of {self._arn(vault)} is Locked and cannot be replaced."
                )
            if current is not None:
                raise AccessDeniedException(
                    f"A vault lock is already in progress for {self._arn(vault)}; abort it "
                    "with AbortVaultLock before initiating another."
                )
            now = self.deps.clock.now()
            lock = VaultLock(
                vault_id=vault.id,
                policy=text,
                state=LockState.IN_PROGRESS,
                lock_id=new_lock_id(),
                created_at=now,
                expires_at=now + LOCK_ID_LIFETIME,
            )
            tx.put_vault_lock(lock)  # replaces an expired InProgress row, if any
            return lock.lock_id

        return await self.deps.in_tx(run)

    async def complete_lock(self, caller: Caller, name: str, lock_id: str) -> None:
        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, name, for_update=True)
            current = self._lock_in_force(tx, vault)
            if current is None:
                raise InvalidParameterValueException(
                    f"There is no vault lock in progress for {self._arn(vault)}."
                )
            if current.state is LockState.LOCKED:
                if lock_id != current.lock_id:  # the locking id is idempotent (spec 2.12)
                    raise AccessDeniedException(
                        f"The vault lock policy of {self._arn(vault)} is already Locked."
                    )
                return
            if lock_id != current.lock_id or not tx.lock_vault(vault.id, lock_id):
                raise InvalidParameterValueException(f"Invalid lock ID: {lock_id}")

        await self.deps.in_tx(run)

    async def abort_lock(self, caller: Caller, name: str) -> None:
        """204 when InProgress or absent; 403 once Locked (spec 2.13)."""

        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, name, for_update=True)
            current = tx.get_vault_lock(vault.id)
            if current is not None and current.state is LockState.LOCKED:
                raise AccessDeniedException(
                    f"The vault lock policy of {self._arn(vault)} is Locked and cannot be aborted."
                )
            tx.delete_vault_lock(vault.id)

        await self.deps.in_tx(run)

    async def get_lock(self, caller: Caller, name: str) -> VaultLock:
        def run(tx: MetadataTx) -> VaultLock:
            vault = require_vault(self.deps, tx, caller, name)
            current = self._lock_in_force(tx, vault)
            if current is None:
                raise ResourceNotFoundException(
                    f"No vault lock policy is set for: {self._arn(vault)}"
                )
            return current

        return await self.deps.in_read_tx(run)


def lock_json(lock: VaultLock) -> dict[str, Any]:
    """GetVaultLock's body (spec 2.14): ExpirationDate is null once Locked."""
    return {
        "Policy": lock.policy,
        "State": str(lock.state),
        "ExpirationDate": iso_ms(lock.expires_at) if lock.expires_at is not None else None,
        "CreationDate": iso_ms(lock.created_at),
    }
