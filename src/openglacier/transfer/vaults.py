"""Vault operations of the transfer client: list, create, delete, describe.

Each returns Glacier's own field names (as the API and `aws glacier` show them),
so `--json` output means the same thing whichever tool printed it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from openglacier.transfer.errors import TransferError, classify

# Glacier's rule for vault names; checked before a request, so that a name such
# as "a/b" is not sent as a different path.
VAULT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
VAULT_FIELDS = (
    "VaultName",
    "VaultARN",
    "CreationDate",
    "LastInventoryDate",
    "NumberOfArchives",
    "SizeInBytes",
)


def check_vault_name(name: str) -> str:
    """`name`, or ValueError saying what a vault name may hold."""
    if not VAULT_NAME.match(name):
        raise ValueError(f"{name!r} is not a vault name: 1 to 255 letters, digits, '_', '-' or '.'")
    return name


def _vault(raw: dict[str, Any]) -> dict[str, Any]:
    return {name: raw.get(name) for name in VAULT_FIELDS}


def list_vaults(glacier: Any, account_id: str = "-") -> Iterator[dict[str, Any]]:
    """Every vault of the account, following the listing's markers."""
    try:
        pages = glacier.get_paginator("list_vaults").paginate(accountId=account_id)
        for page in pages:
            for raw in page.get("VaultList", []):
                yield _vault(raw)
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc) from exc


def describe_vault(glacier: Any, name: str, account_id: str = "-") -> dict[str, Any]:
    try:
        return _vault(glacier.describe_vault(accountId=account_id, vaultName=name))
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, f"vault {name}") from exc


def create_vault(glacier: Any, name: str, account_id: str = "-") -> str:
    """Create the vault (creating one that exists is not an error in Glacier);
    its location."""
    try:
        answer = glacier.create_vault(accountId=account_id, vaultName=name)
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc) from exc
    return str(answer.get("location", ""))


def delete_vault(glacier: Any, name: str, account_id: str = "-") -> None:
    """Delete the vault. Glacier refuses while the vault holds archives at its last
    inventory or was written since: that refusal is explained, not just relayed."""
    try:
        glacier.delete_vault(accountId=account_id, vaultName=name)
    except ClientError as exc:
        error = classify(exc, f"vault {name}")
        if "not empty" in str(exc).lower():
            raise TransferError(
                f"vault {name} is not empty, or was written to since its last inventory:"
                " delete its archives, then retry after the next inventory",
                error.code,
            ) from exc
        raise error from exc
    except BotoCoreError as exc:
        raise classify(exc) from exc


def account_of(vault_arn: str) -> str:
    """The account id in a vault ARN (arn:aws:glacier:REGION:ACCOUNT:vaults/NAME)."""
    parts = vault_arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else "-"
