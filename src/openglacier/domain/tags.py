"""Vault tags: AddTagsToVault, RemoveTagsFromVault, ListTagsForVault (spec 2.15-2.17, 6.6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from openglacier.domain.context import Deps
from openglacier.domain.models import Caller
from openglacier.domain.vaults import require_vault
from openglacier.errors import (
    InvalidParameterValueException,
    LimitExceededException,
    MissingParameterValueException,
)
from openglacier.ports import MetadataTx

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


class TagService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def add(self, caller: Caller, vault_name: str, tags: Mapping[str, str] | None) -> None:
        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, vault_name, for_update=True)
            if not tags:
                raise MissingParameterValueException("Required parameter missing: Tags")
            if len(tags) > MAX_TAGS_PER_REQUEST:
                raise InvalidParameterValueException(
                    f"Too many tags in the request: {len(tags)}. At most "
                    f"{MAX_TAGS_PER_REQUEST} tags can be added at a time."
                )
            for key, value in tags.items():
                check_tag(key, value)
            merged = tx.get_tags(vault.id) | dict(tags)
            if len(merged) > MAX_TAGS_PER_VAULT:
                raise LimitExceededException(
                    f"The vault would have {len(merged)} tags; the limit is {MAX_TAGS_PER_VAULT}."
                )
            tx.put_tags(vault.id, dict(tags))

        await self.deps.in_tx(run)

    async def remove(self, caller: Caller, vault_name: str, keys: Sequence[str] | None) -> None:
        def run(tx: MetadataTx) -> None:
            vault = require_vault(self.deps, tx, caller, vault_name, for_update=True)
            if not keys:
                raise MissingParameterValueException("Required parameter missing: TagKeys")
            if len(keys) > MAX_TAGS_PER_REQUEST:
                raise InvalidParameterValueException(
                    f"Too many tag keys in the request: {len(keys)}. At most "
                    f"{MAX_TAGS_PER_REQUEST} tags can be removed at a time."
                )
            tx.delete_tags(vault.id, list(keys))

        await self.deps.in_tx(run)

    async def list(self, caller: Caller, vault_name: str) -> dict[str, str]:
        def run(tx: MetadataTx) -> dict[str, str]:
            return tx.get_tags(require_vault(self.deps, tx, caller, vault_name).id)

        return await self.deps.in_tx(run)
