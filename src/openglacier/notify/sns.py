"""SNS target: `Publish` to an SNS-compatible endpoint (spec 4.7 [R]).

`sns+http://HOST:PORT` (or `sns+https://`, optionally with a path prefix) names
the endpoint; the topic ARN gives TopicArn and the signing region. Credentials:
`sns+http://KEY:SECRET@HOST:PORT` (percent-encoded) if given, else the standard
AWS chain (environment, shared files, instance role), else fixed dummy
credentials, which local emulators accept. botocore's own retries are off: the
outbox retries, with backoff, across restarts.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3.session
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from openglacier.notify.base import DeliveryError

SUBJECT = "Amazon Glacier job completed"  # spec 4.7: the real Subject is undocumented
DUMMY_CREDENTIALS = ("openglacier", "openglacier")
_CONFIG = Config(
    connect_timeout=5,
    read_timeout=10,
    retries={"total_max_attempts": 1},
    user_agent_extra="openglacier-notify",
)


class SnsTarget:
    def __init__(self, spec: str, *, default_region: str = "us-east-1") -> None:
        parts = urlsplit(spec)
        scheme = parts.scheme.lower()
        if scheme not in ("sns+http", "sns+https") or not parts.hostname:
            raise ValueError(f"not an sns+http(s)://HOST[:PORT] URL: {_shown(spec)!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"an SNS endpoint takes no query or fragment: {_shown(spec)!r}")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError as exc:
            raise ValueError(f"bad port in SNS endpoint {_shown(spec)!r}") from exc
        host = parts.netloc.rpartition("@")[2]
        self.endpoint_url = f"{scheme.removeprefix('sns+')}://{host}{parts.path.rstrip('/')}"
        self.default_region = default_region
        self._keys: tuple[str, str] | None = None
        if parts.username is not None or parts.password is not None:
            if not parts.username or not parts.password:
                raise ValueError(f"give both KEY:SECRET in SNS endpoint {_shown(spec)!r}")
            self._keys = (unquote(parts.username), unquote(parts.password))
        self._lock = threading.Lock()
        self._session: boto3.session.Session | None = None
        self._clients: dict[str, Any] = {}

    def deliver(self, topic_arn: str, message: str) -> None:
        client = self._client(self._region(topic_arn))
        try:
            client.publish(TopicArn=topic_arn, Message=message, Subject=SUBJECT)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, text = error.get("Code", "Unknown"), error.get("Message", "")
            raise DeliveryError(f"SNS Publish at {self.endpoint_url}: {code}: {text}") from exc
        except BotoCoreError as exc:
            raise DeliveryError(f"SNS Publish at {self.endpoint_url}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def __repr__(self) -> str:
        return f"SnsTarget({self.endpoint_url!r})"

    def _region(self, topic_arn: str) -> str:
        # arn:PARTITION:sns:REGION:ACCOUNT:NAME
        fields = topic_arn.split(":")
        return fields[3] if len(fields) > 3 and fields[3] else self.default_region

    def _client(self, region: str) -> Any:
        # Sessions are not thread-safe and the credential chain may do I/O, so
        # clients are made once per region under a lock; clients are thread-safe.
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                session = self._session or self._new_session()
                self._session = session
                client = session.client(
                    "sns", region_name=region, endpoint_url=self.endpoint_url, config=_CONFIG
                )
                self._clients[region] = client
            return client

    def _new_session(self) -> boto3.session.Session:
        if self._keys is not None:
            key, secret = self._keys
        else:
            chain = boto3.session.Session()
            found: Credentials | None = chain.get_credentials()
            if found is not None:
                return chain
            key, secret = DUMMY_CREDENTIALS
        return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret)


def _shown(spec: str) -> str:
    """The spec without credentials, for error messages."""
    parts = urlsplit(spec)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
