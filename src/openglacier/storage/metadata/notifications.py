"""Vault notification configurations and the notification outbox (spec 2.5-2.7, 4.7).

Outbox rows are written in the job-completion transaction. Deliverers claim due
rows by pushing `next_attempt_at` forward (a lease), so several processes can
deliver concurrently without sending one message twice in the normal case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, select, update

from openglacier.records import Notification, NotificationConfig
from openglacier.storage.metadata.base import TxBase
from openglacier.storage.metadata.schema import notifications, vault_notifications

PENDING = "pending"


def _notification(row: Row[Any]) -> Notification:
    return Notification(**row._mapping)


# Built once with bound parameters: every completed job queues one or two, and
# compiling the INSERT with literal values cost more than running it.
_VAULT_CONFIG = select(vault_notifications).where(
    vault_notifications.c.vault_id == bindparam("vault_id")
)
_ENQUEUE = notifications.insert().values(
    topic_arn=bindparam("v_topic"),
    message=bindparam("v_message"),
    created_at=bindparam("v_now"),
    attempts=0,
    next_attempt_at=bindparam("v_now"),
    last_error=None,
    state=PENDING,
)


class NotificationOps(TxBase):
    def get_vault_notifications(self, vault_id: int) -> NotificationConfig | None:
        row = self._first(_VAULT_CONFIG, {"vault_id": vault_id})
        if row is None:
            return None
        events = tuple(e for e in str(row.events).split(",") if e)
        return NotificationConfig(sns_topic=str(row.sns_topic), events=events)

    def set_vault_notifications(self, vault_id: int, config: NotificationConfig) -> None:
        values = {"sns_topic": config.sns_topic, "events": ",".join(config.events)}
        stmt = self._insert(vault_notifications).values(vault_id=vault_id, **values)
        self._run(stmt.on_conflict_do_update(index_elements=["vault_id"], set_=values))

    def delete_vault_notifications(self, vault_id: int) -> None:
        self._run(delete(vault_notifications).where(vault_notifications.c.vault_id == vault_id))

    def enqueue_notification(self, topic_arn: str, message: str, now: datetime) -> None:
        self._run(_ENQUEUE, {"v_topic": topic_arn, "v_message": message, "v_now": now})

    def claim_notifications(self, now: datetime, until: datetime, limit: int) -> list[Notification]:
        """Pending rows due at `now`, leased until `until` (attempts counted)."""
        stmt = (
            select(notifications.c.id)
            .where(notifications.c.state == PENDING, notifications.c.next_attempt_at <= now)
            .order_by(notifications.c.next_attempt_at, notifications.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = [int(r.id) for r in self._rows(stmt)]
        claimed: list[Notification] = []
        for nid in ids:
            row = self._first(
                update(notifications)
                .where(notifications.c.id == nid)
                .values(next_attempt_at=until, attempts=notifications.c.attempts + 1)
                .returning(*notifications.c)
            )
            if row is not None:
                claimed.append(_notification(row))
        return claimed

    def settle_notification(
        self,
        notification_id: int,
        *,
        attempts: int,
        state: str,
        next_attempt_at: datetime | None,
        last_error: str | None,
    ) -> bool:
        """Record an attempt's outcome, unless the row was claimed again since
        (the claim's lease ran out): a stale deliverer never overwrites a newer one."""
        stmt = (
            update(notifications)
            .where(
                notifications.c.id == notification_id,
                notifications.c.attempts == attempts,
                notifications.c.state == PENDING,
            )
            .values(state=state, next_attempt_at=next_attempt_at, last_error=last_error)
        )
        return self._run(stmt) == 1

    def purge_delivered_notifications(self, created_before: datetime) -> int:
        stmt = delete(notifications).where(
            notifications.c.state == "delivered", notifications.c.created_at <= created_before
        )
        return self._run(stmt)

    def list_notifications(self, state: str | None, limit: int) -> list[Notification]:
        stmt = select(notifications)
        if state is not None:
            stmt = stmt.where(notifications.c.state == state)
        return [
            _notification(r) for r in self._rows(stmt.order_by(notifications.c.id).limit(limit))
        ]
