"""Vault tags: AddTagsToVault, RemoveTagsFromVault, ListTagsForVault (spec 2.15-2.17, 6.6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from openglacier.domain.context import Deps
from openglacier.domain.vaults import require_vault
from openglacier.errors import (
    InvalidParameterValueException,
    LimitExceededException,
    MissingParameterValueException,
)
from openglacier.ports import MetadataTx
from openglacier.records import Caller

MAX_TAGS_PER_VAULT = 50  # spec 9 #3: the guide's 50, not the model's 10
MAX_TAGS_PER_REQUEST = 10
MAX_KEY_LEN = 128
MAX_VALUE_LEN = 255
_EXTRA_CHARS = frozenset(" _./=+-@:")


def _allowed(text: str) -> bool:
    # Unicode letters, digits, spaces and _ . / = + - @ (spec 2.15); ':' too, since
    # the guide forbids only the "aws:" prefix, which implies ':' is otherwise legal.
    return all(c.isalnum() or c in _EXTRA_CHARS or c.isspace() for c in text)


def check_tag(key: str, value: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LEN or not _allowed(key):
        raise InvalidParameterValueException(f"Invalid tag key: {key}")
    if key.lower().startswith("aws:"):
        raise InvalidParameterValueException(
            f"Invalid tag key: {key}. Tag keys must not start with 'aws:'"
        )
    if len(value) > MAX_VALUE_LEN or not _allowed(value):
        raise InvalidParameterValueException(f"Invalid tag value for key {key}: {value}")


def check_request_size(member: str, count: int) -> None:
    """Spec 2.15/2.16: one to ten entries per request."""
    if count == 0:
        raise MissingParameterValueException(f"Required parameter missing: {member}")
    if count > MAX_TAGS_PER_REQUEST:
        raise InvalidParameterValueException(
            f"Too many entries in {member}: {count}. A request may carry at most "
            f"{MAX_TAGS_PER_REQUEST}."
        )


class TagService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def add(self, caller: Caller, vault_name: str, tags: Mapping[str, str] | None) -> None:
        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, vault_name, for_update=True)
            check_request_size("Tags", len(tags or {}))
            tags_to_add = dict(tags or {})
            for key, value in tags_to_add.items():
                check_tag(key, value)
            merged = tx.get_tags(vault.id) | tags_to_add
            if len(merged) > MAX_TAGS_PER_VAULT:
                raise LimitExceededException(
                    f"The vault would have {len(merged)} tags; the limit is {MAX_TAGS_PER_VAULT}."
                )
            tx.put_tags(vault.id, tags_to_add)

        await self.deps.in_tx(run)

    async def remove(self, caller: Caller, vault_name: str, keys: Sequence[str] | None) -> None:
        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, vault_name, for_update=True)
            check_request_size("TagKeys", len(keys or ()))
            tx.delete_tags(vault.id, list(keys or ()))

        await self.deps.in_tx(run)

    async def list(self, caller: Caller, vault_name: str) -> dict[str, str]:
        def run(tx: MetadataTx) -> dict[str, str]:
            return tx.get_tags(require_vault(self.deps, tx, caller, vault_name).id)

        return await self.deps.in_read_tx(run)
