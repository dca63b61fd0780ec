"""Where each topic's notifications go: the `notify_targets` setting (spec 4.7 [R]).

Syntax: comma-separated `TOPIC_ARN=TARGET` items. TOPIC_ARN is a topic ARN or `*`
(every topic not listed); without `*`, unlisted topics go to the log. ARNs never
contain "=", so each item splits on its first "=" and the target (a URL) may keep
"=" in its query string. A URL holding "," must percent-encode it. TARGET is

- `log`: an INFO record per message (the default);
- `http://...`, `https://...`: a webhook (`webhook.py`);
- `sns+http://[KEY:SECRET@]HOST:PORT`, `sns+https://...`: SNS Publish (`sns.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from openglacier.notify.base import DeliveryError, LogTarget, Target

__all__ = ["DeliveryError", "Target", "Targets", "parse_targets"]

WILDCARD = "*"


class Targets:
    """Topic ARN -> target, with a default for unlisted topics."""

    def __init__(self, routes: Mapping[str, Target], default: Target | None = None) -> None:
        self._routes = dict(routes)
        self._default: Target = default if default is not None else LogTarget()

    def for_topic(self, topic_arn: str) -> Target:
        return self._routes.get(topic_arn, self._default)

    @property
    def default(self) -> Target:
        return self._default

    def close(self) -> None:
        """Close every target's connections (targets shared by topics close once)."""
        seen: set[int] = set()
        for target in [*self._routes.values(), self._default]:
            close = getattr(target, "close", None)
            if id(target) not in seen and callable(close):
                seen.add(id(target))
                close()

    def __repr__(self) -> str:
        return f"Targets({self._routes!r}, default={self._default!r})"


def parse_targets(spec: str, *, default_region: str = "us-east-1") -> Targets:
    """Parse the setting; ValueError names the offending item. `default_region`
    signs SNS calls for topic ARNs without a region."""
    routes: dict[str, Target] = {}
    default: Target | None = None
    made: dict[str, Target] = {}  # one target (one connection pool) per distinct TARGET
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        topic, sep, where = (part.strip() for part in item.partition("="))
        if not sep or not topic or not where:
            raise ValueError(f"bad notify target {item!r}: use TOPIC_ARN=TARGET or *=TARGET")
        _check_topic(topic, item)
        if (topic == WILDCARD and default is not None) or topic in routes:
            raise ValueError(f"bad notify target {item!r}: topic {topic} is given twice")
        target = made.get(where)
        if target is None:
            target = made[where] = make_target(where, default_region=default_region)
        if topic == WILDCARD:
            default = target
        else:
            routes[topic] = target
    return Targets(routes, default)


def make_target(where: str, *, default_region: str = "us-east-1") -> Target:
    """One TARGET: `log`, an http(s) webhook URL or an sns+http(s) endpoint."""
    scheme = where.partition(":")[0].lower() if ":" in where else ""
    if where.lower() == "log":
        return LogTarget()
    # Each target's client library loads only when a target needs it: httpx
    # and boto3 cost a server that logs its notifications 4 and 7 MiB of RSS.
    if scheme in ("http", "https"):
        from openglacier.notify.webhook import WebhookTarget  # noqa: PLC0415

        return _checked(WebhookTarget, where)
    if scheme in ("sns+http", "sns+https"):
        from openglacier.notify.sns import SnsTarget  # noqa: PLC0415

        return _checked(partial(SnsTarget, default_region=default_region), where)
    raise ValueError(
        f"bad notify target {where!r}: use log, http(s)://..., or sns+http(s)://HOST:PORT"
    )


def _checked(make: Callable[[str], Target], where: str) -> Target:
    try:
        return make(where)
    except ValueError as exc:
        raise ValueError(f"bad notify target: {exc}") from None


def _check_topic(topic: str, item: str) -> None:
    # arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE (the resource may hold ":")
    if topic == WILDCARD:
        return
    fields = topic.split(":")
    if len(fields) < 6 or fields[0] != "arn" or not fields[1] or not fields[5] or " " in topic:
        raise ValueError(
            f"bad notify target {item!r}: {topic!r} is not a topic ARN "
            "(arn:aws:sns:REGION:ACCOUNT:NAME) or *"
        )
