"""Delivering the notification outbox (spec 4.7).

Job completion writes outbox rows in its own transaction, so a notification
exists exactly when the completion does. A Deliverer claims due rows (a claim is
a lease: `next_attempt_at` moves LEASE ahead, so a crashed deliverer's rows come
back by themselves), delivers each in a worker thread and settles it:

- delivered: state "delivered";
- failed, attempts left: still "pending", due again after an exponential backoff
  (retry_base * 2**(attempts-1), at most MAX_BACKOFF), reason in last_error;
- failed `max_attempts` times: state "failed", and an ERROR record carries the
  topic and the whole message, so nothing is dropped silently.

Delivery is at least once: a deliverer that stalls past its lease, or dies
between delivering and settling, lets the row be sent again. Several
deliverers (processes) may run at once; claims never overlap while leases hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import anyio

from openglacier.config import Settings
from openglacier.domain.context import Deps
from openglacier.metrics import NOTIFICATIONS
from openglacier.notify.base import DeliveryError
from openglacier.notify.targets import Targets, parse_targets
from openglacier.ports import MetadataTx
from openglacier.records import Notification

log = logging.getLogger("openglacier.notify")

LEASE = timedelta(seconds=60)  # longer than any target's timeout
MAX_BACKOFF = timedelta(hours=1)
BATCH = 16  # rows claimed, and delivered concurrently, at a time
MAX_ERROR = 1024  # the last_error column's length

DELIVERED, PENDING, FAILED = "delivered", "pending", "failed"


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    retried: int
    failed: int


@dataclass(frozen=True)
class _Outcome:
    notification: Notification
    error: str | None  # None: delivered


@dataclass(frozen=True)
class _Settlement:
    notification: Notification
    state: str
    next_attempt_at: datetime | None
    last_error: str | None


class Deliverer:
    def __init__(
        self, deps: Deps, targets: Targets, *, max_attempts: int, retry_base: timedelta
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if retry_base < timedelta(0):
            raise ValueError("retry_base must not be negative")
        self.deps = deps
        self.targets = targets
        self.max_attempts = max_attempts
        self.retry_base = retry_base

    @classmethod
    def from_settings(cls, deps: Deps, settings: Settings) -> Deliverer:
        """The Deliverer the server and workers run (ValueError: bad notify_targets)."""
        return cls(
            deps,
            parse_targets(settings.notify_targets, default_region=settings.region),
            max_attempts=settings.notify_max_attempts,
            retry_base=timedelta(seconds=settings.notify_retry_seconds),
        )

    async def run_once(self) -> DeliveryReport:
        """Deliver every row due when the pass starts (and whatever falls due again
        during it, which only a zero retry_base allows; attempts bound that)."""
        delivered = retried = failed = 0
        due = self.deps.clock.now()
        while True:
            batch = await self.deps.in_tx(partial(self._claim, due=due))
            outcomes: list[_Outcome] = []
            async with anyio.create_task_group() as group:
                for notification in batch:
                    group.start_soon(self._deliver, notification, outcomes)
            now = self.deps.clock.now()
            settled = [self._decide(outcome, now) for outcome in outcomes]
            await self.deps.in_tx(partial(_apply, settled=settled))
            for settlement in settled:
                self._log(settlement)
            states = [settlement.state for settlement in settled]
            delivered += states.count(DELIVERED)
            retried += states.count(PENDING)
            failed += states.count(FAILED)
            if len(batch) < BATCH:
                return DeliveryReport(delivered, retried, failed)

    async def loop(self, interval: float) -> None:
        """run_once every `interval` seconds until cancelled; a failed pass (e.g. the
        database is unreachable) is logged and the next one tries again."""
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("notification delivery pass failed")
            await anyio.sleep(interval)

    def _claim(self, tx: MetadataTx, *, due: datetime) -> list[Notification]:
        return tx.claim_notifications(due, self.deps.clock.now() + LEASE, BATCH)

    async def _deliver(self, notification: Notification, outcomes: list[_Outcome]) -> None:
        target = self.targets.for_topic(notification.topic_arn)
        send = partial(target.deliver, notification.topic_arn, notification.message)
        try:
            await self.deps.blocking(send)
        except DeliveryError as exc:
            outcomes.append(_Outcome(notification, str(exc) or type(exc).__name__))
        except Exception as exc:
            log.exception("notification %d: %r raised unexpectedly", notification.id, target)
            outcomes.append(_Outcome(notification, f"{type(exc).__name__}: {exc}"))
        else:
            outcomes.append(_Outcome(notification, None))

    def _decide(self, outcome: _Outcome, now: datetime) -> _Settlement:
        n, error = outcome.notification, outcome.error
        if error is None:
            return _Settlement(n, DELIVERED, None, None)
        error = error[:MAX_ERROR]
        if n.attempts >= self.max_attempts:
            return _Settlement(n, FAILED, None, error)
        return _Settlement(n, PENDING, now + self.backoff(n.attempts), error)

    def _log(self, s: _Settlement) -> None:
        n = s.notification
        NOTIFICATIONS.labels("retry" if s.state == PENDING else s.state).inc()
        if s.state == DELIVERED:
            log.debug("notification %d for topic %s delivered", n.id, n.topic_arn)
        elif s.state == FAILED:
            log.error(
                "notification %d for topic %s failed %d times, giving up: %s; message: %s",
                *(n.id, n.topic_arn, n.attempts, s.last_error, n.message),
            )
        else:
            retry_at = s.next_attempt_at.isoformat() if s.next_attempt_at else "?"
            log.warning(
                "notification %d for topic %s failed (attempt %d of %d), retrying at %s: %s",
                *(n.id, n.topic_arn, n.attempts, self.max_attempts, retry_at, s.last_error),
            )

    def backoff(self, attempts: int) -> timedelta:
        """Delay after the `attempts`-th failure: retry_base doubling, capped."""
        cap = max(MAX_BACKOFF, self.retry_base)
        seconds = self.retry_base.total_seconds() * 2.0 ** min(max(attempts - 1, 0), 64)
        return min(timedelta(seconds=min(seconds, cap.total_seconds())), cap)


def _apply(tx: MetadataTx, *, settled: list[_Settlement]) -> None:
    for s in settled:
        tx.settle_notification(
            s.notification.id,
            attempts=s.notification.attempts,
            state=s.state,
            next_attempt_at=s.next_attempt_at,
            last_error=s.last_error,
        )
