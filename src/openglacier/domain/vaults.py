"""Vault operations: CreateVault, DescribeVault, ListVaults, DeleteVault (spec 2.1-2.4)."""

from __future__ import annotations

from dataclasses import dataclass

from openglacier.domain.context import MAX_VAULTS_PER_REGION, Deps
from openglacier.domain.validation import is_valid_vault_name
from openglacier.errors import (
    InvalidParameterValueException,
    LimitExceededException,
    ResourceNotFoundException,
)
from openglacier.ports import MetadataTx
from openglacier.records import Caller, Vault


@dataclass(frozen=True)
class VaultPage:
    vaults: list[Vault]
    next_name: str | None  # name of the first vault not returned


def vault_not_found(deps: Deps, caller: Caller, name: str) -> ResourceNotFoundException:
    # Spec 1.8: an illegal name is echoed raw, without the ARN prefix.
    target = deps.vault_arn(caller.region, caller.account_id, name)
    return ResourceNotFoundException(
        f"Vault not found for ARN: {target if is_valid_vault_name(name) else name}"
    )


def require_vault(
    deps: Deps, tx: MetadataTx, caller: Caller, name: str, *, for_update: bool = False
) -> Vault:
    """The caller's vault of that name, or the spec's 404."""
    vault = None
    if is_valid_vault_name(name):
        vault = tx.get_vault(caller.account_id, caller.region, name, for_update=for_update)
    if vault is None:
        raise vault_not_found(deps, caller, name)
    return vault


class VaultService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def create(self, caller: Caller, name: str) -> Vault:
        if not is_valid_vault_name(name):
            raise InvalidParameterValueException(f"Invalid vault name: {name}")

        def run(tx: MetadataTx) -> Vault:
            existing = tx.get_vault(caller.account_id, caller.region, name)
            if existing is not None:
                return existing  # idempotent (spec 2.1)
            if tx.count_vaults(caller.account_id, caller.region) >= MAX_VAULTS_PER_REGION:
                raise LimitExceededException(
                    f"The number of vaults in account {caller.account_id} and region "
                    f"{caller.region} has reached the limit of {MAX_VAULTS_PER_REGION}."
                )
            return tx.create_vault(caller.account_id, caller.region, name, self.deps.clock.now())

        return await self.deps.in_tx(run)

    async def describe(self, caller: Caller, name: str) -> Vault:
        return await self.deps.in_read_tx(lambda tx: require_vault(self.deps, tx, caller, name))

    async def list(self, caller: Caller, start_name: str | None, limit: int) -> VaultPage:
        def run(tx: MetadataTx) -> list[Vault]:
            return tx.list_vaults(caller.account_id, caller.region, start_name, limit + 1)

        rows = await self.deps.in_read_tx(run)
        # Spec 2.3 [R]: the marker names the first vault not yet returned.
        nxt = rows[limit].name if len(rows) > limit else None
        return VaultPage(rows[:limit], nxt)

    def marker_to_name(self, caller: Caller, marker: str) -> str:
        """ListVaults markers are vault ARNs of this account and region (spec 2.3)."""
        prefix = self.deps.vault_arn(caller.region, caller.account_id, "")
        name = marker[len(prefix) :] if marker.startswith(prefix) else ""
        if not is_valid_vault_name(name):
            raise InvalidParameterValueException(f"Invalid marker: {marker}")
        return name

    async def delete(self, caller: Caller, name: str) -> None:
        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, name, for_update=True)
            # Spec 2.4/5: empty as of the last inventory and no writes since.
            if vault.dirty or vault.inventory_count > 0:
                arn = self.deps.vault_arn(caller.region, caller.account_id, name)
                raise InvalidParameterValueException(
                    f"Vault not empty or recently written to: {arn}"
                )
            tx.delete_vault(vault.id, self.deps.clock.now())

        await self.deps.in_tx(run)
        await self.deps.collect_garbage()
