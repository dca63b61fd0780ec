"""Set/Get/DeleteVaultNotifications (spec 2.5-2.7)."""

from __future__ import annotations

from typing import Any

from openglacier.domain.context import Deps
from openglacier.domain.vaults import require_vault
from openglacier.errors import (
    InvalidParameterValueException,
    MissingParameterValueException,
    ResourceNotFoundException,
    SerializationException,
)
from openglacier.ports import MetadataTx
from openglacier.records import Caller, NotificationConfig

EVENTS = ("ArchiveRetrievalCompleted", "InventoryRetrievalCompleted")
MAX_TOPIC = 1024


def parse_notification_config(body: dict[str, Any]) -> NotificationConfig:
    """The VaultNotificationConfig object itself, not wrapped (spec 2.5)."""
    topic = body.get("SNSTopic")
    events = body.get("Events")
    if topic is not None and not isinstance(topic, str):
        raise SerializationException("Member SNSTopic must be a string.")
    if events is not None and (
        not isinstance(events, list) or not all(isinstance(e, str) for e in events)
    ):
        raise SerializationException("Member Events must be a list of strings.")
    if not topic:
        raise MissingParameterValueException("Required parameter missing: SNSTopic")
    if not events:
        raise MissingParameterValueException("Required parameter missing: Events")
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise InvalidParameterValueException(
            f"Invalid event: {unknown[0]}. Valid values are: {', '.join(EVENTS)}."
        )
    if not _arn_shaped(topic):
        raise InvalidParameterValueException(f"Invalid SNSTopic: {topic}. It must be an ARN.")
    return NotificationConfig(topic, tuple(dict.fromkeys(events)))


def _arn_shaped(topic: str) -> bool:
    parts = topic.split(":")
    return (
        len(topic) <= MAX_TOPIC
        and len(parts) >= 6
        and parts[0] == "arn"
        and all(parts[i] for i in (1, 2, 5))
    )


class NotificationService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def set(self, caller: Caller, vault_name: str, body: dict[str, Any]) -> None:
        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, vault_name)
            tx.set_vault_notifications(vault.id, parse_notification_config(body))

        await self.deps.in_tx(run)

    async def get(self, caller: Caller, vault_name: str) -> NotificationConfig:
        def run(tx: MetadataTx) -> NotificationConfig:
            vault = require_vault(self.deps, tx, caller, vault_name)
            config = tx.get_vault_notifications(vault.id)
            if config is None:
                arn = self.deps.vault_arn(vault.region, vault.account_id, vault.name)
                raise ResourceNotFoundException(
                    f"No notification configuration is set for vault: {arn}"
                )
            return config

        return await self.deps.in_read_tx(run)

    async def delete(self, caller: Caller, vault_name: str) -> None:
        """204 also when nothing is configured (spec 2.7 [R])."""

        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, vault_name)
            tx.delete_vault_notifications(vault.id)

        await self.deps.in_tx(run)
