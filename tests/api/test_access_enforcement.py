"""Vault policies decide every vault-scoped request (spec 1.3, 6.1-6.3), with hand-built
requests: the account segment, cross-account grants, each condition key the server
computes, and the order of the policy check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from openglacier.clock import ManualClock
from openglacier.records import Credential
from openglacier.server import Runtime
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, Api
from support.jobs import advance, upload
from support.signing import Signer, upload_headers

B_ACCOUNT = "444455556666"
B_KEY = "OGAKTENANTBTENANTBBB"
B_SECRET = "tenant-b-secret-0123456789abcdefghijklmn"
DAY = 86_400


@pytest.fixture
def api_b(runtime: Runtime, client: TestClient) -> Api:
    with runtime.services.deps.store.transaction() as tx:
        tx.put_credential(
            Credential(B_KEY, B_SECRET, B_ACCOUNT, datetime(2026, 1, 1, tzinfo=UTC), "tenant B")
        )
    return Api(client, Signer("http://testserver", B_KEY, B_SECRET))


def js(value: Any) -> bytes:
    return json.dumps(value).encode()


def arn(vault: str, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:glacier:us-east-1:{account}:vaults/{vault}"


def statement(effect: str, action: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Principal": "*", "Effect": effect, "Action": action, "Resource": "*", **extra}


def set_policy(api: Api, vault: str, *statements: dict[str, Any]) -> None:
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    resp = api("PUT", f"/-/vaults/{vault}/access-policy", body=js({"Policy": document}))
    assert resp.status_code == 204, resp.text


def denial(action: str, vault: str, account: str = ACCOUNT_ID, explicit: bool = True) -> str:
    message = (
        f"User: arn:aws:iam::{account}:root is not authorized to perform: glacier:{action} "
        f"on resource: {arn(vault)}"
    )
    return message + " with an explicit deny" if explicit else message


@pytest.fixture
def vault(api: Api) -> str:
    assert api("PUT", "/-/vaults/v1").status_code == 201
    return "v1"


# --- the account segment ------------------------------------------------------------


@pytest.mark.parametrize(
    "segment",
    ["12345", "abcdefghijkl", "1234567890123", "".join(chr(0xFF10 + d % 10) for d in range(1, 13))],
)
def test_malformed_account_segment_is_denied(api: Api, vault: str, segment: str) -> None:
    assert_error(api("GET", f"/{segment}/vaults/{vault}"), 403, "AccessDeniedException")


def test_other_account_without_policy_is_denied_implicitly(api_b: Api, vault: str) -> None:
    resp = api_b("GET", f"/{ACCOUNT_ID}/vaults/{vault}")
    assert_error(
        resp, 403, "AccessDeniedException", denial("DescribeVault", vault, B_ACCOUNT, False)
    )


def test_other_account_cannot_probe_vault_names(api: Api, api_b: Api) -> None:
    """Missing vaults: 404 for the owner, 403 for everyone else (docs/decisions.md)."""
    assert_error(api("GET", "/-/vaults/nope"), 404, "ResourceNotFoundException")
    assert_error(api_b("GET", f"/{ACCOUNT_ID}/vaults/nope"), 403, "AccessDeniedException")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/vaults"),
        ("PUT", "/vaults/v1"),
        ("GET", "/policies/data-retrieval"),
        ("GET", "/provisioned-capacity"),
        ("POST", "/provisioned-capacity"),
    ],
)
def test_account_level_operations_cannot_be_granted(
    api: Api, api_b: Api, vault: str, method: str, path: str
) -> None:
    set_policy(api, vault, statement("Allow", "glacier:*", Principal={"AWS": B_ACCOUNT}))
    assert_error(api_b(method, f"/{ACCOUNT_ID}{path}"), 403, "AccessDeniedException")


def test_grant_lets_b_upload_into_a_vault_and_nothing_else(
    api: Api, api_b: Api, vault: str
) -> None:
    set_policy(
        api,
        vault,
        statement(
            "Allow", "glacier:UploadArchive", Principal={"AWS": f"arn:aws:iam::{B_ACCOUNT}:root"}
        ),
    )
    body = b"from tenant B"
    resp = api_b(
        "POST",
        f"/{ACCOUNT_ID}/vaults/{vault}/archives",
        body=body,
        headers=upload_headers(body),
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"].startswith(f"/{ACCOUNT_ID}/vaults/{vault}/archives/")
    # The archive is A's: A sees it in the live count; B's own account has no such vault.
    live = api.admin("GET", f"/vaults/{ACCOUNT_ID}/{vault}/archives")
    assert live.status_code == 200, live.text
    assert [a["ArchiveId"] for a in live.json()["archives"]] == [resp.headers["x-amz-archive-id"]]
    assert_error(api_b("GET", f"/-/vaults/{vault}"), 404, "ResourceNotFoundException")
    assert_error(api_b("GET", f"/{ACCOUNT_ID}/vaults/{vault}/tags"), 403, "AccessDeniedException")


def test_grant_to_another_account_does_not_cover_b(api: Api, api_b: Api, vault: str) -> None:
    set_policy(api, vault, statement("Allow", "glacier:*", Principal={"AWS": "777788889999"}))
    assert_error(api_b("GET", f"/{ACCOUNT_ID}/vaults/{vault}"), 403, "AccessDeniedException")


# --- condition keys ------------------------------------------------------------------


def test_archive_age_applies_to_initiate_job_archive_id(
    api: Api, vault: str, clock: ManualClock
) -> None:
    set_policy(
        api,
        vault,
        statement(
            "Deny",
            "glacier:InitiateJob",
            Condition={"NumericLessThan": {"glacier:ArchiveAgeInDays": "30"}},
        ),
    )
    archive = upload(api, vault, b"young")
    wrapped = {"jobParameters": {"Type": "archive-retrieval", "ArchiveId": archive}}
    resp = api("POST", f"/-/vaults/{vault}/jobs", body=js(wrapped))
    assert_error(resp, 403, "AccessDeniedException", denial("InitiateJob", vault))
    # An inventory job names no archive: the key is absent and the Deny does not apply.
    inventory = api("POST", f"/-/vaults/{vault}/jobs", body=b'{"Type": "inventory-retrieval"}')
    assert inventory.status_code == 202, inventory.text
    advance(api, 30 * DAY)
    resp = api("POST", f"/-/vaults/{vault}/jobs", body=js(wrapped["jobParameters"]))
    assert resp.status_code == 202, resp.text


def test_request_tags_and_tag_keys(api: Api, vault: str) -> None:
    set_policy(
        api,
        vault,
        statement(
            "Deny",
            "glacier:AddTagsToVault",
            Condition={"StringEquals": {"aws:RequestTag/owner": "mallory"}},
        ),
        statement(
            "Deny",
            "glacier:RemoveTagsFromVault",
            Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["LegalHold"]}},
        ),
    )
    add = f"/-/vaults/{vault}/tags?operation=add"
    remove = f"/-/vaults/{vault}/tags?operation=remove"
    denied = api("POST", add, body=js({"Tags": {"owner": "mallory"}}))
    assert_error(denied, 403, "AccessDeniedException", denial("AddTagsToVault", vault))
    tags = {"owner": "alice", "LegalHold": "true"}
    assert api("POST", add, body=js({"Tags": tags})).status_code == 204
    denied = api("POST", remove, body=js({"TagKeys": ["owner", "LegalHold"]}))
    assert_error(denied, 403, "AccessDeniedException", denial("RemoveTagsFromVault", vault))
    assert api("POST", remove, body=js({"TagKeys": ["owner"]})).status_code == 204
    assert api("GET", f"/-/vaults/{vault}/tags").json() == {"Tags": {"LegalHold": "true"}}


def test_current_time_condition_follows_the_clock(api: Api, vault: str, clock: ManualClock) -> None:
    cutoff = clock.now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
    archive = upload(api, vault, b"x")
    set_policy(
        api,
        vault,
        statement(
            "Deny",
            "glacier:DeleteArchive",
            Condition={"DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}},
        ),
    )
    assert_error(
        api("DELETE", f"/-/vaults/{vault}/archives/{archive}"), 403, "AccessDeniedException"
    )
    set_policy(
        api,
        vault,
        statement(
            "Deny", "glacier:DeleteArchive", Condition={"DateLessThan": {"aws:CurrentTime": cutoff}}
        ),
    )
    assert api("DELETE", f"/-/vaults/{vault}/archives/{archive}").status_code == 204


def test_resource_arn_and_not_action(api: Api, vault: str) -> None:
    assert api("PUT", "/-/vaults/v2").status_code == 201
    # Denies everything but reads of policies, on v2 only; the policy sits on v1.
    set_policy(
        api,
        vault,
        {
            "Principal": "*",
            "Effect": "Deny",
            "NotAction": ["glacier:Get*", "glacier:*AccessPolicy"],
            "Resource": arn("v2"),
        },
    )
    assert api("GET", f"/-/vaults/{vault}").status_code == 200  # resource does not match
    set_policy(
        api,
        vault,
        {"Principal": "*", "Effect": "Deny", "NotAction": "glacier:Get*", "Resource": arn(vault)},
    )
    assert_error(api("GET", f"/-/vaults/{vault}"), 403, "AccessDeniedException")
    assert api("GET", f"/-/vaults/{vault}/access-policy").status_code == 200
    assert_error(api("GET", f"/-/vaults/{vault}/tags"), 403, "AccessDeniedException")
    # The owner can always lift its own access policy, even one that denies that.
    assert api("DELETE", f"/-/vaults/{vault}/access-policy").status_code == 204
    assert api("GET", f"/-/vaults/{vault}").status_code == 200


# --- order and side effects -------------------------------------------------------------


def test_denied_request_changes_nothing(api: Api, vault: str) -> None:
    set_policy(api, vault, statement("Deny", "glacier:AddTagsToVault"))
    resp = api("POST", f"/-/vaults/{vault}/tags?operation=add", body=b'{"Tags": {"a": "b"}}')
    assert_error(resp, 403, "AccessDeniedException")
    assert api("GET", f"/-/vaults/{vault}/tags").json() == {"Tags": {}}


def test_policy_check_precedes_body_validation(api: Api, vault: str) -> None:
    """docs/decisions.md: a denied caller learns nothing about its request's other faults."""
    set_policy(api, vault, statement("Deny", "glacier:AddTagsToVault"))
    resp = api("POST", f"/-/vaults/{vault}/tags?operation=add", body=b"{not json")
    assert_error(resp, 403, "AccessDeniedException")


def test_lock_policy_denies_even_what_the_access_policy_allows(api: Api, vault: str) -> None:
    set_policy(api, vault, statement("Allow", "glacier:DeleteArchive"))
    lock = json.dumps(
        {"Version": "2012-10-17", "Statement": [statement("Deny", "glacier:DeleteArchive")]}
    )
    resp = api("POST", f"/-/vaults/{vault}/lock-policy", body=js({"Policy": lock}))
    assert resp.status_code == 201, resp.text
    archive = upload(api, vault, b"kept")
    delete = api("DELETE", f"/-/vaults/{vault}/archives/{archive}")
    assert_error(delete, 403, "AccessDeniedException", denial("DeleteArchive", vault))
    assert api("DELETE", f"/-/vaults/{vault}/lock-policy").status_code == 204  # abort
    assert api("DELETE", f"/-/vaults/{vault}/archives/{archive}").status_code == 204


def test_lock_policy_never_grants_another_account(api: Api, api_b: Api, vault: str) -> None:
    grant = statement("Allow", "glacier:DescribeVault", Principal={"AWS": B_ACCOUNT})
    lock = json.dumps({"Version": "2012-10-17", "Statement": [grant]})
    assert (
        api("POST", f"/-/vaults/{vault}/lock-policy", body=js({"Policy": lock})).status_code == 201
    )
    assert_error(api_b("GET", f"/{ACCOUNT_ID}/vaults/{vault}"), 403, "AccessDeniedException")


def test_lock_policy_can_deny_the_owner_access_policy_changes(api: Api, vault: str) -> None:
    deny = statement("Deny", ["glacier:SetVaultAccessPolicy", "glacier:DeleteVaultAccessPolicy"])
    lock = json.dumps({"Version": "2012-10-17", "Statement": [deny]})
    assert (
        api("POST", f"/-/vaults/{vault}/lock-policy", body=js({"Policy": lock})).status_code == 201
    )
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement("Allow", "glacier:*")]})
    resp = api("PUT", f"/-/vaults/{vault}/access-policy", body=js({"Policy": document}))
    assert_error(resp, 403, "AccessDeniedException", denial("SetVaultAccessPolicy", vault))


def test_other_account_cannot_manage_the_access_policy_without_a_grant(
    api: Api, api_b: Api, vault: str
) -> None:
    set_policy(
        api, vault, statement("Allow", "glacier:UploadArchive", Principal={"AWS": B_ACCOUNT})
    )
    path = f"/{ACCOUNT_ID}/vaults/{vault}/access-policy"
    assert_error(api_b("DELETE", path), 403, "AccessDeniedException")
    assert api("GET", f"/-/vaults/{vault}/access-policy").status_code == 200
