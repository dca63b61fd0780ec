"""All domain services over one set of dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from openglacier.domain.archives import ArchiveService
from openglacier.domain.context import Deps
from openglacier.domain.inventory import InventoryService
from openglacier.domain.multipart import MultipartService
from openglacier.domain.tags import TagService
from openglacier.domain.vaults import VaultService
from openglacier.jobs.maintenance import Maintenance


@dataclass(frozen=True)
class Services:
    deps: Deps
    vaults: VaultService
    tags: TagService
    archives: ArchiveService
    multipart: MultipartService
    inventory: InventoryService
    maintenance: Maintenance

    @classmethod
    def build(cls, deps: Deps) -> Services:
        return cls(
            deps=deps,
            vaults=VaultService(deps),
            tags=TagService(deps),
            archives=ArchiveService(deps),
            multipart=MultipartService(deps),
            inventory=InventoryService(deps),
            maintenance=Maintenance(deps),
        )
