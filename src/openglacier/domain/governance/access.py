"""Authorization of vault-scoped requests by vault policies (spec 1.3, 6.1-6.3).

Every request that names a vault passes through `AccessGuard.check` before its
handler runs. The guard reads the vault's access policy and its lock policy (when
InProgress or Locked) and decides with the IAM evaluator of `policy.py`:

1. an explicit Deny in either policy -> 403 with AWS's "explicit deny" wording;
2. otherwise the vault's owner account is allowed;
3. another account needs an explicit Allow in the access policy (a lock policy
   restricts; it never grants).

Decisions taken (docs/decisions.md):
- The check runs after authentication, route and account resolution, and before
  the operation's own validation, so a denied caller learns nothing about the
  request's other faults. The real order is undocumented (spec 1.8 [R]).
- A vault that does not exist gives the owner the usual 404 (from the handler),
  and any other account a 403: there is no policy to grant it anything, and a 404
  would reveal which vault names another account uses.
- The owner may always Get/Set/DeleteVaultAccessPolicy whatever the access
  policy says (only a lock policy can deny those to the owner).
- Condition keys are computed only when a policy exists, so requests to vaults
  without policies cost one indexed read (vault, access policy and lock are
  one joined statement).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from openglacier.domain.context import Deps
from openglacier.domain.governance.policy import (
    Decision,
    Policy,
    RequestContext,
    deny_message,
    evaluate,
)
from openglacier.domain.governance.vault_policies import compiled_policy
from openglacier.domain.validation import is_valid_vault_name
from openglacier.errors import AccessDeniedException
from openglacier.ports import MetadataTx
from openglacier.records import Caller, Vault, VaultGovernance

DAY_SECONDS = 86_400
NO_GOVERNANCE = VaultGovernance(access_policy=None, lock=None)
# The owner account (keys are account roots here) may always read, replace or
# delete the access policy, as an AWS root user may with an S3 bucket policy;
# otherwise one careless Deny would brick a vault. A lock policy still applies.
POLICY_ADMIN_OPERATIONS = frozenset(
    {"GetVaultAccessPolicy", "SetVaultAccessPolicy", "DeleteVaultAccessPolicy"}
)
# Spec 6.3: the actions for which glacier:ArchiveAgeInDays is defined.
ARCHIVE_AGE_ACTIONS = frozenset({"DeleteArchive", "InitiateJob"})


@dataclass(frozen=True)
class RequestFacts:
    """What the API layer knows about a request that policy conditions may test."""

    source_ip: str | None = None
    secure_transport: bool = False
    archive_id: str | None = None  # DeleteArchive's label, InitiateJob's ArchiveId
    request_tags: Mapping[str, str] = field(default_factory=dict)  # AddTagsToVault
    tag_keys: Sequence[str] = ()  # AddTagsToVault / RemoveTagsFromVault


@dataclass(frozen=True)
class _Documents:
    access: Policy | None
    lock: Policy | None


def principal_arn(deps: Deps, account_id: str) -> str:
    """Keys belong to accounts, not IAM users: the principal is the account root."""
    return f"arn:{deps.partition}:iam::{account_id}:root"


class AccessGuard:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def check(
        self,
        principal: Caller,
        owner_account: str,
        vault_name: str,
        operation: str,
        facts: Callable[[], RequestFacts],
    ) -> Vault | None:
        """Raise AccessDeniedException unless the vault's policies let `principal` act.

        `facts` is called only when a policy has to be evaluated: most vaults have
        none, and their requests should not pay for reading the body twice.
        Returns the owner's vault as this check read it (None: no such vault), so
        an operation whose answer is that row need not read it again.
        """
        return await self.deps.in_read_tx(
            partial(
                self._check,
                principal=principal,
                owner_account=owner_account,
                vault_name=vault_name,
                operation=operation,
                facts=facts,
            )
        )

    def _check(
        self,
        tx: MetadataTx,
        *,
        principal: Caller,
        owner_account: str,
        vault_name: str,
        operation: str,
        facts: Callable[[], RequestFacts],
    ) -> Vault | None:
        foreign = principal.account_id != owner_account
        arn = self.deps.vault_arn(principal.region, owner_account, vault_name)
        governed = None
        if is_valid_vault_name(vault_name):
            governed = tx.get_governed_vault(owner_account, principal.region, vault_name)
        request = RequestContext(
            action=f"glacier:{operation}",
            resource=arn,
            principal_account=principal.account_id,
            principal_arn=principal_arn(self.deps, principal.account_id),
        )
        if governed is None:
            if foreign:
                raise AccessDeniedException(deny_message(request, explicit=False))
            return None  # the handler answers the spec's 404
        vault = governed.vault
        if governed.governance == NO_GOVERNANCE and not foreign:
            return vault  # the common case: the owner, no policies
        now = self.deps.clock.now()
        documents = _documents(governed.governance, now)
        if documents.access is None and documents.lock is None and not foreign:
            return vault
        request = replace(
            request,
            keys=self._keys(
                tx, vault, operation=operation, facts=facts(), principal=principal, now=now
            ),
        )
        lock_verdict = _verdict(documents.lock, request)
        access_verdict = _verdict(documents.access, request)
        if not foreign and operation in POLICY_ADMIN_OPERATIONS:
            access_verdict = Decision.NOT_APPLICABLE  # the owner can always repair it
        if Decision.DENY in (lock_verdict, access_verdict):
            raise AccessDeniedException(deny_message(request, explicit=True))
        if foreign and access_verdict is not Decision.ALLOW:
            raise AccessDeniedException(deny_message(request, explicit=False))
        return vault

    def _keys(
        self,
        tx: MetadataTx,
        vault: Vault,
        *,
        operation: str,
        facts: RequestFacts,
        principal: Caller,
        now: datetime,
    ) -> dict[str, Any]:
        """The condition keys of spec 6.3 for this request (names are case-insensitive)."""
        keys: dict[str, Any] = {
            "aws:CurrentTime": now,
            "aws:EpochTime": int(now.timestamp()),
            "aws:SecureTransport": facts.secure_transport,
            "aws:MultiFactorAuthPresent": False,  # long-term keys never carry MFA
            "aws:PrincipalAccount": principal.account_id,
            "aws:PrincipalArn": principal_arn(self.deps, principal.account_id),
            "aws:PrincipalType": "Account",
        }
        if facts.source_ip:
            keys["aws:SourceIp"] = facts.source_ip
        for key, value in tx.get_tags(vault.id).items():
            keys[f"glacier:ResourceTag/{key}"] = value
            keys[f"aws:ResourceTag/{key}"] = value
        for key, value in facts.request_tags.items():
            keys[f"aws:RequestTag/{key}"] = value
        if facts.tag_keys:
            keys["aws:TagKeys"] = list(facts.tag_keys)
        age = self._archive_age(tx, vault, operation, facts.archive_id, now)
        if age is not None:
            keys["glacier:ArchiveAgeInDays"] = age
        return keys

    def _archive_age(
        self, tx: MetadataTx, vault: Vault, operation: str, archive_id: str | None, now: datetime
    ) -> int | None:
        """floor((now - CreationDate) / 1 day), for an archive of this vault (spec 6.3)."""
        if operation not in ARCHIVE_AGE_ACTIONS or not archive_id:
            return None
        archive = tx.get_archive(archive_id)
        if archive is None or archive.vault_id != vault.id or archive.removed_seq is not None:
            return None  # the operation itself answers 404 / 400
        return int((now - archive.created_at).total_seconds() // DAY_SECONDS)


def _documents(governance: VaultGovernance, now: datetime) -> _Documents:
    lock = governance.lock
    return _Documents(
        access=compiled_policy(governance.access_policy) if governance.access_policy else None,
        lock=compiled_policy(lock.policy) if lock is not None and lock.in_force(now) else None,
    )


def _verdict(policy: Policy | None, request: RequestContext) -> Decision:
    return Decision.NOT_APPLICABLE if policy is None else evaluate(policy, request)
