"""Vault access policies and the vault lock state machine on the wire (spec 2.8-2.14, 6.1-6.2).

Hand-built requests: the `Policy` member is a JSON *string* holding the policy
document, and every answer is checked for its exact status, code, headers and body.
Policies used here deny only glacier:DeleteArchive (or, where a test says so,
glacier:DeleteVault), so the operations under test are never refused by them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest

from openglacier.clock import ManualClock
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, Api
from support.jobs import advance

REGION = "us-east-1"
DAY = 86_400
MAX_POLICY_BYTES = 20 * 1024
LOCK_ID = re.compile(r"\A[A-Za-z0-9_-]{24}\Z")
# A fixed service time, so dates can be compared with literal strings.
START = datetime(2099, 3, 4, 5, 6, 7, 891_234, tzinfo=UTC)
START_ISO = "2099-03-04T05:06:07.891Z"
START_PLUS_24H_ISO = "2099-03-05T05:06:07.891Z"


def arn(vault: str) -> str:
    return f"arn:aws:glacier:{REGION}:{ACCOUNT_ID}:vaults/{vault}"


def not_found(vault: str) -> str:
    return f"Vault not found for ARN: {arn(vault)}"


def deny_policy(
    resource: str = "*", action: str = "glacier:DeleteArchive", sid: str = "deny-delete"
) -> str:
    """The guide's one-year retention statement (spec 6.3), as a compact JSON string."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": sid,
                    "Principal": "*",
                    "Effect": "Deny",
                    "Action": action,
                    "Resource": resource,
                    "Condition": {"NumericLessThan": {"glacier:ArchiveAgeInDays": "365"}},
                }
            ],
        },
        separators=(",", ":"),
    )


def unconditional_deny(vault: str, action: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Principal": "*", "Effect": "Deny", "Action": action, "Resource": arn(vault)}
            ],
        }
    )


# Odd whitespace (tabs, CR LF, blanks before colons), members out of the usual order,
# literal non-ASCII text, inner JSON escapes (\u2603, \/) and trailing blank lines: a
# server that re-serialises the document instead of storing the string fails here.
ODD_POLICY = (
    '\n {\t"Statement" :[ {\r\n   "Resource":"arn:aws:glacier:us-east-1:111122223333:vaults/*" ,'
    '"Effect":"Deny",\n"Principal":  "*",\t"Condition":{"StringEquals":{"aws:username":'
    '["é☃", "\\u2603 snow\\/man"]}}, "Action":["glacier:DeleteArchive"]}],\n'
    '  "Version":"2012-10-17"  ,"Id" : "odd ✓"}\n\n  '
)


def policy_body(policy: Any, *, ascii_only: bool = True) -> bytes:
    return json.dumps({"Policy": policy}, ensure_ascii=ascii_only).encode("utf-8")


def set_policy(api: Api, vault: str, policy: str, *, ascii_only: bool = True) -> httpx.Response:
    body = policy_body(policy, ascii_only=ascii_only)
    return api("PUT", f"/-/vaults/{vault}/access-policy", body=body)


def get_policy(api: Api, vault: str) -> httpx.Response:
    return api("GET", f"/-/vaults/{vault}/access-policy")


def delete_policy(api: Api, vault: str) -> httpx.Response:
    return api("DELETE", f"/-/vaults/{vault}/access-policy")


def initiate_lock(api: Api, vault: str, policy: str, *, ascii_only: bool = True) -> httpx.Response:
    body = policy_body(policy, ascii_only=ascii_only)
    return api("POST", f"/-/vaults/{vault}/lock-policy", body=body)


def complete_lock(api: Api, vault: str, lock_id: str) -> httpx.Response:
    return api("POST", f"/-/vaults/{vault}/lock-policy/{lock_id}")


def abort_lock(api: Api, vault: str) -> httpx.Response:
    return api("DELETE", f"/-/vaults/{vault}/lock-policy")


def get_lock(api: Api, vault: str) -> httpx.Response:
    return api("GET", f"/-/vaults/{vault}/lock-policy")


def create_vault(api: Api, vault: str) -> None:
    assert api("PUT", f"/-/vaults/{vault}").status_code == 201


def assert_empty(resp: httpx.Response, status: int) -> None:
    """201/204 answers: no body, Content-Length 0 (spec 1.7), a request id as always."""
    assert resp.status_code == status, resp.text
    assert resp.content == b""
    assert resp.headers["content-length"] == "0"
    assert resp.headers["x-amzn-requestid"]


def assert_json(resp: httpx.Response, expected: dict[str, Any]) -> None:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-amzn-requestid"]
    assert resp.json() == expected


def assert_policy(api: Api, vault: str, policy: str) -> None:
    resp = get_policy(api, vault)
    assert_json(resp, {"Policy": policy})
    assert resp.json()["Policy"].encode("utf-8") == policy.encode("utf-8")


def start_lock(api: Api, vault: str, policy: str | None = None) -> str:
    resp = initiate_lock(api, vault, policy or deny_policy(arn(vault)))
    assert_empty(resp, 201)
    lock_id = resp.headers["x-amz-lock-id"]
    assert LOCK_ID.match(lock_id), lock_id
    return lock_id


def assert_no_lock(api: Api, vault: str) -> None:
    assert_error(get_lock(api, vault), 404, "ResourceNotFoundException")


def sized_policy(size: int, filler: str) -> str:
    """A valid policy of exactly `size` UTF-8 bytes, padded with `filler` in a condition value."""
    template = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "padded",
                    "Principal": "*",
                    "Effect": "Deny",
                    "Action": "glacier:DeleteArchive",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:username": "@PAD@"}},
                }
            ],
        },
        ensure_ascii=False,
    )
    need = size - len(template.encode("utf-8")) + len("@PAD@")
    count, rest = divmod(need, len(filler.encode("utf-8")))
    text = template.replace("@PAD@", filler * count + "a" * rest)
    assert len(text.encode("utf-8")) == size
    return text


# ---------------------------------------------------------------------------------------
# Access policy (spec 2.8-2.10)


def test_access_policy_lifecycle(api: Api) -> None:
    create_vault(api, "v1")
    assert_error(
        get_policy(api, "v1"),
        404,
        "ResourceNotFoundException",
    )
    assert_empty(set_policy(api, "v1", ODD_POLICY), 204)
    assert_policy(api, "v1", ODD_POLICY)

    second = deny_policy(arn("v1"))
    assert_empty(set_policy(api, "v1", second), 204)  # overwrites (spec 2.8)
    assert_policy(api, "v1", second)

    assert_empty(delete_policy(api, "v1"), 204)
    assert_error(get_policy(api, "v1"), 404, "ResourceNotFoundException")
    assert_empty(delete_policy(api, "v1"), 204)  # idempotent (spec 2.10)
    assert_error(get_policy(api, "v1"), 404, "ResourceNotFoundException")


@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped-body", "utf8-body"])
def test_policy_string_is_returned_byte_for_byte(api: Api, ascii_only: bool) -> None:
    """The outer body may escape non-ASCII or send it raw; the stored string is the same."""
    create_vault(api, "v1")
    assert_empty(set_policy(api, "v1", ODD_POLICY, ascii_only=ascii_only), 204)
    assert_policy(api, "v1", ODD_POLICY)
    assert_empty(initiate_lock(api, "v1", ODD_POLICY, ascii_only=ascii_only), 201)
    assert get_lock(api, "v1").json()["Policy"] == ODD_POLICY


def test_policies_are_per_vault(api: Api) -> None:
    create_vault(api, "v1")
    create_vault(api, "v2")
    assert_empty(set_policy(api, "v1", deny_policy(arn("v1"))), 204)
    start_lock(api, "v1")
    assert_error(get_policy(api, "v2"), 404, "ResourceNotFoundException")
    assert_no_lock(api, "v2")
    assert_empty(delete_policy(api, "v2"), 204)
    assert_empty(abort_lock(api, "v2"), 204)
    assert_policy(api, "v1", deny_policy(arn("v1")))
    assert get_lock(api, "v1").json()["State"] == "InProgress"


def test_numeric_account_id_reaches_the_same_documents(api: Api) -> None:
    create_vault(api, "v1")
    path = f"/{ACCOUNT_ID}/vaults/v1/access-policy"
    assert_empty(api("PUT", path, body=policy_body(ODD_POLICY)), 204)
    assert_policy(api, "v1", ODD_POLICY)
    assert_json(api("GET", path), {"Policy": ODD_POLICY})


@pytest.mark.parametrize("filler", ["a", "é", "☃"])
@pytest.mark.parametrize("document", ["access", "lock"])
def test_policy_size_limit_counts_utf8_bytes(api: Api, document: str, filler: str) -> None:
    """20 KB = 20,480 UTF-8 bytes; with multi-byte text that is far fewer characters."""
    create_vault(api, "v1")
    write = set_policy if document == "access" else initiate_lock
    read = get_policy if document == "access" else get_lock
    too_big = sized_policy(MAX_POLICY_BYTES + 1, filler)
    if filler != "a":
        assert len(too_big) < MAX_POLICY_BYTES  # a character count would let it through
    assert_error(write(api, "v1", too_big), 400, "InvalidParameterValueException")
    assert_error(read(api, "v1"), 404, "ResourceNotFoundException")

    biggest = sized_policy(MAX_POLICY_BYTES, filler)
    assert write(api, "v1", biggest).status_code == (204 if document == "access" else 201)
    assert read(api, "v1").json()["Policy"] == biggest

    if document == "access":  # a rejected overwrite keeps the stored policy
        assert_error(write(api, "v1", too_big), 400, "InvalidParameterValueException")
        assert_policy(api, "v1", biggest)


# Each entry: (id, Policy string). Every one is well-formed JSON in the request body
# but not an acceptable policy document: 400 InvalidParameterValueException (spec 2.8).
_STMT = '"Principal":"*","Action":"glacier:DeleteArchive","Resource":"*"'
MALFORMED_POLICIES = [
    ("empty-string", ""),
    ("blank", "   \n"),
    ("not-json", "this is not JSON"),
    ("truncated", '{"Version":"2012-10-17","Statement":[{"Effect":"Deny"'),
    ("trailing-garbage", deny_policy() + "}"),
    ("json-array", "[]"),
    ("json-null", "null"),
    ("json-string", '"a policy"'),
    ("json-number", "42"),
    ("empty-object", "{}"),
    ("missing-statement", '{"Version":"2012-10-17"}'),
    ("empty-statement-list", '{"Version":"2012-10-17","Statement":[]}'),
    ("statement-not-object", '{"Version":"2012-10-17","Statement":[1]}'),
    ("statement-string", '{"Version":"2012-10-17","Statement":"deny all"}'),
    ("bad-effect", '{"Version":"2012-10-17","Statement":[{"Effect":"Maybe",' + _STMT + "}]}"),
    ("lowercase-effect", '{"Version":"2012-10-17","Statement":[{"Effect":"deny",' + _STMT + "}]}"),
    ("missing-effect", '{"Version":"2012-10-17","Statement":[{' + _STMT + "}]}"),
    (
        "missing-action",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Resource":"*"}]}',
    ),
    (
        "missing-resource",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*",'
        '"Action":"glacier:DeleteArchive"}]}',
    ),
    (
        "missing-principal",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny",'
        '"Action":"glacier:DeleteArchive","Resource":"*"}]}',
    ),
    (
        "action-without-service",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*",'
        '"Action":"DeleteArchive","Resource":"*"}]}',
    ),
    (
        "resource-not-arn",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*",'
        '"Action":"glacier:DeleteArchive","Resource":"vaults/v1"}]}',
    ),
    (
        "bad-principal",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"bob"},'
        '"Action":"glacier:DeleteArchive","Resource":"*"}]}',
    ),
    (
        "unknown-operator",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny",' + _STMT + ","
        '"Condition":{"NumericAlmostEquals":{"glacier:ArchiveAgeInDays":"365"}}}]}',
    ),
    (
        "non-numeric-numeric-value",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny",' + _STMT + ","
        '"Condition":{"NumericLessThan":{"glacier:ArchiveAgeInDays":"a year"}}}]}',
    ),
    (
        "condition-not-object",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny",' + _STMT + ',"Condition":[]}]}',
    ),
    ("bad-version", '{"Version":"2020-01-01","Statement":[{"Effect":"Deny",' + _STMT + "}]}"),
    (
        "unknown-top-member",
        '{"Version":"2012-10-17","Statements":[{"Effect":"Deny",' + _STMT + "}]}",
    ),
    (
        "duplicate-member",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Effect":"Deny",' + _STMT + "}]}",
    ),
    (
        "duplicate-sid",
        '{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Deny",' + _STMT + "},"
        '{"Sid":"a","Effect":"Deny",' + _STMT + "}]}",
    ),
]


@pytest.mark.parametrize(
    "policy", [p for _, p in MALFORMED_POLICIES], ids=[i for i, _ in MALFORMED_POLICIES]
)
def test_malformed_policies_are_rejected_and_change_nothing(api: Api, policy: str) -> None:
    create_vault(api, "v1")
    good = deny_policy(arn("v1"))
    assert_empty(set_policy(api, "v1", good), 204)

    resp = set_policy(api, "v1", policy)
    assert_error(resp, 400, "InvalidParameterValueException")
    assert resp.json()["type"] == "Client"
    assert resp.json()["message"]
    assert_policy(api, "v1", good)

    assert_error(initiate_lock(api, "v1", policy), 400, "InvalidParameterValueException")
    assert_no_lock(api, "v1")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{}", "MissingParameterValueException"),
        (b"", "MissingParameterValueException"),
        (b'{"Policy": null}', "MissingParameterValueException"),  # null = absent (spec 1.7)
        (b'{"policy": "{}"}', "MissingParameterValueException"),  # member names are exact
        (b'{"Policy": 5}', "SerializationException"),
        (b'{"Policy": true}', "SerializationException"),
        (b'{"Policy": ["{}"]}', "SerializationException"),
        (b'{"Policy": {"Version": "2012-10-17", "Statement": []}}', "SerializationException"),
        (b"not json", "SerializationException"),
        (b"[]", "SerializationException"),
        (b'{"Policy": "x"', "SerializationException"),
    ],
    ids=[
        "empty-object",
        "no-body",
        "null",
        "lowercase-member",
        "number",
        "boolean",
        "list",
        "object-not-string",
        "not-json",
        "array-body",
        "truncated-body",
    ],
)
def test_bad_request_bodies_change_nothing(api: Api, body: bytes, code: str) -> None:
    create_vault(api, "v1")
    good = deny_policy(arn("v1"))
    assert_empty(set_policy(api, "v1", good), 204)

    assert_error(api("PUT", "/-/vaults/v1/access-policy", body=body), 400, code)
    assert_policy(api, "v1", good)

    assert_error(api("POST", "/-/vaults/v1/lock-policy", body=body), 400, code)
    assert_no_lock(api, "v1")


@pytest.mark.parametrize("sub", ["access-policy", "lock-policy"])
def test_lone_surrogate_in_policy_is_a_client_error(api: Api, sub: str) -> None:
    """`\\ud800` is legal JSON escape syntax but not encodable text: a 400, never a 500."""
    create_vault(api, "v1")
    method = "PUT" if sub == "access-policy" else "POST"
    resp = api(method, f"/-/vaults/v1/{sub}", body=b'{"Policy": "\\ud800"}')
    assert_error(resp, 400, "InvalidParameterValueException")
    assert_error(api("GET", f"/-/vaults/v1/{sub}"), 404, "ResourceNotFoundException")


# ---------------------------------------------------------------------------------------
# Unknown vaults and the read-everything pattern of Terraform / audit tools


OPERATIONS = [
    ("SetVaultAccessPolicy", "PUT", "access-policy", True),
    ("GetVaultAccessPolicy", "GET", "access-policy", False),
    ("DeleteVaultAccessPolicy", "DELETE", "access-policy", False),
    ("InitiateVaultLock", "POST", "lock-policy", True),
    ("GetVaultLock", "GET", "lock-policy", False),
    ("AbortVaultLock", "DELETE", "lock-policy", False),
    ("CompleteVaultLock", "POST", "lock-policy/AE863rKkWZU53SLW5be4DUcW", False),
    ("GetVaultNotifications", "GET", "notification-configuration", False),
    ("ListTagsForVault", "GET", "tags", False),
]


@pytest.mark.parametrize(
    ("method", "sub", "with_body"), [o[1:] for o in OPERATIONS], ids=[o[0] for o in OPERATIONS]
)
def test_unknown_vault_is_404_for_every_operation(
    api: Api, method: str, sub: str, with_body: bool
) -> None:
    body = policy_body(deny_policy()) if with_body else b""
    assert_error(
        api(method, f"/-/vaults/nope/{sub}", body=body),
        404,
        "ResourceNotFoundException",
        not_found("nope"),
    )
    # A deleted vault is as unknown as one never created.
    create_vault(api, "gone")
    assert api("DELETE", "/-/vaults/gone").status_code == 204
    assert_error(
        api(method, f"/-/vaults/gone/{sub}", body=body),
        404,
        "ResourceNotFoundException",
        not_found("gone"),
    )


@pytest.mark.parametrize("sub", ["access-policy", "lock-policy"])
def test_unknown_vault_wins_over_a_bad_policy(api: Api, sub: str) -> None:
    """Spec 1.8 [R]: vault existence (404) is checked before the body's values (400)."""
    method = "PUT" if sub == "access-policy" else "POST"
    for body in (b"{}", b'{"Policy": 5}', policy_body("not a policy")):
        assert_error(
            api(method, f"/-/vaults/nope/{sub}", body=body),
            404,
            "ResourceNotFoundException",
            not_found("nope"),
        )


def test_illegal_vault_name_is_echoed_raw(api: Api) -> None:
    for sub in ("access-policy", "lock-policy"):
        assert_error(
            api("GET", f"/-/vaults/bad%20name/{sub}"),
            404,
            "ResourceNotFoundException",
            "Vault not found for ARN: bad name",
        )


def test_audit_reads_of_a_fresh_vault(api: Api) -> None:
    """What `terraform plan` / audit tools read: 404s for absent documents, never a 500."""
    create_vault(api, "fresh")
    for sub in ("access-policy", "lock-policy", "notification-configuration"):
        resp = api("GET", f"/-/vaults/fresh/{sub}")
        assert_error(resp, 404, "ResourceNotFoundException")
        body = resp.json()
        assert set(body) == {"code", "message", "type"}
        assert body["type"] == "Client"
        assert body["message"]
        assert resp.headers["x-amzn-requestid"]
    assert_json(api("GET", "/-/vaults/fresh/tags"), {"Tags": {}})

    for sub in ("access-policy", "lock-policy", "notification-configuration", "tags"):
        resp = api("GET", f"/-/vaults/absent/{sub}")
        assert_error(resp, 404, "ResourceNotFoundException", not_found("absent"))
        assert set(resp.json()) == {"code", "message", "type"}
        assert resp.json()["type"] == "Client"


# ---------------------------------------------------------------------------------------
# Vault lock state machine (spec 2.11-2.14, 6.2)


def test_lock_state_machine(api: Api, clock: ManualClock) -> None:
    clock.set(START)
    create_vault(api, "v1")
    assert_no_lock(api, "v1")
    policy = ODD_POLICY

    resp = initiate_lock(api, "v1", policy)
    assert_empty(resp, 201)
    lock_id = resp.headers["x-amz-lock-id"]
    assert LOCK_ID.match(lock_id), lock_id
    in_progress = {
        "Policy": policy,
        "State": "InProgress",
        "CreationDate": START_ISO,
        "ExpirationDate": START_PLUS_24H_ISO,
    }
    assert_json(get_lock(api, "v1"), in_progress)

    # A second Initiate while InProgress: 403, and the lock (and its id) stay.
    assert_error(initiate_lock(api, "v1", deny_policy(arn("v1"))), 403, "AccessDeniedException")
    # A bad policy is a 400 even while InProgress (syntax before state, spec 1.8 [R]).
    assert_error(initiate_lock(api, "v1", "[]"), 400, "InvalidParameterValueException")
    # A wrong lock id while InProgress: 400, nothing changes.
    other_id = "A" * 24 if lock_id != "A" * 24 else "B" * 24
    for wrong in (other_id, lock_id.swapcase() if lock_id.swapcase() != lock_id else other_id):
        assert_error(complete_lock(api, "v1", wrong), 400, "InvalidParameterValueException")
    assert_json(get_lock(api, "v1"), in_progress)

    advance(api, 3600)
    assert_empty(complete_lock(api, "v1", lock_id), 204)
    locked = {
        "Policy": policy,
        "State": "Locked",
        "CreationDate": START_ISO,  # when it entered InProgress, not when it locked
        "ExpirationDate": None,
    }
    assert_json(get_lock(api, "v1"), locked)  # ExpirationDate: an explicit null

    # Everything that may not change a Locked lock.
    assert_empty(complete_lock(api, "v1", lock_id), 204)  # the locking id is idempotent
    assert_error(complete_lock(api, "v1", other_id), 403, "AccessDeniedException")
    assert_error(abort_lock(api, "v1"), 403, "AccessDeniedException")
    assert_error(initiate_lock(api, "v1", deny_policy(arn("v1"))), 403, "AccessDeniedException")
    assert_error(initiate_lock(api, "v1", policy), 403, "AccessDeniedException")
    assert_empty(complete_lock(api, "v1", lock_id), 204)
    assert_json(get_lock(api, "v1"), locked)

    # Locked is for ever: no expiry, and maintenance leaves it alone.
    advance(api, 400 * DAY)
    assert api.admin("POST", "/maintenance").json()["locks_expired"] == 0
    assert_json(get_lock(api, "v1"), locked)
    assert_empty(complete_lock(api, "v1", lock_id), 204)

    # The access policy is a separate document: it can still come and go.
    assert_empty(set_policy(api, "v1", deny_policy(arn("v1"))), 204)
    assert_empty(delete_policy(api, "v1"), 204)
    assert_json(get_lock(api, "v1"), locked)


def test_abort_in_progress_and_abort_or_complete_without_lock(api: Api) -> None:
    create_vault(api, "v1")
    assert_empty(abort_lock(api, "v1"), 204)  # no lock at all: still 204 (spec 2.13)
    assert_error(
        complete_lock(api, "v1", "AE863rKkWZU53SLW5be4DUcW"),
        400,
        "InvalidParameterValueException",
    )
    assert_no_lock(api, "v1")

    lock_id = start_lock(api, "v1")
    assert_empty(abort_lock(api, "v1"), 204)
    assert_no_lock(api, "v1")
    assert_empty(abort_lock(api, "v1"), 204)
    # The aborted id is dead; a new lock gets a new id and can be locked.
    assert_error(complete_lock(api, "v1", lock_id), 400, "InvalidParameterValueException")
    assert_no_lock(api, "v1")
    new_id = start_lock(api, "v1")
    assert new_id != lock_id
    assert_error(complete_lock(api, "v1", lock_id), 400, "InvalidParameterValueException")
    assert_empty(complete_lock(api, "v1", new_id), 204)
    assert get_lock(api, "v1").json()["State"] == "Locked"
    # The aborted lock's id is just "another id" now.
    assert_error(complete_lock(api, "v1", lock_id), 403, "AccessDeniedException")


def test_invalid_policy_on_initiate_creates_no_lock(api: Api) -> None:
    create_vault(api, "v1")
    assert_error(initiate_lock(api, "v1", "{}"), 400, "InvalidParameterValueException")
    assert_no_lock(api, "v1")
    assert_error(
        api("POST", "/-/vaults/v1/lock-policy", body=b"{}"), 400, "MissingParameterValueException"
    )
    assert_error(
        api("POST", "/-/vaults/v1/lock-policy", body=b'{"Policy": 5}'),
        400,
        "SerializationException",
    )
    assert_no_lock(api, "v1")
    assert_empty(abort_lock(api, "v1"), 204)
    assert_error(
        complete_lock(api, "v1", "AE863rKkWZU53SLW5be4DUcW"),
        400,
        "InvalidParameterValueException",
    )


def test_lock_ids_differ_between_vaults(api: Api) -> None:
    create_vault(api, "v1")
    create_vault(api, "v2")
    first = start_lock(api, "v1")
    second = start_lock(api, "v2")
    assert first != second
    # One vault's id does not complete the other's lock.
    assert_error(complete_lock(api, "v2", first), 400, "InvalidParameterValueException")
    assert get_lock(api, "v2").json()["State"] == "InProgress"
    assert_empty(complete_lock(api, "v1", first), 204)
    assert get_lock(api, "v2").json()["State"] == "InProgress"


# ---------------------------------------------------------------------------------------
# Expiry of the lock id (spec 6.2: 24 hours after Initiate)


def test_in_progress_lock_expires_after_24_hours(api: Api, clock: ManualClock) -> None:
    clock.set(START)
    create_vault(api, "v1")
    policy = deny_policy(arn("v1"))
    lock_id = start_lock(api, "v1", policy)

    advance(api, DAY - 1)
    assert_json(
        get_lock(api, "v1"),
        {
            "Policy": policy,
            "State": "InProgress",
            "CreationDate": START_ISO,
            "ExpirationDate": START_PLUS_24H_ISO,
        },
    )
    assert_error(initiate_lock(api, "v1", policy), 403, "AccessDeniedException")

    advance(api, 1)
    assert_no_lock(api, "v1")
    assert_error(complete_lock(api, "v1", lock_id), 400, "InvalidParameterValueException")
    assert_no_lock(api, "v1")
    assert_empty(abort_lock(api, "v1"), 204)

    resp = initiate_lock(api, "v1", policy)
    assert_empty(resp, 201)
    new_id = resp.headers["x-amz-lock-id"]
    assert LOCK_ID.match(new_id)
    assert new_id != lock_id
    now = START + timedelta(days=1)
    assert_json(
        get_lock(api, "v1"),
        {
            "Policy": policy,
            "State": "InProgress",
            "CreationDate": "2099-03-05T05:06:07.891Z",
            "ExpirationDate": "2099-03-06T05:06:07.891Z",
        },
    )
    assert clock.now() == now
    assert_error(complete_lock(api, "v1", lock_id), 400, "InvalidParameterValueException")
    assert_empty(complete_lock(api, "v1", new_id), 204)
    assert get_lock(api, "v1").json()["State"] == "Locked"


def test_complete_just_before_expiry_locks_for_good(api: Api) -> None:
    create_vault(api, "v1")
    lock_id = start_lock(api, "v1")
    advance(api, DAY - 0.5)
    assert_empty(complete_lock(api, "v1", lock_id), 204)
    advance(api, 1)
    body = get_lock(api, "v1").json()
    assert body["State"] == "Locked"
    assert body["ExpirationDate"] is None


def test_maintenance_purges_exactly_the_expired_lock(api: Api) -> None:
    create_vault(api, "expiring")
    create_vault(api, "kept")
    start_lock(api, "expiring")
    kept_id = start_lock(api, "kept")
    assert_empty(complete_lock(api, "kept", kept_id), 204)

    assert api.admin("POST", "/maintenance").json()["locks_expired"] == 0
    advance(api, DAY - 1)
    assert api.admin("POST", "/maintenance").json()["locks_expired"] == 0
    assert get_lock(api, "expiring").json()["State"] == "InProgress"

    advance(api, 1)
    report = api.admin("POST", "/maintenance")
    assert report.status_code == 200, report.text
    assert report.json()["locks_expired"] == 1
    assert api.admin("POST", "/maintenance").json()["locks_expired"] == 0
    assert_no_lock(api, "expiring")
    assert get_lock(api, "kept").json()["State"] == "Locked"


# ---------------------------------------------------------------------------------------
# Enforcement while InProgress, and DeleteVault


def test_in_progress_lock_is_enforced_until_aborted_or_expired(api: Api) -> None:
    create_vault(api, "v1")
    start_lock(api, "v1", unconditional_deny("v1", "glacier:DeleteVault"))
    denied = (
        f"User: arn:aws:iam::{ACCOUNT_ID}:root is not authorized to perform: "
        f"glacier:DeleteVault on resource: {arn('v1')} with an explicit deny"
    )
    assert_error(api("DELETE", "/-/vaults/v1"), 403, "AccessDeniedException", denied)
    assert_empty(abort_lock(api, "v1"), 204)
    assert_empty(api("DELETE", "/-/vaults/v1"), 204)

    create_vault(api, "v2")
    start_lock(api, "v2", unconditional_deny("v2", "glacier:DeleteVault"))
    assert_error(api("DELETE", "/-/vaults/v2"), 403, "AccessDeniedException")
    advance(api, DAY)
    assert_empty(api("DELETE", "/-/vaults/v2"), 204)


def test_locked_policy_denying_delete_vault_keeps_the_vault(api: Api) -> None:
    create_vault(api, "v1")
    policy = unconditional_deny("v1", "glacier:DeleteVault")
    lock_id = start_lock(api, "v1", policy)
    assert_empty(complete_lock(api, "v1", lock_id), 204)
    assert_error(api("DELETE", "/-/vaults/v1"), 403, "AccessDeniedException")
    assert api("GET", "/-/vaults/v1").status_code == 200
    assert get_lock(api, "v1").json()["Policy"] == policy


@pytest.mark.parametrize("state", ["InProgress", "Locked"])
def test_delete_vault_deletes_its_policy_and_lock(api: Api, state: str) -> None:
    create_vault(api, "v1")
    assert_empty(set_policy(api, "v1", ODD_POLICY), 204)
    lock_id = start_lock(api, "v1", deny_policy(arn("v1")))
    if state == "Locked":
        assert_empty(complete_lock(api, "v1", lock_id), 204)
    assert get_lock(api, "v1").json()["State"] == state

    assert_empty(api("DELETE", "/-/vaults/v1"), 204)
    for sub in ("access-policy", "lock-policy"):
        assert_error(
            api("GET", f"/-/vaults/v1/{sub}"), 404, "ResourceNotFoundException", not_found("v1")
        )

    create_vault(api, "v1")  # same name, a new vault: nothing carried over
    assert_error(get_policy(api, "v1"), 404, "ResourceNotFoundException")
    assert_no_lock(api, "v1")
    assert_error(complete_lock(api, "v1", lock_id), 400, "InvalidParameterValueException")
    assert_empty(abort_lock(api, "v1"), 204)
    assert api.admin("POST", "/maintenance").json()["locks_expired"] == 0
    # And the new vault can be given documents of its own.
    new_id = start_lock(api, "v1")
    assert new_id != lock_id
    assert_empty(complete_lock(api, "v1", new_id), 204)
