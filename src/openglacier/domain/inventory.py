"""Vault inventory model (spec 5).

DescribeVault and ListVaults report the counters of the last inventory, not the
live archive set. An inventory snapshots a dirty vault; with the instant profile
one is taken inside every write transaction, otherwise the maintenance loop takes
them on the profile's cadence, and the admin API can force one at any time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from openglacier.domain.context import Deps
from openglacier.domain.models import Archive, Caller, InventorySnapshot
from openglacier.domain.vaults import require_vault
from openglacier.ports import MetadataTx

BATCH = 100


@dataclass(frozen=True)
class InventoryResult:
    vault_id: int
    snapshot: InventorySnapshot | None  # None: the vault was clean, nothing taken


class InventoryService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def force(self, caller: Caller, vault_name: str) -> InventoryResult:
        """Take an inventory of one vault now, whatever the cadence (admin hook)."""

        def run(tx: MetadataTx) -> InventoryResult:
            vault = require_vault(self.deps, tx, caller, vault_name, for_update=True)
            return InventoryResult(vault.id, tx.take_inventory(vault.id, self.deps.clock.now()))

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
            vault = require_vault(self.deps, tx, caller, vault_name)
            return tx.list_live_archives(vault.id, after_id, limit)

        return await self.deps.in_read_tx(run)
