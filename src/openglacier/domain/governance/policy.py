"""The IAM policy language as Glacier vault access and vault lock policies use it (spec 6.1-6.3).

Pure: no I/O, no clock. ``parse_policy`` validates the JSON string stored by
SetVaultAccessPolicy / InitiateVaultLock (the 20 KB limit is the caller's job);
``evaluate`` decides one policy for one request; ``authorize`` combines a vault's policies
with the owner rule of spec 6.3 [R].

Decisions taken where IAM leaves room or a local server differs (see also
conditions.py for the condition operator rules):

- ``Version`` may be ``2012-10-17`` or ``2008-10-17``; absent means ``2008-10-17``.
  Policy variables (``${...}``) are not substituted: under ``2012-10-17`` a value
  containing ``${`` is rejected with PolicyError (a silently literal variable could make a
  Deny never match); under ``2008-10-17`` they are literal text, as in IAM.
- Every statement needs ``Principal`` or ``NotPrincipal`` (resource policy). Principal
  forms: ``"*"``, ``{"AWS": "*" | "<12 digits>" | "arn:aws:iam::<acct>:root" |
  "arn:aws:iam::<acct>:user/..." | role / sts ARNs | list}``. An account id or ``:root``
  ARN matches every principal of that account; any other ARN matches only itself.
  ``Service``/``Federated``/``CanonicalUser`` entries are accepted but match nobody here.
  Wildcards inside a principal other than a lone ``"*"`` are rejected.
- Actions are ``service:pattern`` or ``"*"``; matched case-insensitively with ``*``/``?``.
  Resources are ``"*"`` or ``arn:`` strings with at least six colon-separated fields,
  matched case-sensitively with ``*``/``?`` over the whole ARN string.
- Condition key names are case-insensitive (also in ``RequestContext.keys``); condition
  operator names are case-sensitive, as written by AWS.
- Duplicate JSON object members anywhere, unknown members, duplicate ``Sid``s, a
  non-string ``Sid``, empty lists and unknown operators are PolicyError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from openglacier.domain.governance.conditions import (
    ConditionClause,
    ConditionValueError,
    clause_holds,
    parse_values,
    split_operator,
    wildcard_regex,
)

__all__ = [
    "Decision",
    "Policy",
    "PolicyError",
    "RequestContext",
    "Statement",
    "authorize",
    "deny_message",
    "evaluate",
    "parse_policy",
]

VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_MEMBERS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_MEMBERS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_PRINCIPAL_TYPES = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})
_ACTION_RE = re.compile(r"[a-z0-9-]+:[A-Za-z0-9*?]+", re.IGNORECASE)
_ACCOUNT_RE = re.compile(r"\d{12}")
_ROOT_RE = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):root")
_PRINCIPAL_ARN_RE = re.compile(r"arn:aws[a-z-]*:(iam|sts)::\d{12}:\S+")


class PolicyError(ValueError):
    """A malformed policy document; the message names the offending member."""


class Decision(Enum):
    ALLOW = "Allow"
    DENY = "Deny"
    NOT_APPLICABLE = "NotApplicable"


@dataclass(frozen=True)
class RequestContext:
    action: str
    resource: str
    principal_account: str
    principal_arn: str
    keys: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Principals:
    """``Principal``/``NotPrincipal``: ``anyone`` for ``*``, else accounts and exact ARNs."""

    anyone: bool
    accounts: frozenset[str]
    arns: frozenset[str]

    def matches(self, request: RequestContext) -> bool:
        return (
            self.anyone
            or request.principal_account in self.accounts
            or request.principal_arn in self.arns
        )


@dataclass(frozen=True)
class Statement:
    sid: str | None
    effect: Decision
    principals: Principals
    not_principal: bool
    actions: tuple[re.Pattern[str], ...]
    not_action: bool
    resources: tuple[re.Pattern[str], ...]
    not_resource: bool
    conditions: tuple[ConditionClause, ...]

    def applies(self, request: RequestContext, keys: Mapping[str, Any]) -> bool:
        if self.principals.matches(request) == self.not_principal:
            return False
        action_hit = any(p.fullmatch(request.action) for p in self.actions)
        if action_hit == self.not_action:
            return False
        resource_hit = any(p.fullmatch(request.resource) for p in self.resources)
        if resource_hit == self.not_resource:
            return False
        return all(clause_holds(c, keys) for c in self.conditions)


@dataclass(frozen=True)
class Policy:
    version: str
    id: str | None
    statements: tuple[Statement, ...]


# ---------------------------------------------------------------------------------------
# Parsing


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise PolicyError(f"duplicate member {key!r}")
        result[key] = value
    return result


def parse_policy(text: str) -> Policy:
    """Parse and validate a policy document; raise PolicyError naming what is wrong."""
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates)
    except PolicyError:
        raise
    except (ValueError, RecursionError) as exc:
        raise PolicyError(f"policy is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PolicyError("policy must be a JSON object")
    _check_members(doc, _TOP_MEMBERS, "policy")
    version = doc.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise PolicyError(f"Version: unsupported value {version!r}")
    policy_id = doc.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise PolicyError("Id: must be a string")
    if "Statement" not in doc:
        raise PolicyError("Statement: missing")
    raw_statements = doc["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise PolicyError("Statement: must be an object or a non-empty list")
    statements = tuple(
        _parse_statement(raw, f"Statement[{i}]", version) for i, raw in enumerate(raw_statements)
    )
    sids = [s.sid for s in statements if s.sid]
    duplicates = sorted({sid for sid in sids if sids.count(sid) > 1})
    if duplicates:
        raise PolicyError(f"Sid: duplicate statement ids {duplicates}")
    return Policy(version=version, id=policy_id, statements=statements)


def _check_members(obj: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise PolicyError(f"{where}: unknown member(s) {unknown}")


def _exactly_one(raw: Mapping[str, Any], name: str, where: str) -> str:
    present = [key for key in (name, f"Not{name}") if key in raw]
    if len(present) > 1:
        raise PolicyError(f"{where}: {name} and Not{name} are mutually exclusive")
    if not present:
        raise PolicyError(f"{where}: one of {name} / Not{name} is required")
    return present[0]


def _string_list(value: Any, where: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise PolicyError(f"{where}: must not be an empty list")
    for item in items:
        if not isinstance(item, str) or not item:
            raise PolicyError(f"{where}: {item!r} is not a non-empty string")
    return items


def _check_variables(text: str, where: str, version: str) -> None:
    if version == "2012-10-17" and "${" in text:
        raise PolicyError(f"{where}: policy variables are not supported ({text!r})")


def _parse_statement(raw: Any, where: str, version: str) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: must be a JSON object")
    _check_members(raw, _STATEMENT_MEMBERS, where)
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{where}.Sid: must be a string")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{where}.Effect: must be 'Allow' or 'Deny', got {effect!r}")
    principal_key = _exactly_one(raw, "Principal", where)
    action_key = _exactly_one(raw, "Action", where)
    resource_key = _exactly_one(raw, "Resource", where)
    return Statement(
        sid=sid,
        effect=Decision(effect),
        principals=_parse_principal(raw[principal_key], f"{where}.{principal_key}"),
        not_principal=principal_key == "NotPrincipal",
        actions=_parse_actions(raw[action_key], f"{where}.{action_key}"),
        not_action=action_key == "NotAction",
        resources=_parse_resources(raw[resource_key], f"{where}.{resource_key}", version),
        not_resource=resource_key == "NotResource",
        conditions=_parse_conditions(raw.get("Condition", {}), f"{where}.Condition", version),
    )


def _parse_principal(value: Any, where: str) -> Principals:
    if value == "*":
        return Principals(anyone=True, accounts=frozenset(), arns=frozenset())
    if not isinstance(value, dict) or not value:
        raise PolicyError(f'{where}: must be "*" or a non-empty object such as {{"AWS": ...}}')
    _check_members(value, _PRINCIPAL_TYPES, where)
    anyone = False
    accounts: set[str] = set()
    arns: set[str] = set()
    for kind, entries in value.items():
        for entry in _string_list(entries, f"{where}.{kind}"):
            if kind != "AWS":
                continue  # service / federated principals never call this server
            if entry == "*":
                anyone = True
            elif _ACCOUNT_RE.fullmatch(entry):
                accounts.add(entry)
            elif root := _ROOT_RE.fullmatch(entry):
                accounts.add(root.group(1))
            elif _PRINCIPAL_ARN_RE.fullmatch(entry) and "*" not in entry and "?" not in entry:
                arns.add(entry)
            else:
                raise PolicyError(f"{where}.AWS: invalid principal {entry!r}")
    return Principals(anyone=anyone, accounts=frozenset(accounts), arns=frozenset(arns))


def _parse_actions(value: Any, where: str) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for action in _string_list(value, where):
        if action != "*" and not _ACTION_RE.fullmatch(action):
            raise PolicyError(f"{where}: invalid action {action!r} (expected 'service:Action')")
        patterns.append(wildcard_regex(action, ignore_case=True))
    return tuple(patterns)


def _parse_resources(value: Any, where: str, version: str) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for resource in _string_list(value, where):
        if resource != "*" and not (
            resource.startswith("arn:") and len(resource.split(":", 5)) == 6
        ):
            raise PolicyError(f"{where}: invalid resource {resource!r} (expected an ARN or '*')")
        _check_variables(resource, where, version)
        patterns.append(wildcard_regex(resource))
    return tuple(patterns)


def _parse_conditions(value: Any, where: str, version: str) -> tuple[ConditionClause, ...]:
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: must be a JSON object")
    clauses: list[ConditionClause] = []
    for op_name, block in value.items():
        try:
            spec, qualifier, if_exists = split_operator(op_name)
        except ConditionValueError as exc:
            raise PolicyError(f"{where}: {exc}") from None
        if not isinstance(block, dict) or not block:
            raise PolicyError(f"{where}.{op_name}: must be a non-empty object of key: value(s)")
        seen: set[str] = set()
        for key, raw_values in block.items():
            if not isinstance(key, str) or ":" not in key or key.lower() in seen:
                raise PolicyError(f"{where}.{op_name}: invalid or repeated condition key {key!r}")
            seen.add(key.lower())
            for text in raw_values if isinstance(raw_values, list) else [raw_values]:
                if isinstance(text, str):
                    _check_variables(text, f"{where}.{op_name}.{key}", version)
            try:
                values = parse_values(op_name, spec, raw_values)
            except ConditionValueError as exc:
                raise PolicyError(f"{where}.{op_name}.{key}: {exc}") from None
            clauses.append(
                ConditionClause(op_name, spec, qualifier, if_exists, key.lower(), values)
            )
    return tuple(clauses)


# ---------------------------------------------------------------------------------------
# Evaluation


def evaluate(policy: Policy, request: RequestContext) -> Decision:
    """One policy's verdict: any applicable Deny wins, else any applicable Allow."""
    keys = {str(k).lower(): v for k, v in request.keys.items()}
    decision = Decision.NOT_APPLICABLE
    for statement in policy.statements:
        if statement.applies(request, keys):
            if statement.effect is Decision.DENY:
                return Decision.DENY
            decision = Decision.ALLOW
    return decision


def authorize(owner_account: str, policies: Sequence[Policy], request: RequestContext) -> Decision:
    """Spec 6.3 [R]: explicit Deny anywhere, else owner allowed, else an explicit Allow."""
    verdicts = [evaluate(policy, request) for policy in policies]
    if Decision.DENY in verdicts:
        return Decision.DENY
    if request.principal_account == owner_account or Decision.ALLOW in verdicts:
        return Decision.ALLOW
    return Decision.DENY


def deny_message(request: RequestContext, explicit: bool) -> str:
    """AWS's AccessDeniedException wording (spec 6.3 [R] step 1)."""
    message = (
        f"User: {request.principal_arn} is not authorized to perform: {request.action} "
        f"on resource: {request.resource}"
    )
    return message + " with an explicit deny" if explicit else message
