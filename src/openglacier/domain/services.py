"""All domain services over one set of dependencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from openglacier.domain.account_settings import AccountSettingsService
from openglacier.domain.archives import ArchiveService
from openglacier.domain.context import Deps
from openglacier.domain.governance.access import AccessGuard
from openglacier.domain.governance.vault_policies import VaultPolicyService
from openglacier.domain.inventory import InventoryService
from openglacier.domain.jobs.service import JobOptions, JobService
from openglacier.domain.multipart import MultipartService
from openglacier.domain.notifications import NotificationService
from openglacier.domain.tags import TagService
from openglacier.domain.vaults import VaultService
from openglacier.jobs.executors import JobExecutor
from openglacier.jobs.maintenance import Maintenance
from openglacier.jobs.runner import JobRunner
from openglacier.notify.deliver import Deliverer
from openglacier.notify.targets import Targets, parse_targets

if TYPE_CHECKING:
    from openglacier.ports import OutputSink


@dataclass(frozen=True)
class JobSetup:
    """How this process runs jobs (from Settings; defaults suit tests)."""

    options: JobOptions = field(default_factory=JobOptions)
    sink_factory: Callable[[], OutputSink] | None = None
    lease: timedelta = timedelta(seconds=60)
    workers: int = 1
    targets: Targets = field(default_factory=lambda: parse_targets(""))
    notify_max_attempts: int = 10
    notify_retry_base: timedelta = timedelta(seconds=2)


@dataclass(frozen=True)
class Services:
    deps: Deps
    vaults: VaultService
    tags: TagService
    archives: ArchiveService
    multipart: MultipartService
    inventory: InventoryService
    maintenance: Maintenance
    jobs: JobService
    notifications: NotificationService
    accounts: AccountSettingsService
    policies: VaultPolicyService
    access: AccessGuard
    executor: JobExecutor
    deliverer: Deliverer
    runners: list[JobRunner] = field(default_factory=list)

    @property
    def runner(self) -> JobRunner:
        """The runner admin hooks use (exists even with zero background workers)."""
        return self.runners[0]

    @classmethod
    def build(cls, deps: Deps, setup: JobSetup | None = None) -> Services:
        setup = setup or JobSetup()
        executor = JobExecutor(deps, setup.sink_factory)
        runners = [
            JobRunner(deps, executor, lease=setup.lease) for _ in range(max(1, setup.workers))
        ]

        def wake() -> None:
            for runner in runners:
                runner.wake()

        return cls(
            deps=deps,
            vaults=VaultService(deps),
            tags=TagService(deps),
            archives=ArchiveService(deps),
            multipart=MultipartService(deps),
            inventory=InventoryService(deps),
            maintenance=Maintenance(deps),
            jobs=JobService(deps, setup.options, wake),
            notifications=NotificationService(deps),
            accounts=AccountSettingsService(deps),
            policies=VaultPolicyService(deps),
            access=AccessGuard(deps),
            executor=executor,
            deliverer=Deliverer(
                deps,
                setup.targets,
                max_attempts=setup.notify_max_attempts,
                retry_base=setup.notify_retry_base,
            ),
            runners=runners,
        )
