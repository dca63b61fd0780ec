"""`SqlMetadataTx`: the MetadataTx port over one SQLAlchemy connection."""

from __future__ import annotations

from openglacier.storage.metadata.accounts import AccountOps
from openglacier.storage.metadata.archives import ArchiveOps
from openglacier.storage.metadata.blobqueue import BlobQueueOps
from openglacier.storage.metadata.credentials import CredentialOps
from openglacier.storage.metadata.damage import DamageOps
from openglacier.storage.metadata.deployment import DeploymentOps
from openglacier.storage.metadata.encryption_keys import EncryptionKeyOps
from openglacier.storage.metadata.governance import GovernanceOps
from openglacier.storage.metadata.jobs import JobOps
from openglacier.storage.metadata.notifications import NotificationOps
from openglacier.storage.metadata.repoint import RepointOps
from openglacier.storage.metadata.stats import StatsOps
from openglacier.storage.metadata.uploads import UploadOps
from openglacier.storage.metadata.usage import UsageOps
from openglacier.storage.metadata.vaults import VaultOps


class SqlMetadataTx(
    VaultOps,
    ArchiveOps,
    UploadOps,
    JobOps,
    NotificationOps,
    AccountOps,
    GovernanceOps,
    BlobQueueOps,
    CredentialOps,
    DeploymentOps,
    EncryptionKeyOps,
    RepointOps,
    DamageOps,
    StatsOps,
    UsageOps,
):
    """Valid only inside the `SqlMetadataStore.transaction()` block that made it."""
