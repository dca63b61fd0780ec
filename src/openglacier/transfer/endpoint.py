"""Which Glacier endpoint to talk to, and a boto3 client for it.

The usual AWS configuration applies (`--profile`, `AWS_*` variables, the shared
config and credentials files); `--endpoint-url` points the client at an
OpenGlacier server instead of AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

# A region must be named for SigV4 even when the endpoint is not AWS; OpenGlacier
# accepts any, AWS's own default region is the least surprising choice.
DEFAULT_REGION = "us-east-1"


class EndpointError(Exception):
    """The endpoint or its configuration cannot be used (message is one line)."""


@dataclass(frozen=True)
class Endpoint:
    url: str | None = None
    profile: str | None = None
    region: str | None = None
    account_id: str = "-"  # Glacier's "the account of the credentials"


def glacier_client(endpoint: Endpoint, *, max_pool_connections: int = 16) -> Any:
    """A boto3 Glacier client for `endpoint`, with standard retries and a pool large
    enough for parallel part transfers."""
    try:
        session = boto3.session.Session(profile_name=endpoint.profile)
        region = endpoint.region or session.region_name or DEFAULT_REGION
        config = Config(
            max_pool_connections=max_pool_connections,
            retries={"mode": "standard", "max_attempts": 5},
        )
        return session.client(
            "glacier", endpoint_url=endpoint.url, region_name=region, config=config
        )
    except BotoCoreError as exc:  # ProfileNotFound, ...
        raise EndpointError(str(exc)) from exc
    except ValueError as exc:  # botocore's "Invalid endpoint: URL"
        raise EndpointError(f"{exc} (an endpoint URL is like http://127.0.0.1:8080)") from exc
