"""Webhook target: HTTP POST of the job JSON (spec 4.7 [R]).

The body is the message itself (the GlacierJobDescription JSON), not an SNS
envelope; the topic travels in the `x-amz-sns-topic-arn` header, named as SNS
names it on its own HTTP deliveries. Any 2xx is delivered; anything else,
including a redirect, is a failure the outbox retries. Delivery is at least once:
a receiver deduplicates on (topic, JobId).
"""

from __future__ import annotations

import httpx

from openglacier.notify.base import DeliveryError

TIMEOUT_SECONDS = 10.0  # well inside the Deliverer's lease
USER_AGENT = "openglacier-notify/1"
_SHOWN_BODY = 200  # characters of a failing response quoted in last_error


class WebhookTarget:
    def __init__(self, url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a URL: {redact(url)!r}: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"not an http(s) URL with a host: {redact(url)!r}")
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise ValueError(f"bad port in {redact(url)!r}")
        self.url = url
        # httpx's sync client is safe to share between the Deliverer's threads.
        self._client = httpx.Client(
            timeout=timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        )

    def deliver(self, topic_arn: str, message: str) -> None:
        headers = {
            "Content-Type": "application/json",
            "x-amz-sns-topic-arn": topic_arn,
            "x-amz-sns-message-type": "Notification",
        }
        where = redact(self.url)
        try:
            response = self._client.post(self.url, content=message.encode(), headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"POST {where}: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            body = response.text[:_SHOWN_BODY].strip()
            raise DeliveryError(f"POST {where}: HTTP {response.status_code} {body}".rstrip())

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"WebhookTarget({redact(self.url)!r})"


def redact(url: str) -> str:
    """The URL without credentials or query string (tokens live there), for logs."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    return str(parsed.copy_with(username=None, password=None, query=None, fragment=None))
