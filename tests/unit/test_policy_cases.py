"""Table-driven evaluation cases for the IAM policy language (spec 6.1-6.3).

Two tables: condition operators (each row: operator, key, policy value, request keys, does the
condition hold?) and whole-statement matching (policy document + request -> Decision).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from openglacier.domain.governance.policy import Decision, RequestContext, evaluate, parse_policy

OWNER = "111122223333"
OTHER = "444455556666"
REGION = "us-east-1"
VAULT = f"arn:aws:glacier:{REGION}:{OWNER}:vaults/examplevault"
OTHER_VAULT = f"arn:aws:glacier:{REGION}:{OWNER}:vaults/photos"
ALL_VAULTS = f"arn:aws:glacier:{REGION}:{OWNER}:vaults/*"
MISSING: dict[str, Any] = {}

ALLOW, DENY, NA = Decision.ALLOW, Decision.DENY, Decision.NOT_APPLICABLE


def stmt(
    effect: str = "Allow",
    action: Any = "glacier:*",
    resource: Any = ALL_VAULTS,
    principal: Any = "*",
    condition: dict[str, Any] | None = None,
    **members: Any,
) -> dict[str, Any]:
    """A statement; pass ``NotAction=...`` etc. with ``action=None`` to swap the member."""
    out: dict[str, Any] = {"Effect": effect}
    if principal is not None:
        out["Principal"] = principal
    if action is not None:
        out["Action"] = action
    if resource is not None:
        out["Resource"] = resource
    if condition is not None:
        out["Condition"] = condition
    out.update(members)
    return out


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def req(
    action: str = "glacier:DeleteArchive",
    resource: str = VAULT,
    account: str = OWNER,
    arn: str | None = None,
    keys: dict[str, Any] | None = None,
) -> RequestContext:
    return RequestContext(
        action=action,
        resource=resource,
        principal_account=account,
        principal_arn=arn or f"arn:aws:iam::{account}:root",
        keys=keys or {},
    )


# ---------------------------------------------------------------------------------------
# Condition operators: (id, operator, key, policy value, request keys, holds)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LATER = datetime(2024, 6, 1, tzinfo=UTC)
EARLIER = datetime(2023, 6, 1, tzinfo=UTC)
ENV = "aws:ResourceTag/env"
AGE = "glacier:ArchiveAgeInDays"
HOLD = "glacier:ResourceTag/LegalHold"
NOW = "aws:CurrentTime"
MFA = "aws:MultiFactorAuthPresent"
TLS = "aws:SecureTransport"
IP = "aws:SourceIp"
TAGS = "aws:TagKeys"

CONDITIONS: list[tuple[str, str, str, Any, dict[str, Any], bool]] = [
    # StringEquals / StringNotEquals
    ("str-eq-hit", "StringEquals", ENV, "prod", {ENV: "prod"}, True),
    ("str-eq-case-sensitive", "StringEquals", ENV, "prod", {ENV: "Prod"}, False),
    ("str-eq-miss", "StringEquals", ENV, "prod", {ENV: "dev"}, False),
    ("str-eq-missing-key", "StringEquals", ENV, "prod", MISSING, False),
    ("str-eq-list-or", "StringEquals", ENV, ["dev", "prod"], {ENV: "prod"}, True),
    ("str-eq-list-none", "StringEquals", ENV, ["dev", "prod"], {ENV: "test"}, False),
    ("str-eq-no-wildcards", "StringEquals", ENV, "pr*", {ENV: "prod"}, False),
    ("str-eq-literal-star", "StringEquals", ENV, "pr*", {ENV: "pr*"}, True),
    ("str-eq-empty", "StringEquals", ENV, "", {ENV: ""}, True),
    ("str-eq-number-policy", "StringEquals", ENV, 7, {ENV: "7"}, True),
    ("str-eq-bool-request", "StringEquals", TLS, "true", {TLS: True}, True),
    ("str-eq-int-request", "StringEquals", AGE, "12", {AGE: 12}, True),
    ("str-ne-same", "StringNotEquals", ENV, "prod", {ENV: "prod"}, False),
    ("str-ne-diff", "StringNotEquals", ENV, "prod", {ENV: "dev"}, True),
    ("str-ne-missing-key-true", "StringNotEquals", ENV, "prod", MISSING, True),
    ("str-ne-list-and-hit", "StringNotEquals", ENV, ["dev", "prod"], {ENV: "prod"}, False),
    ("str-ne-list-and-miss", "StringNotEquals", ENV, ["dev", "prod"], {ENV: "test"}, True),
    ("str-ne-case", "StringNotEquals", ENV, "prod", {ENV: "PROD"}, True),
    # IgnoreCase
    ("str-eq-ic-hit", "StringEqualsIgnoreCase", ENV, "PROD", {ENV: "prod"}, True),
    ("str-eq-ic-miss", "StringEqualsIgnoreCase", ENV, "PROD", {ENV: "dev"}, False),
    ("str-eq-ic-missing", "StringEqualsIgnoreCase", ENV, "PROD", MISSING, False),
    ("str-ne-ic-same", "StringNotEqualsIgnoreCase", ENV, "PROD", {ENV: "prod"}, False),
    ("str-ne-ic-diff", "StringNotEqualsIgnoreCase", ENV, "PROD", {ENV: "dev"}, True),
    ("str-ne-ic-missing", "StringNotEqualsIgnoreCase", ENV, "PROD", MISSING, True),
    # StringLike / StringNotLike
    ("like-star", "StringLike", ENV, "pr*", {ENV: "prod"}, True),
    ("like-question", "StringLike", ENV, "pr?d", {ENV: "prod"}, True),
    ("like-question-one-char", "StringLike", ENV, "pr?d", {ENV: "prood"}, False),
    ("like-case-sensitive", "StringLike", ENV, "Pr*", {ENV: "prod"}, False),
    ("like-star-empty", "StringLike", ENV, "*", {ENV: ""}, True),
    ("like-empty-empty", "StringLike", ENV, "", {ENV: ""}, True),
    ("like-empty-nonempty", "StringLike", ENV, "", {ENV: "x"}, False),
    ("like-dot-literal", "StringLike", ENV, "a.c", {ENV: "abc"}, False),
    ("like-plus-literal", "StringLike", ENV, "a+b", {ENV: "a+b"}, True),
    ("like-anchored", "StringLike", ENV, "rod", {ENV: "prod"}, False),
    ("like-missing", "StringLike", ENV, "*", MISSING, False),
    ("like-middle-star", "StringLike", ENV, "a*z", {ENV: "a-middle-z"}, True),
    ("like-newline", "StringLike", ENV, "a*", {ENV: "a\nb"}, True),
    ("nlike-hit", "StringNotLike", ENV, "pr*", {ENV: "prod"}, False),
    ("nlike-miss", "StringNotLike", ENV, "pr*", {ENV: "dev"}, True),
    ("nlike-missing", "StringNotLike", ENV, "pr*", MISSING, True),
    ("nlike-list", "StringNotLike", ENV, ["d*", "p*"], {ENV: "prod"}, False),
    # Numeric
    ("num-lt-hit", "NumericLessThan", AGE, "365", {AGE: 100}, True),
    ("num-lt-equal", "NumericLessThan", AGE, "365", {AGE: 365}, False),
    ("num-lt-above", "NumericLessThan", AGE, "365", {AGE: 366}, False),
    ("num-lt-missing", "NumericLessThan", AGE, "365", MISSING, False),
    ("num-lt-string-request", "NumericLessThan", AGE, "365", {AGE: "100"}, True),
    ("num-lt-garbage-request", "NumericLessThan", AGE, "365", {AGE: "abc"}, False),
    ("num-lt-bool-request", "NumericLessThan", AGE, "365", {AGE: True}, False),
    ("num-lt-decimal", "NumericLessThan", AGE, "1.5", {AGE: 1}, True),
    ("num-lt-float-request", "NumericLessThan", AGE, "1.5", {AGE: 1.49}, True),
    ("num-lte-equal", "NumericLessThanEquals", AGE, "365", {AGE: 365}, True),
    ("num-lte-above", "NumericLessThanEquals", AGE, "365", {AGE: 366}, False),
    ("num-gt-hit", "NumericGreaterThan", AGE, "365", {AGE: 366}, True),
    ("num-gt-equal", "NumericGreaterThan", AGE, "365", {AGE: 365}, False),
    ("num-gte-equal-number", "NumericGreaterThanEquals", AGE, 365, {AGE: 365}, True),
    ("num-gte-below", "NumericGreaterThanEquals", AGE, 365, {AGE: 364}, False),
    ("num-eq-hit", "NumericEquals", AGE, "10", {AGE: 10}, True),
    ("num-eq-decimal-form", "NumericEquals", AGE, "10.0", {AGE: 10}, True),
    ("num-eq-miss", "NumericEquals", AGE, "10", {AGE: 11}, False),
    ("num-eq-negative", "NumericEquals", AGE, "-3", {AGE: -3}, True),
    ("num-eq-list", "NumericEquals", AGE, ["1", "2"], {AGE: 2}, True),
    ("num-eq-padded", "NumericEquals", AGE, " 7 ", {AGE: 7}, True),
    ("num-ne-same", "NumericNotEquals", AGE, "10", {AGE: 10}, False),
    ("num-ne-diff", "NumericNotEquals", AGE, "10", {AGE: 11}, True),
    ("num-ne-missing", "NumericNotEquals", AGE, "10", MISSING, True),
    ("num-ne-list-hit", "NumericNotEquals", AGE, ["1", "2"], {AGE: 2}, False),
    ("num-ne-list-miss", "NumericNotEquals", AGE, ["1", "2"], {AGE: 3}, True),
    # Date
    ("date-gt-later", "DateGreaterThan", NOW, "2024-01-01T00:00:00Z", {NOW: LATER}, True),
    ("date-gt-earlier", "DateGreaterThan", NOW, "2024-01-01T00:00:00Z", {NOW: EARLIER}, False),
    ("date-gt-equal", "DateGreaterThan", NOW, "2024-01-01T00:00:00Z", {NOW: T0}, False),
    ("date-gt-missing", "DateGreaterThan", NOW, "2024-01-01T00:00:00Z", MISSING, False),
    ("date-gte-equal", "DateGreaterThanEquals", NOW, "2024-01-01T00:00:00Z", {NOW: T0}, True),
    ("date-lt-earlier", "DateLessThan", NOW, "2024-01-01T00:00:00Z", {NOW: EARLIER}, True),
    ("date-lt-later", "DateLessThan", NOW, "2024-01-01T00:00:00Z", {NOW: LATER}, False),
    ("date-lte-equal", "DateLessThanEquals", NOW, "2024-01-01T00:00:00Z", {NOW: T0}, True),
    ("date-eq-hit", "DateEquals", NOW, "2024-01-01T00:00:00Z", {NOW: T0}, True),
    ("date-eq-offset", "DateEquals", NOW, "2024-01-01T01:00:00+01:00", {NOW: T0}, True),
    ("date-eq-epoch-str", "DateEquals", NOW, "1704067200", {NOW: T0}, True),
    ("date-eq-epoch-num", "DateEquals", NOW, 1704067200, {NOW: T0}, True),
    ("date-eq-date-only", "DateEquals", NOW, "2024-01-01", {NOW: T0}, True),
    ("date-eq-fraction", "DateEquals", NOW, "2024-01-01T00:00:00.000Z", {NOW: T0}, True),
    (
        "date-eq-naive-req",
        "DateEquals",
        NOW,
        "2024-01-01T00:00:00Z",
        {NOW: T0.replace(tzinfo=None)},
        True,
    ),
    (
        "date-eq-str-req",
        "DateEquals",
        NOW,
        "2024-01-01T00:00:00Z",
        {NOW: "2024-01-01T00:00:00Z"},
        True,
    ),
    (
        "date-eq-other-tz-req",
        "DateEquals",
        NOW,
        "2024-01-01T00:00:00Z",
        {NOW: T0.astimezone(timezone(timedelta(hours=-5)))},
        True,
    ),
    ("date-eq-bad-req", "DateEquals", NOW, "2024-01-01T00:00:00Z", {NOW: "yesterday"}, False),
    ("date-ne-same", "DateNotEquals", NOW, "2024-01-01T00:00:00Z", {NOW: T0}, False),
    ("date-ne-diff", "DateNotEquals", NOW, "2024-01-01T00:00:00Z", {NOW: LATER}, True),
    ("date-ne-missing", "DateNotEquals", NOW, "2024-01-01T00:00:00Z", MISSING, True),
    # Bool
    ("bool-true-true", "Bool", MFA, "true", {MFA: True}, True),
    ("bool-true-false", "Bool", MFA, "true", {MFA: False}, False),
    ("bool-missing", "Bool", MFA, "true", MISSING, False),
    ("bool-upper", "Bool", MFA, "TRUE", {MFA: True}, True),
    ("bool-json-true", "Bool", MFA, True, {MFA: True}, True),
    ("bool-false-false", "Bool", TLS, "false", {TLS: False}, True),
    ("bool-str-request", "Bool", TLS, "true", {TLS: "True"}, True),
    ("bool-bad-request", "Bool", TLS, "true", {TLS: "yes"}, False),
    ("bool-int-request", "Bool", TLS, "true", {TLS: 1}, False),
    # IP addresses
    ("ip-in-cidr", "IpAddress", IP, "203.0.113.0/24", {IP: "203.0.113.5"}, True),
    ("ip-out-cidr", "IpAddress", IP, "203.0.113.0/24", {IP: "198.51.100.1"}, False),
    ("ip-missing", "IpAddress", IP, "203.0.113.0/24", MISSING, False),
    ("ip-single", "IpAddress", IP, "203.0.113.5", {IP: "203.0.113.5"}, True),
    ("ip-single-other", "IpAddress", IP, "203.0.113.5", {IP: "203.0.113.6"}, False),
    ("ip-host-bits", "IpAddress", IP, "203.0.113.7/24", {IP: "203.0.113.200"}, True),
    ("ip-list", "IpAddress", IP, ["10.0.0.0/8", "192.168.0.0/16"], {IP: "192.168.1.1"}, True),
    ("ip-v6", "IpAddress", IP, "2001:db8::/32", {IP: "2001:db8::1"}, True),
    ("ip-v6-policy-v4-req", "IpAddress", IP, "2001:db8::/32", {IP: "10.0.0.1"}, False),
    ("ip-bad-request", "IpAddress", IP, "0.0.0.0/0", {IP: "not-an-ip"}, False),
    ("ip-any", "IpAddress", IP, "0.0.0.0/0", {IP: "8.8.8.8"}, True),
    ("notip-in", "NotIpAddress", IP, "203.0.113.0/24", {IP: "203.0.113.5"}, False),
    ("notip-out", "NotIpAddress", IP, "203.0.113.0/24", {IP: "198.51.100.1"}, True),
    ("notip-missing", "NotIpAddress", IP, "203.0.113.0/24", MISSING, True),
    (
        "notip-list-one-in",
        "NotIpAddress",
        IP,
        ["10.0.0.0/8", "203.0.113.0/24"],
        {IP: "10.1.1.1"},
        False,
    ),
    (
        "notip-list-none-in",
        "NotIpAddress",
        IP,
        ["10.0.0.0/8", "203.0.113.0/24"],
        {IP: "8.8.8.8"},
        True,
    ),
    # Null
    ("null-true-missing", "Null", ENV, "true", MISSING, True),
    ("null-true-present", "Null", ENV, "true", {ENV: "x"}, False),
    ("null-false-present", "Null", ENV, "false", {ENV: "x"}, True),
    ("null-false-missing", "Null", ENV, "false", MISSING, False),
    ("null-none-is-missing", "Null", ENV, "true", {ENV: None}, True),
    ("null-empty-set-is-missing", "Null", TAGS, "true", {TAGS: []}, True),
    ("null-empty-string-present", "Null", ENV, "true", {ENV: ""}, False),
    ("null-json-bool", "Null", ENV, True, MISSING, True),
    # ...IfExists
    ("ifexists-str-missing", "StringEqualsIfExists", ENV, "prod", MISSING, True),
    ("ifexists-str-hit", "StringEqualsIfExists", ENV, "prod", {ENV: "prod"}, True),
    ("ifexists-str-miss", "StringEqualsIfExists", ENV, "prod", {ENV: "dev"}, False),
    ("ifexists-strne-missing", "StringNotEqualsIfExists", ENV, "prod", MISSING, True),
    ("ifexists-strne-same", "StringNotEqualsIfExists", ENV, "prod", {ENV: "prod"}, False),
    ("ifexists-like-missing", "StringLikeIfExists", ENV, "p*", MISSING, True),
    ("ifexists-num-missing", "NumericLessThanIfExists", AGE, "365", MISSING, True),
    ("ifexists-num-fail", "NumericLessThanIfExists", AGE, "365", {AGE: 400}, False),
    ("ifexists-num-pass", "NumericLessThanIfExists", AGE, "365", {AGE: 1}, True),
    ("ifexists-bool-missing", "BoolIfExists", MFA, "true", MISSING, True),
    ("ifexists-bool-false", "BoolIfExists", MFA, "true", {MFA: False}, False),
    ("ifexists-date-missing", "DateGreaterThanIfExists", NOW, "2024-01-01", MISSING, True),
    ("ifexists-date-fail", "DateGreaterThanIfExists", NOW, "2024-01-01", {NOW: EARLIER}, False),
    ("ifexists-ip-missing", "IpAddressIfExists", IP, "10.0.0.0/8", MISSING, True),
    ("ifexists-ip-fail", "IpAddressIfExists", IP, "10.0.0.0/8", {IP: "8.8.8.8"}, False),
    ("ifexists-notip-missing", "NotIpAddressIfExists", IP, "10.0.0.0/8", MISSING, True),
    ("ifexists-eqic-missing", "StringEqualsIgnoreCaseIfExists", ENV, "X", MISSING, True),
    ("ifexists-numeq-missing", "NumericEqualsIfExists", AGE, "1", MISSING, True),
    # Set qualifiers on a multi-valued key
    ("any-eq-overlap", "ForAnyValue:StringEquals", TAGS, ["a", "b"], {TAGS: ["b", "c"]}, True),
    ("any-eq-disjoint", "ForAnyValue:StringEquals", TAGS, ["a", "b"], {TAGS: ["c"]}, False),
    ("any-eq-missing", "ForAnyValue:StringEquals", TAGS, ["a", "b"], MISSING, False),
    ("any-eq-empty", "ForAnyValue:StringEquals", TAGS, ["a", "b"], {TAGS: []}, False),
    ("any-eq-single-value", "ForAnyValue:StringEquals", TAGS, "a", {TAGS: "a"}, True),
    ("any-like", "ForAnyValue:StringLike", TAGS, "a*", {TAGS: ["x", "ab"]}, True),
    ("any-ne-some-other", "ForAnyValue:StringNotEquals", TAGS, "a", {TAGS: ["a", "b"]}, True),
    ("any-ne-all-same", "ForAnyValue:StringNotEquals", TAGS, "a", {TAGS: ["a"]}, False),
    ("any-ifexists-missing", "ForAnyValue:StringEqualsIfExists", TAGS, "a", MISSING, True),
    ("any-numeric", "ForAnyValue:NumericGreaterThan", TAGS, "5", {TAGS: [1, 9]}, True),
    ("all-eq-subset", "ForAllValues:StringEquals", TAGS, ["a", "b"], {TAGS: ["a", "b"]}, True),
    ("all-eq-extra", "ForAllValues:StringEquals", TAGS, ["a", "b"], {TAGS: ["a", "c"]}, False),
    ("all-eq-missing", "ForAllValues:StringEquals", TAGS, ["a", "b"], MISSING, True),
    ("all-eq-empty", "ForAllValues:StringEquals", TAGS, ["a", "b"], {TAGS: []}, True),
    ("all-eq-tuple", "ForAllValues:StringEquals", TAGS, ["a", "b"], {TAGS: ("b",)}, True),
    (
        "all-eq-frozenset",
        "ForAllValues:StringEquals",
        TAGS,
        ["a"],
        {TAGS: frozenset({"a", "z"})},
        False,
    ),
    ("all-like-pass", "ForAllValues:StringLike", TAGS, "a*", {TAGS: ["ax", "ab"]}, True),
    ("all-like-fail", "ForAllValues:StringLike", TAGS, "a*", {TAGS: ["ax", "b"]}, False),
    ("all-ne-pass", "ForAllValues:StringNotEquals", TAGS, "a", {TAGS: ["b", "c"]}, True),
    ("all-ne-fail", "ForAllValues:StringNotEquals", TAGS, "a", {TAGS: ["a", "b"]}, False),
    ("all-ifexists-missing", "ForAllValues:StringEqualsIfExists", TAGS, "a", MISSING, True),
    ("plain-eq-multi-any", "StringEquals", TAGS, "prod", {TAGS: ["x", "prod"]}, True),
    ("plain-ne-multi-none", "StringNotEquals", TAGS, "prod", {TAGS: ["x", "prod"]}, False),
    ("plain-ne-multi-pass", "StringNotEquals", TAGS, "prod", {TAGS: ["x", "y"]}, True),
    # Key names are case-insensitive, values are not
    ("key-case-policy", "NumericLessThan", "glacier:ArchiveAgeinDays", "365", {AGE: 3}, True),
    ("key-case-request", "NumericLessThan", AGE, "365", {AGE.upper(): 3}, True),
    ("key-case-tag", "StringEquals", "AWS:RESOURCETAG/ENV", "prod", {ENV: "prod"}, True),
]


@pytest.mark.parametrize(
    ("operator", "key", "value", "keys", "holds"),
    [pytest.param(*row[1:], id=row[0]) for row in CONDITIONS],
)
def test_condition_operator(
    operator: str, key: str, value: Any, keys: dict[str, Any], holds: bool
) -> None:
    policy = parse_policy(doc(stmt(condition={operator: {key: value}})))
    assert evaluate(policy, req(keys=keys)) is (ALLOW if holds else NA)


# ---------------------------------------------------------------------------------------
# Whole statements: (id, policy document, request, expected decision)

USER_X = f"arn:aws:iam::{OTHER}:user/x"
RETENTION = stmt(
    "Deny", "glacier:DeleteArchive", VAULT, condition={"NumericLessThan": {AGE: "365"}}
)
LEGAL_HOLD = [
    stmt("Allow", "glacier:DeleteArchive", VAULT, condition={"NumericLessThan": {AGE: "365"}}),
    stmt("Deny", "glacier:DeleteArchive", VAULT, condition={"StringLike": {HOLD: ["true", ""]}}),
]
CROSS_ACCOUNT = stmt(
    "Allow",
    [
        "glacier:UploadArchive",
        "glacier:InitiateMultipartUpload",
        "glacier:UploadMultipartPart",
        "glacier:CompleteMultipartUpload",
    ],
    VAULT,
    {"AWS": f"arn:aws:iam::{OTHER}:root"},
)
MFA_DELETE = stmt(
    "Deny",
    "glacier:DeleteArchive",
    VAULT,
    condition={"BoolIfExists": {MFA: "false"}},
)
MFA_ALLOW = stmt("Allow", "glacier:DeleteArchive", VAULT, {"AWS": OTHER}, {"Bool": {MFA: "true"}})
TIME_DELETE = stmt(
    "Allow",
    "glacier:DeleteArchive",
    VAULT,
    {"AWS": OTHER},
    {"DateGreaterThan": {NOW: "2024-01-01T00:00:00Z"}},
)

STATEMENTS: list[tuple[str, str, RequestContext, Decision]] = [
    # Guide: one-year retention
    ("retention-young", doc(RETENTION), req(keys={AGE: 30}), DENY),
    ("retention-old", doc(RETENTION), req(keys={AGE: 400}), NA),
    ("retention-exactly-365", doc(RETENTION), req(keys={AGE: 365}), NA),
    ("retention-other-action", doc(RETENTION), req("glacier:UploadArchive", keys={AGE: 1}), NA),
    ("retention-no-age-key", doc(RETENTION), req(), NA),
    (
        "retention-guide-key-case",
        doc(
            stmt(
                "Deny",
                "glacier:DeleteArchive",
                VAULT,
                condition={"NumericLessThan": {"glacier:ArchiveAgeinDays": "365"}},
            )
        ),
        req(keys={AGE: 3}),
        DENY,
    ),
    # Guide: legal hold
    ("hold-young-no-tag", doc(*LEGAL_HOLD), req(keys={AGE: 10}), ALLOW),
    ("hold-young-tag-true", doc(*LEGAL_HOLD), req(keys={AGE: 10, HOLD: "true"}), DENY),
    ("hold-young-tag-empty", doc(*LEGAL_HOLD), req(keys={AGE: 10, HOLD: ""}), DENY),
    ("hold-young-tag-false", doc(*LEGAL_HOLD), req(keys={AGE: 10, HOLD: "false"}), ALLOW),
    ("hold-old-tag-true", doc(*LEGAL_HOLD), req(keys={AGE: 500, HOLD: "true"}), DENY),
    ("hold-old-no-tag", doc(*LEGAL_HOLD), req(keys={AGE: 500}), NA),
    # Guide: cross-account upload grant
    ("xacct-upload", doc(CROSS_ACCOUNT), req("glacier:UploadArchive", account=OTHER), ALLOW),
    ("xacct-part", doc(CROSS_ACCOUNT), req("glacier:UploadMultipartPart", account=OTHER), ALLOW),
    (
        "xacct-user-in-account",
        doc(CROSS_ACCOUNT),
        req("glacier:UploadArchive", account=OTHER, arn=USER_X),
        ALLOW,
    ),
    (
        "xacct-delete-not-granted",
        doc(CROSS_ACCOUNT),
        req("glacier:DeleteArchive", account=OTHER),
        NA,
    ),
    (
        "xacct-third-account",
        doc(CROSS_ACCOUNT),
        req("glacier:UploadArchive", account="999999999999"),
        NA,
    ),
    ("xacct-other-vault", doc(CROSS_ACCOUNT), req("glacier:UploadArchive", OTHER_VAULT, OTHER), NA),
    # Guide: MFA-protected delete
    ("mfa-deny-without", doc(MFA_DELETE), req(keys={MFA: False}), DENY),
    ("mfa-deny-absent", doc(MFA_DELETE), req(), DENY),
    ("mfa-deny-with", doc(MFA_DELETE), req(keys={MFA: True}), NA),
    ("mfa-allow-with", doc(MFA_ALLOW), req(account=OTHER, keys={MFA: True}), ALLOW),
    ("mfa-allow-without", doc(MFA_ALLOW), req(account=OTHER, keys={MFA: False}), NA),
    # Guide: time-based delete
    ("time-after", doc(TIME_DELETE), req(account=OTHER, keys={NOW: LATER}), ALLOW),
    ("time-before", doc(TIME_DELETE), req(account=OTHER, keys={NOW: EARLIER}), NA),
    ("time-no-clock", doc(TIME_DELETE), req(account=OTHER), NA),
    # Actions
    ("action-exact", doc(stmt(action="glacier:DeleteArchive")), req(), ALLOW),
    ("action-other", doc(stmt(action="glacier:DeleteVault")), req(), NA),
    ("action-service-star", doc(stmt(action="glacier:*")), req("glacier:ListJobs"), ALLOW),
    ("action-star", doc(stmt(action="*")), req("glacier:ListJobs"), ALLOW),
    (
        "action-prefix",
        doc(stmt(action="glacier:Upload*")),
        req("glacier:UploadMultipartPart"),
        ALLOW,
    ),
    (
        "action-prefix-miss",
        doc(stmt(action="glacier:Upload*")),
        req("glacier:InitiateMultipartUpload"),
        NA,
    ),
    (
        "action-infix",
        doc(stmt(action="glacier:*Vault*")),
        req("glacier:DeleteVaultNotifications"),
        ALLOW,
    ),
    ("action-question", doc(stmt(action="glacier:?eleteArchive")), req(), ALLOW),
    ("action-case-policy", doc(stmt(action="GLACIER:deletearchive")), req(), ALLOW),
    (
        "action-case-request",
        doc(stmt(action="glacier:DeleteArchive")),
        req("Glacier:DELETEARCHIVE"),
        ALLOW,
    ),
    ("action-list", doc(stmt(action=["glacier:ListJobs", "glacier:DeleteArchive"])), req(), ALLOW),
    ("action-other-service", doc(stmt(action="s3:*")), req(), NA),
    ("action-service-not-prefix", doc(stmt(action="glacier:Delete")), req(), NA),
    ("notaction-excluded", doc(stmt(action=None, NotAction="glacier:DeleteArchive")), req(), NA),
    (
        "notaction-included",
        doc(stmt(action=None, NotAction="glacier:DeleteArchive")),
        req("glacier:ListJobs"),
        ALLOW,
    ),
    ("notaction-wild", doc(stmt("Deny", None, NotAction="glacier:Get*")), req(), DENY),
    (
        "notaction-wild-get",
        doc(stmt("Deny", None, NotAction="glacier:Get*")),
        req("glacier:GetJobOutput"),
        NA,
    ),
    (
        "notaction-list",
        doc(stmt(action=None, NotAction=["glacier:List*", "glacier:Describe*"])),
        req("glacier:DescribeVault"),
        NA,
    ),
    # Resources
    ("resource-exact", doc(stmt(resource=VAULT)), req(), ALLOW),
    ("resource-other-vault", doc(stmt(resource=OTHER_VAULT)), req(), NA),
    ("resource-star", doc(stmt(resource="*")), req(), ALLOW),
    ("resource-vaults-star", doc(stmt(resource=ALL_VAULTS)), req(resource=OTHER_VAULT), ALLOW),
    (
        "resource-prefix",
        doc(stmt(resource=f"arn:aws:glacier:{REGION}:{OWNER}:vaults/example*")),
        req(),
        ALLOW,
    ),
    (
        "resource-prefix-miss",
        doc(stmt(resource=f"arn:aws:glacier:{REGION}:{OWNER}:vaults/example*")),
        req(resource=OTHER_VAULT),
        NA,
    ),
    (
        "resource-question",
        doc(stmt(resource=f"arn:aws:glacier:{REGION}:{OWNER}:vaults/photo?")),
        req(resource=OTHER_VAULT),
        ALLOW,
    ),
    (
        "resource-region-star",
        doc(stmt(resource=f"arn:aws:glacier:*:{OWNER}:vaults/*")),
        req(),
        ALLOW,
    ),
    (
        "resource-other-region",
        doc(stmt(resource=f"arn:aws:glacier:eu-west-1:{OWNER}:vaults/*")),
        req(),
        NA,
    ),
    (
        "resource-other-account",
        doc(stmt(resource=f"arn:aws:glacier:{REGION}:{OTHER}:vaults/*")),
        req(),
        NA,
    ),
    (
        "resource-case-sensitive",
        doc(stmt(resource=VAULT.replace("examplevault", "ExampleVault"))),
        req(),
        NA,
    ),
    ("resource-list", doc(stmt(resource=[OTHER_VAULT, VAULT])), req(), ALLOW),
    ("notresource-excluded", doc(stmt(resource=None, NotResource=VAULT)), req(), NA),
    (
        "notresource-included",
        doc(stmt(resource=None, NotResource=VAULT)),
        req(resource=OTHER_VAULT),
        ALLOW,
    ),
    ("notresource-deny", doc(stmt("Deny", resource=None, NotResource=OTHER_VAULT)), req(), DENY),
    # Principals
    ("principal-star-owner", doc(stmt(principal="*")), req(), ALLOW),
    ("principal-star-other", doc(stmt(principal="*")), req(account=OTHER), ALLOW),
    ("principal-aws-star", doc(stmt(principal={"AWS": "*"})), req(account=OTHER), ALLOW),
    ("principal-account-id", doc(stmt(principal={"AWS": OTHER})), req(account=OTHER), ALLOW),
    ("principal-account-id-miss", doc(stmt(principal={"AWS": OTHER})), req(), NA),
    (
        "principal-root-arn",
        doc(stmt(principal={"AWS": f"arn:aws:iam::{OTHER}:root"})),
        req(account=OTHER, arn=USER_X),
        ALLOW,
    ),
    (
        "principal-user-arn",
        doc(stmt(principal={"AWS": USER_X})),
        req(account=OTHER, arn=USER_X),
        ALLOW,
    ),
    (
        "principal-user-arn-root-caller",
        doc(stmt(principal={"AWS": USER_X})),
        req(account=OTHER),
        NA,
    ),
    (
        "principal-user-arn-other-user",
        doc(stmt(principal={"AWS": USER_X})),
        req(account=OTHER, arn=f"arn:aws:iam::{OTHER}:user/y"),
        NA,
    ),
    ("principal-list", doc(stmt(principal={"AWS": [OWNER, OTHER]})), req(account=OTHER), ALLOW),
    (
        "principal-service-only",
        doc(stmt(principal={"Service": "glacier.amazonaws.com"})),
        req(),
        NA,
    ),
    (
        "notprincipal-excluded",
        doc(stmt("Deny", principal=None, NotPrincipal={"AWS": OWNER})),
        req(),
        NA,
    ),
    (
        "notprincipal-others-denied",
        doc(stmt("Deny", principal=None, NotPrincipal={"AWS": OWNER})),
        req(account=OTHER),
        DENY,
    ),
    # Combining statements and conditions
    ("deny-overrides-allow", doc(stmt(), stmt("Deny", "glacier:DeleteArchive")), req(), DENY),
    ("deny-first-still-wins", doc(stmt("Deny", "glacier:DeleteArchive"), stmt()), req(), DENY),
    ("deny-not-matching", doc(stmt(), stmt("Deny", "glacier:DeleteVault")), req(), ALLOW),
    ("two-allows", doc(stmt(), stmt(action="*")), req(), ALLOW),
    ("deny-only-no-match", doc(stmt("Deny", "glacier:DeleteVault")), req(), NA),
    ("empty-condition-object", doc(stmt(condition={})), req(), ALLOW),
    (
        "keys-and-both",
        doc(stmt(condition={"StringEquals": {ENV: "prod", HOLD: "no"}})),
        req(keys={ENV: "prod", HOLD: "no"}),
        ALLOW,
    ),
    (
        "keys-and-one-fails",
        doc(stmt(condition={"StringEquals": {ENV: "prod", HOLD: "no"}})),
        req(keys={ENV: "prod", HOLD: "yes"}),
        NA,
    ),
    (
        "keys-and-one-missing",
        doc(stmt(condition={"StringEquals": {ENV: "prod", HOLD: "no"}})),
        req(keys={ENV: "prod"}),
        NA,
    ),
    (
        "ops-and-both",
        doc(stmt(condition={"StringEquals": {ENV: "prod"}, "NumericLessThan": {AGE: "5"}})),
        req(keys={ENV: "prod", AGE: 1}),
        ALLOW,
    ),
    (
        "ops-and-one-fails",
        doc(stmt(condition={"StringEquals": {ENV: "prod"}, "NumericLessThan": {AGE: "5"}})),
        req(keys={ENV: "prod", AGE: 9}),
        NA,
    ),
    (
        "ops-ifexists-and-plain",
        doc(stmt(condition={"BoolIfExists": {MFA: "true"}, "Bool": {TLS: "true"}})),
        req(keys={TLS: True}),
        ALLOW,
    ),
    ("version-2008", json.dumps({"Version": "2008-10-17", "Statement": stmt()}), req(), ALLOW),
    ("version-absent-single-statement", json.dumps({"Statement": stmt()}), req(), ALLOW),
    (
        "variable-literal-2008",
        json.dumps(
            {
                "Version": "2008-10-17",
                "Statement": stmt(condition={"StringEquals": {ENV: "${aws:username}"}}),
            }
        ),
        req(keys={ENV: "${aws:username}"}),
        ALLOW,
    ),
]


@pytest.mark.parametrize(
    ("policy_text", "request_ctx", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in STATEMENTS],
)
def test_statement_evaluation(
    policy_text: str, request_ctx: RequestContext, expected: Decision
) -> None:
    assert evaluate(parse_policy(policy_text), request_ctx) is expected


def test_case_ids_are_unique() -> None:
    ids = [row[0] for row in CONDITIONS] + [row[0] for row in STATEMENTS]
    assert len(ids) == len(set(ids))
