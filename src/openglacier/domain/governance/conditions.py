"""IAM ``Condition`` operators: parsing policy values and matching request context values.

Semantics (AWS IAM User Guide, "Condition operators" and "Multivalued context keys"):

- Several values for one key inside one operator are OR-ed for positive operators. For
  negated operators (``StringNotEquals``, ``StringNotLike``, ``NumericNotEquals``,
  ``DateNotEquals``, ``NotIpAddress``, ...) the condition holds only when the request value
  matches *none* of the listed values (an AND of the negations).
- A key absent from the request context makes a positive operator false and a negated
  operator **true** (AWS: "If the policy condition requires that the key is *not* matched
  ... and the right key is not present, the condition is true"). This deliberately
  follows AWS rather than the shorter wording of spec 6.3 [R].
- ``...IfExists``: an absent key makes the condition true; a present key is checked by
  the base operator. ``Null`` cannot take ``IfExists`` or a set qualifier.
- ``Null``: ``"true"`` holds iff the key is absent; ``"false"`` iff it is present. A key
  whose request value is ``None`` or an empty collection counts as absent.
- ``ForAnyValue:`` holds when at least one request value satisfies the operator (absent
  key or empty set: false). ``ForAllValues:`` holds when every request value satisfies it
  (absent key or empty set: true). Without a qualifier a multi-valued request key is
  treated like ``ForAnyValue`` for positive operators and requires no value to match for
  negated ones.
- A request value that cannot be read as the operator's type (e.g. ``"abc"`` for a numeric
  operator) matches nothing.
- Strings are case-sensitive except the ``IgnoreCase`` operators; ``StringLike`` knows
  ``*`` (any run) and ``?`` (one character). Numbers are compared as decimals; dates are
  ISO 8601 or epoch seconds (naive values are UTC); ``Bool`` compares ``true``/``false``
  case-insensitively; IP operators take addresses or CIDR blocks (IPv4 and IPv6).
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConditionValueError(ValueError):
    """A policy value is not valid for its operator (re-raised by policy.py as PolicyError)."""


class Family(Enum):
    STRING = "string"
    NUMERIC = "numeric"
    DATE = "date"
    BOOL = "bool"
    IP = "ip"
    NULL = "null"


class SetQualifier(Enum):
    NONE = ""
    FOR_ANY_VALUE = "ForAnyValue"
    FOR_ALL_VALUES = "ForAllValues"


@dataclass(frozen=True)
class OperatorSpec:
    family: Family
    negated: bool
    compare: str  # "eq", "eq_ci", "like", "lt", "le", "gt", "ge", "in"


_OPERATORS: dict[str, OperatorSpec] = {
    "StringEquals": OperatorSpec(Family.STRING, False, "eq"),
    "StringNotEquals": OperatorSpec(Family.STRING, True, "eq"),
    "StringEqualsIgnoreCase": OperatorSpec(Family.STRING, False, "eq_ci"),
    "StringNotEqualsIgnoreCase": OperatorSpec(Family.STRING, True, "eq_ci"),
    "StringLike": OperatorSpec(Family.STRING, False, "like"),
    "StringNotLike": OperatorSpec(Family.STRING, True, "like"),
    "NumericEquals": OperatorSpec(Family.NUMERIC, False, "eq"),
    "NumericNotEquals": OperatorSpec(Family.NUMERIC, True, "eq"),
    "NumericLessThan": OperatorSpec(Family.NUMERIC, False, "lt"),
    "NumericLessThanEquals": OperatorSpec(Family.NUMERIC, False, "le"),
    "NumericGreaterThan": OperatorSpec(Family.NUMERIC, False, "gt"),
    "NumericGreaterThanEquals": OperatorSpec(Family.NUMERIC, False, "ge"),
    "DateEquals": OperatorSpec(Family.DATE, False, "eq"),
    "DateNotEquals": OperatorSpec(Family.DATE, True, "eq"),
    "DateLessThan": OperatorSpec(Family.DATE, False, "lt"),
    "DateLessThanEquals": OperatorSpec(Family.DATE, False, "le"),
    "DateGreaterThan": OperatorSpec(Family.DATE, False, "gt"),
    "DateGreaterThanEquals": OperatorSpec(Family.DATE, False, "ge"),
    "Bool": OperatorSpec(Family.BOOL, False, "eq"),
    "IpAddress": OperatorSpec(Family.IP, False, "in"),
    "NotIpAddress": OperatorSpec(Family.IP, True, "in"),
    "Null": OperatorSpec(Family.NULL, False, "eq"),
}

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}

_IF_EXISTS = "IfExists"


@dataclass(frozen=True)
class ConditionClause:
    """One ``operator: {key: values}`` pair, already parsed; ``key`` is lower-cased."""

    operator: str
    spec: OperatorSpec
    qualifier: SetQualifier
    if_exists: bool
    key: str
    values: tuple[Any, ...]


def split_operator(name: str) -> tuple[OperatorSpec, SetQualifier, bool]:
    """Resolve ``[ForAnyValue:|ForAllValues:]Base[IfExists]``; raise for anything unknown."""
    qualifier = SetQualifier.NONE
    base = name
    if ":" in name:
        prefix, _, base = name.partition(":")
        try:
            qualifier = SetQualifier(prefix)
        except ValueError:
            raise ConditionValueError(f"unknown condition set operator {prefix!r}") from None
        if qualifier is SetQualifier.NONE:
            raise ConditionValueError(f"unknown condition operator {name!r}")
    if_exists = base.endswith(_IF_EXISTS) and base not in _OPERATORS
    if if_exists:
        base = base[: -len(_IF_EXISTS)]
    spec = _OPERATORS.get(base)
    if spec is None:
        raise ConditionValueError(f"unknown condition operator {name!r}")
    if spec.family is Family.NULL and (if_exists or qualifier is not SetQualifier.NONE):
        raise ConditionValueError(f"condition operator {name!r} is not allowed")
    return spec, qualifier, if_exists


# ---------------------------------------------------------------------------------------
# Reading values (policy side raises; request side returns None for "unreadable").


def _as_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return None


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return result if result.is_finite() else None


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    number = _as_decimal(value)
    if number is not None:
        try:
            return datetime.fromtimestamp(float(number), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _as_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _policy_network(value: Any) -> IpNetwork | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None


_POLICY_READERS: dict[Family, Callable[[Any], Any]] = {
    Family.STRING: _as_text,
    Family.NUMERIC: _as_decimal,
    Family.DATE: _as_datetime,
    Family.BOOL: _as_bool,
    Family.IP: _policy_network,
    Family.NULL: _as_bool,
}

_REQUEST_READERS: dict[Family, Callable[[Any], Any]] = {
    Family.STRING: _as_text,
    Family.NUMERIC: _as_decimal,
    Family.DATE: _as_datetime,
    Family.BOOL: _as_bool,
    Family.IP: _as_ip,
}


def wildcard_regex(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """Compile an IAM glob (``*`` any run, ``?`` one character, nothing else special)."""
    parts = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern]
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(parts), flags)


def parse_values(operator_name: str, spec: OperatorSpec, raw: Any) -> tuple[Any, ...]:
    """Validate the policy-side values of one key: a scalar or a non-empty list of scalars."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise ConditionValueError(f"{operator_name}: empty value list")
    parsed: list[Any] = []
    for item in items:
        if isinstance(item, dict | list) or item is None:
            raise ConditionValueError(f"{operator_name}: value {item!r} is not a scalar")
        value = _POLICY_READERS[spec.family](item)
        if value is None:
            raise ConditionValueError(
                f"{operator_name}: {item!r} is not a valid {spec.family.value} value"
            )
        if spec.compare == "like":
            value = wildcard_regex(value)
        parsed.append(value)
    return tuple(parsed)


# ---------------------------------------------------------------------------------------
# Evaluation.


def _matches_one(spec: OperatorSpec, request_value: Any, policy_value: Any) -> bool:
    if spec.compare == "like":
        return bool(policy_value.fullmatch(request_value))
    if spec.compare == "eq_ci":
        return bool(request_value.casefold() == policy_value.casefold())
    if spec.compare == "in":
        return bool(request_value.version == policy_value.version and request_value in policy_value)
    return _ORDER[spec.compare](request_value, policy_value)


def _satisfies(clause: ConditionClause, raw_value: Any) -> bool:
    """Does one request value satisfy the clause (negation included)?"""
    value = _REQUEST_READERS[clause.spec.family](raw_value)
    hit = value is not None and any(_matches_one(clause.spec, value, p) for p in clause.values)
    return hit != clause.spec.negated


def _request_values(keys: Mapping[str, Any], key: str) -> tuple[Any, ...] | None:
    """The request's values for a (lower-cased) key, or None when it is absent."""
    if key not in keys:
        return None
    raw = keys[key]
    if raw is None:
        return None
    values = tuple(raw) if isinstance(raw, list | tuple | set | frozenset) else (raw,)
    return values or None


def _holds_when_absent(clause: ConditionClause) -> bool:
    if clause.if_exists or clause.qualifier is SetQualifier.FOR_ALL_VALUES:
        return True
    if clause.qualifier is SetQualifier.FOR_ANY_VALUE:
        return False
    return clause.spec.negated


def clause_holds(clause: ConditionClause, keys: Mapping[str, Any]) -> bool:
    """Evaluate one clause against request keys already lower-cased by the caller."""
    values = _request_values(keys, clause.key)
    if clause.spec.family is Family.NULL:
        return (values is None) in clause.values
    if values is None:
        return _holds_when_absent(clause)
    if clause.qualifier is SetQualifier.FOR_ALL_VALUES:
        return all(_satisfies(clause, v) for v in values)
    if clause.qualifier is SetQualifier.FOR_ANY_VALUE or not clause.spec.negated:
        return any(_satisfies(clause, v) for v in values)
    return all(_satisfies(clause, v) for v in values)
