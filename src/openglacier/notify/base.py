"""What every notification target is: a blocking `deliver` that raises on failure.

Targets run in worker threads (the Deliverer calls them through `Deps.blocking`),
so they may block on the network but must be safe to call from several threads
at once. A target never retries by itself: the outbox retries (spec 4.7 [R]).
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("openglacier.notify")


class DeliveryError(Exception):
    """A message did not reach its target; the text says why (stored as last_error)."""


class Target(Protocol):
    def deliver(self, topic_arn: str, message: str) -> None:
        """Send `message` (the job's JSON) for `topic_arn`; raise DeliveryError on failure."""
        ...


class LogTarget:
    """The default sink (spec 4.7 [R]): one INFO record per message, nothing sent."""

    def deliver(self, topic_arn: str, message: str) -> None:
        log.info("notification for %s: %s", topic_arn, message)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "LogTarget()"
