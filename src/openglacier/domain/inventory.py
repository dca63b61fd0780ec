"""Vault inventory model (docs/architecture.md#data-model).

DescribeVault and ListVaults report the counters of the last inventory, not the
live archive set. An inventory snapshots a dirty vault; with the instant profile
one is taken inside every write transaction, otherwise the maintenance loop takes
them on the profile's cadence, and the admin API can force one at any time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from openglacier.domain.context import ARCHIVE_OVERHEAD_BYTES, Deps
from openglacier.domain.vaults import require_vault
from openglacier.errors import ResourceNotFoundException
from openglacier.ports import MetadataTx
from openglacier.records import Archive, Caller, InventorySnapshot, Vault

BATCH = 100


@dataclass(frozen=True)
class InventoryResult:
    """The vault's inventory after a forced one: newly taken, or already current.

    A clean vault (no write since its last inventory) gets no new snapshot, so
    its inventory date does not move; the facts are then the last inventory's.
    """

    vault_id: int
    taken: bool
    inventory_date: datetime | None  # None: never inventoried (never written to)
    archive_count: int
    archive_bytes: int  # raw archive bytes, without the per-archive overhead

    @property
    def size_in_bytes(self) -> int:
        """`SizeInBytes` as DescribeVault reports it (32 KiB overhead per archive)."""
        return self.archive_bytes + ARCHIVE_OVERHEAD_BYTES * self.archive_count

    @classmethod
    def of(cls, vault: Vault, snapshot: InventorySnapshot | None) -> InventoryResult:
        if snapshot is None:
            return cls(
                vault.id, False, vault.inventory_date, vault.inventory_count, vault.inventory_size
            )
        return cls(
            vault.id, True, snapshot.taken_at, snapshot.archive_count, snapshot.size_in_bytes
        )


class InventoryService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def force(self, caller: Caller, vault_name: str) -> InventoryResult:
        """Take an inventory of one vault now, whatever the cadence (admin hook)."""

        def run(tx: MetadataTx) -> InventoryResult:
            vault = self._require(tx, caller, vault_name, for_update=True)
            return InventoryResult.of(vault, tx.take_inventory(vault.id, self.deps.clock.now()))

        return await self.deps.in_tx(run)

    async def run_due(self, *, everything: bool = False) -> int:
        """Inventory every dirty vault whose cadence has elapsed (all dirty if asked)."""
        interval = self.deps.timing.inventory_interval
        now = self.deps.clock.now()
        not_after = now if everything or interval is None else now - interval
        taken = 0
        while True:
            due = await self.deps.in_tx(lambda tx: tx.vaults_due_for_inventory(not_after, BATCH))
            for vault_id in due:
                snap = await self.deps.in_tx(partial(self._take, vault_id=vault_id))
                taken += snap is not None
            if len(due) < BATCH:
                return taken

    def _take(self, tx: MetadataTx, *, vault_id: int) -> InventorySnapshot | None:
        return tx.take_inventory(vault_id, self.deps.clock.now())

    async def live_archives(
        self, caller: Caller, vault_name: str, after_id: str | None, limit: int
    ) -> list[Archive]:
        """The live archive set (operators and tests; inventories lag behind it)."""

        def run(tx: MetadataTx) -> list[Archive]:
            vault = self._require(tx, caller, vault_name)
            return tx.list_live_archives(vault.id, after_id, limit)

        return await self.deps.in_read_tx(run)

    def _require(
        self, tx: MetadataTx, caller: Caller, vault_name: str, *, for_update: bool = False
    ) -> Vault:
        """The vault, or a 404 that says whether the account itself is unknown.

        These calls come from operators naming an account by hand (admin API), so
        a mistyped account id deserves its own message rather than a vault ARN.
        """
        account, region = caller.account_id, caller.region
        known = tx.count_vaults(account, region) > 0 or any(
            c.account_id == account for c in tx.list_credentials()
        )
        if not known:
            raise ResourceNotFoundException(
                f"Unknown account: {account} has no access key and no vault in {region}"
            )
        return require_vault(self.deps, tx, caller, vault_name, for_update=for_update)
