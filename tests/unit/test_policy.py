"""IAM policy documents (spec 6.1-6.3): validation, authorize(), deny messages, properties.

Evaluation tables live in test_policy_cases.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_policy_cases import ALL_VAULTS, OTHER, OWNER, VAULT, doc, req, stmt

from openglacier.domain.governance.policy import (
    Decision,
    Policy,
    PolicyError,
    RequestContext,
    authorize,
    deny_message,
    evaluate,
    parse_policy,
)

# ---------------------------------------------------------------------------------------
# Malformed documents: (id, text, fragment expected in the PolicyError message)

GOOD = stmt()


def _with(**changes: Any) -> str:
    """A valid one-statement policy with some statement members replaced or removed."""
    statement = dict(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            statement.pop(key, None)
        else:
            statement[key] = value
    return doc(statement)


_DROP = object()

MALFORMED: list[tuple[str, str, str]] = [
    ("not-json", "{not json", "not valid JSON"),
    ("empty-string", "", "not valid JSON"),
    ("json-list", "[]", "JSON object"),
    ("json-string", '"policy"', "JSON object"),
    ("json-null", "null", "JSON object"),
    ("bad-version", json.dumps({"Version": "2020-01-01", "Statement": GOOD}), "Version"),
    ("version-number", json.dumps({"Version": 2012, "Statement": GOOD}), "Version"),
    ("no-statement", json.dumps({"Version": "2012-10-17"}), "Statement: missing"),
    ("statement-empty-list", json.dumps({"Statement": []}), "non-empty"),
    ("statement-string", json.dumps({"Statement": "Allow"}), "Statement"),
    ("statement-item-string", json.dumps({"Statement": ["Allow"]}), "Statement[0]"),
    ("unknown-top-member", json.dumps({"Statement": GOOD, "Extra": 1}), "Extra"),
    ("lowercase-top-member", json.dumps({"statement": [GOOD]}), "statement"),
    ("id-not-string", json.dumps({"Id": 5, "Statement": GOOD}), "Id"),
    ("duplicate-top-member", '{"Statement": [], "Statement": []}', "duplicate member"),
    ("unknown-statement-member", _with(Foo="bar"), "Foo"),
    ("missing-effect", _with(Effect=_DROP), "Effect"),
    ("effect-lowercase", _with(Effect="allow"), "Effect"),
    ("effect-other", _with(Effect="Permit"), "Effect"),
    ("sid-number", _with(Sid=1), "Sid"),
    ("duplicate-sid", doc(stmt(Sid="a"), stmt(Sid="a")), "duplicate statement ids"),
    ("missing-action", _with(Action=_DROP), "Action"),
    ("action-and-notaction", _with(NotAction="glacier:*"), "mutually exclusive"),
    ("action-no-service", _with(Action="DeleteArchive"), "invalid action"),
    ("action-empty", _with(Action=""), "non-empty string"),
    ("action-empty-list", _with(Action=[]), "empty list"),
    ("action-number", _with(Action=5), "non-empty string"),
    ("action-object", _with(Action={"a": 1}), "non-empty string"),
    ("action-space", _with(Action="glacier:Delete Archive"), "invalid action"),
    ("action-two-colons", _with(Action="glacier::DeleteArchive"), "invalid action"),
    ("missing-resource", _with(Resource=_DROP), "Resource"),
    ("resource-and-notresource", _with(NotResource="*"), "mutually exclusive"),
    ("resource-not-arn", _with(Resource="vaults/examplevault"), "invalid resource"),
    ("resource-short-arn", _with(Resource="arn:aws:glacier:*"), "invalid resource"),
    ("resource-variable", _with(Resource=f"{ALL_VAULTS[:-1]}${{aws:username}}"), "variables"),
    ("missing-principal", _with(Principal=_DROP), "Principal"),
    ("principal-and-notprincipal", _with(NotPrincipal="*"), "mutually exclusive"),
    ("principal-string-account", _with(Principal=OTHER), "Principal"),
    ("principal-empty-object", _with(Principal={}), "Principal"),
    ("principal-unknown-type", _with(Principal={"User": OTHER}), "User"),
    ("principal-bad-account", _with(Principal={"AWS": "12345"}), "invalid principal"),
    (
        "principal-wildcard-arn",
        _with(Principal={"AWS": "arn:aws:iam::*:root"}),
        "invalid principal",
    ),
    (
        "principal-user-wildcard",
        _with(Principal={"AWS": f"arn:aws:iam::{OTHER}:user/*"}),
        "invalid principal",
    ),
    ("principal-empty-list", _with(Principal={"AWS": []}), "empty list"),
    ("condition-list", _with(Condition=[]), "Condition"),
    (
        "condition-unknown-operator",
        _with(Condition={"StringMatches": {"aws:x": "y"}}),
        "unknown condition operator",
    ),
    (
        "condition-operator-case",
        _with(Condition={"stringequals": {"aws:x": "y"}}),
        "unknown condition operator",
    ),
    (
        "condition-unknown-set",
        _with(Condition={"ForSomeValues:StringEquals": {"aws:x": "y"}}),
        "set operator",
    ),
    ("condition-empty-set-prefix", _with(Condition={":StringEquals": {"aws:x": "y"}}), "unknown"),
    (
        "condition-null-ifexists",
        _with(Condition={"NullIfExists": {"aws:x": "true"}}),
        "not allowed",
    ),
    ("condition-null-set", _with(Condition={"ForAnyValue:Null": {"aws:x": "true"}}), "not allowed"),
    (
        "condition-double-ifexists",
        _with(Condition={"StringEqualsIfExistsIfExists": {"aws:x": "y"}}),
        "unknown",
    ),
    ("condition-block-string", _with(Condition={"StringEquals": "x"}), "non-empty object"),
    ("condition-block-empty", _with(Condition={"StringEquals": {}}), "non-empty object"),
    ("condition-key-no-colon", _with(Condition={"StringEquals": {"env": "x"}}), "condition key"),
    (
        "condition-key-repeated-case",
        _with(Condition={"StringEquals": {"aws:x": "1", "AWS:X": "2"}}),
        "repeated",
    ),
    (
        "condition-empty-values",
        _with(Condition={"StringEquals": {"aws:x": []}}),
        "empty value list",
    ),
    ("condition-null-value", _with(Condition={"StringEquals": {"aws:x": None}}), "not a scalar"),
    (
        "condition-nested-list",
        _with(Condition={"StringEquals": {"aws:x": [["a"]]}}),
        "not a scalar",
    ),
    (
        "numeric-not-number",
        _with(Condition={"NumericLessThan": {"glacier:ArchiveAgeInDays": "a year"}}),
        "numeric",
    ),
    (
        "numeric-bool",
        _with(Condition={"NumericEquals": {"glacier:ArchiveAgeInDays": True}}),
        "numeric",
    ),
    (
        "numeric-nan",
        _with(Condition={"NumericEquals": {"glacier:ArchiveAgeInDays": "NaN"}}),
        "numeric",
    ),
    ("date-garbage", _with(Condition={"DateGreaterThan": {"aws:CurrentTime": "tomorrow"}}), "date"),
    ("bool-yes", _with(Condition={"Bool": {"aws:SecureTransport": "yes"}}), "bool"),
    ("bool-number", _with(Condition={"Bool": {"aws:SecureTransport": 1}}), "bool"),
    ("ip-garbage", _with(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}), "ip"),
    ("ip-hostname", _with(Condition={"NotIpAddress": {"aws:SourceIp": "example.com"}}), "ip"),
    ("null-garbage", _with(Condition={"Null": {"aws:x": "maybe"}}), "null"),
    (
        "condition-variable",
        _with(Condition={"StringEquals": {"aws:x": "${aws:username}"}}),
        "variables",
    ),
    ("statement-not-object-in-list", json.dumps({"Statement": [GOOD, 3]}), "Statement[1]"),
]


@pytest.mark.parametrize(
    ("text", "fragment"), [pytest.param(*row[1:], id=row[0]) for row in MALFORMED]
)
def test_malformed_policy_is_rejected(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    assert fragment.lower() in str(info.value).lower()


def test_policy_error_is_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


def test_parsed_policy_keeps_version_id_and_statements() -> None:
    text = json.dumps(
        {"Version": "2012-10-17", "Id": "p1", "Statement": [stmt(Sid="a"), stmt(Sid="b")]}
    )
    policy = parse_policy(text)
    assert isinstance(policy, Policy)
    assert (policy.version, policy.id) == ("2012-10-17", "p1")
    assert [s.sid for s in policy.statements] == ["a", "b"]


def test_version_defaults_to_2008() -> None:
    assert parse_policy(json.dumps({"Statement": stmt()})).version == "2008-10-17"


def test_empty_sids_may_repeat() -> None:
    assert len(parse_policy(doc(stmt(Sid=""), stmt(Sid=""))).statements) == 2


# ---------------------------------------------------------------------------------------
# authorize(): spec 6.3 [R]

ALLOW_OTHER = parse_policy(doc(stmt(principal={"AWS": OTHER}, action="glacier:Upload*")))
DENY_DELETE = parse_policy(doc(stmt("Deny", "glacier:DeleteArchive")))
DENY_YOUNG = parse_policy(
    doc(
        stmt(
            "Deny",
            "glacier:DeleteArchive",
            VAULT,
            condition={"NumericLessThan": {"glacier:ArchiveAgeInDays": "365"}},
        )
    )
)

AUTHORIZE: list[tuple[str, list[Policy], RequestContext, Decision]] = [
    ("owner-no-policies", [], req(), Decision.ALLOW),
    ("other-no-policies", [], req(account=OTHER), Decision.DENY),
    ("owner-unrelated-allow", [ALLOW_OTHER], req(), Decision.ALLOW),
    (
        "other-explicit-allow",
        [ALLOW_OTHER],
        req("glacier:UploadArchive", account=OTHER),
        Decision.ALLOW,
    ),
    (
        "other-not-granted-action",
        [ALLOW_OTHER],
        req("glacier:DeleteVault", account=OTHER),
        Decision.DENY,
    ),
    ("owner-explicit-deny", [DENY_DELETE], req(), Decision.DENY),
    ("other-explicit-deny", [DENY_DELETE], req(account=OTHER), Decision.DENY),
    ("owner-deny-other-action", [DENY_DELETE], req("glacier:ListJobs"), Decision.ALLOW),
    (
        "lock-deny-beats-access-allow",
        [DENY_DELETE, parse_policy(doc(stmt()))],
        req(account=OTHER),
        Decision.DENY,
    ),
    (
        "access-allow-plus-lock-na",
        [DENY_YOUNG, ALLOW_OTHER],
        req("glacier:UploadArchive", account=OTHER),
        Decision.ALLOW,
    ),
    (
        "lock-retention-young",
        [DENY_YOUNG],
        req(keys={"glacier:ArchiveAgeInDays": 3}),
        Decision.DENY,
    ),
    (
        "lock-retention-old",
        [DENY_YOUNG],
        req(keys={"glacier:ArchiveAgeInDays": 900}),
        Decision.ALLOW,
    ),
    ("deny-in-second-policy", [ALLOW_OTHER, DENY_DELETE], req(), Decision.DENY),
]


@pytest.mark.parametrize(
    ("policies", "request_ctx", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in AUTHORIZE],
)
def test_authorize(policies: list[Policy], request_ctx: RequestContext, expected: Decision) -> None:
    assert authorize(OWNER, policies, request_ctx) is expected


# ---------------------------------------------------------------------------------------
# Messages


def test_deny_message_implicit() -> None:
    request = req(account=OTHER)
    assert deny_message(request, explicit=False) == (
        f"User: arn:aws:iam::{OTHER}:root is not authorized to perform: "
        f"glacier:DeleteArchive on resource: {VAULT}"
    )


def test_deny_message_explicit() -> None:
    message = deny_message(req(), explicit=True)
    assert message.endswith(f"on resource: {VAULT} with an explicit deny")
    assert message.startswith(f"User: arn:aws:iam::{OWNER}:root is not authorized")


def test_request_keys_default_to_empty() -> None:
    request = RequestContext("glacier:ListJobs", VAULT, OWNER, f"arn:aws:iam::{OWNER}:root")
    assert evaluate(parse_policy(doc(stmt())), request) is Decision.ALLOW


# ---------------------------------------------------------------------------------------
# Properties

_ACTIONS = st.sampled_from(
    ["glacier:DeleteArchive", "glacier:UploadArchive", "glacier:ListJobs", "glacier:InitiateJob"]
)
_ACTION_PATTERNS = st.sampled_from(["*", "glacier:*", "glacier:Upload*", "glacier:DeleteArchive"])
_CONDITIONS = st.sampled_from(
    [
        None,
        {"NumericLessThan": {"glacier:ArchiveAgeInDays": "365"}},
        {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        {"StringNotEquals": {"aws:ResourceTag/env": "prod"}},
        {"Null": {"aws:x": "true"}},
    ]
)
_STATEMENTS = st.builds(
    stmt,
    effect=st.sampled_from(["Allow", "Deny"]),
    action=_ACTION_PATTERNS,
    resource=st.sampled_from([VAULT, ALL_VAULTS, "*"]),
    principal=st.sampled_from(["*", {"AWS": OTHER}, {"AWS": OWNER}]),
    condition=_CONDITIONS,
)
_REQUESTS = st.builds(
    req,
    action=_ACTIONS,
    account=st.sampled_from([OWNER, OTHER]),
    keys=st.fixed_dictionaries(
        {},
        optional={
            "glacier:ArchiveAgeInDays": st.integers(0, 1000),
            "aws:MultiFactorAuthPresent": st.booleans(),
            "aws:ResourceTag/env": st.sampled_from(["prod", "dev"]),
        },
    ),
)


@given(st.lists(_STATEMENTS, min_size=1, max_size=5), _REQUESTS)
def test_matching_deny_always_denies(
    statements: list[dict[str, Any]], request: RequestContext
) -> None:
    """Adding a statement that matches as a Deny never lets the request through."""
    before = evaluate(parse_policy(doc(*statements)), request)
    blanket = stmt("Deny", "*", "*", "*")
    after = evaluate(parse_policy(doc(*statements, blanket)), request)
    assert after is Decision.DENY
    if before is Decision.DENY:
        assert authorize(OWNER, [parse_policy(doc(*statements))], request) is Decision.DENY


@given(st.lists(_STATEMENTS, min_size=1, max_size=5), _REQUESTS)
def test_statement_order_is_irrelevant(
    statements: list[dict[str, Any]], request: RequestContext
) -> None:
    forward = evaluate(parse_policy(doc(*statements)), request)
    backward = evaluate(parse_policy(doc(*reversed(statements))), request)
    assert forward is backward


@given(st.lists(_STATEMENTS, min_size=1, max_size=5), _REQUESTS)
def test_splitting_a_policy_keeps_deny(
    statements: list[dict[str, Any]], request: RequestContext
) -> None:
    """Deny in one policy is a DENY from authorize() whatever the other policies say."""
    whole = evaluate(parse_policy(doc(*statements)), request)
    parts = [parse_policy(doc(s)) for s in statements]
    combined = authorize(OWNER, parts, request)
    if whole is Decision.DENY:
        assert combined is Decision.DENY
    else:
        assert combined is authorize(OWNER, [parse_policy(doc(*statements))], request)
