"""Options shared by the client commands (vault, archive, job, inventory): which
endpoint, which profile, which region, and `--json` for listings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from openglacier.transfer.endpoint import Endpoint

F = TypeVar("F", bound=Callable[..., Any])


def endpoint_options(func: F) -> F:
    """--endpoint-url, --profile, --region, --account-id (also OPENGLACIER_* variables;
    the AWS variables and config files apply as in the AWS CLI)."""
    options = [
        click.option(
            "--endpoint-url",
            envvar="OPENGLACIER_ENDPOINT_URL",
            help="Glacier endpoint, e.g. http://127.0.0.1:8080 [AWS's, or AWS_ENDPOINT_URL]. "
            "Env: OPENGLACIER_ENDPOINT_URL.",
        ),
        click.option(
            "--profile",
            envvar="OPENGLACIER_PROFILE",
            help="AWS profile for credentials and region [AWS_PROFILE, else default]. "
            "Env: OPENGLACIER_PROFILE.",
        ),
        click.option(
            "--region",
            envvar="OPENGLACIER_REGION",
            help="Region to sign for [the profile's, else us-east-1]. Env: OPENGLACIER_REGION.",
        ),
        click.option(
            "--account-id",
            envvar="OPENGLACIER_ACCOUNT_ID",
            default="-",
            show_default=True,
            help="Account id in request paths; '-' means the credentials' account. "
            "Env: OPENGLACIER_ACCOUNT_ID.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def endpoint_from(options: dict[str, Any]) -> Endpoint:
    """Pop the endpoint options from a command's keyword arguments."""
    return Endpoint(
        url=options.pop("endpoint_url"),
        profile=options.pop("profile"),
        region=options.pop("region"),
        account_id=options.pop("account_id"),
    )
