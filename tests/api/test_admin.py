"""The admin API (docs/admin-api.md): authentication per RFC 6750, clear 4xx for
unknown or finished things, the inventory hook's answer, and the documentation
kept in step with the route table."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from api.conftest import make_settings
from openglacier.admin.api import ROUTES
from openglacier.clock import ManualClock
from openglacier.server import Runtime, build_runtime
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, ADMIN_TOKEN, Api
from support.jobs import describe, start_job, upload
from support.services import fresh_pg_database
from support.signing import Signer

V = "v"
DOC = Path(__file__).resolve().parents[2] / "docs" / "admin-api.md"


@pytest.fixture
def timing() -> str:
    return "aws"  # jobs and inventories wait for the admin hooks


@pytest.fixture(autouse=True)
def vault(api: Api) -> None:
    assert api("PUT", f"/-/vaults/{V}").status_code == 201


def admin_raw(client: TestClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **kwargs.pop("headers", {})}
    return client.request(method, "/_admin" + path, headers=headers, **kwargs)


# --- authentication --------------------------------------------------------------------------


def test_missing_token_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    resp = client.post("/_admin/maintenance")
    assert_error(resp, 401, "MissingAuthenticationTokenException")
    assert resp.headers["www-authenticate"] == 'Bearer realm="openglacier-admin"'
    assert resp.headers["x-amzn-requestid"]


def test_other_schemes_count_as_no_token(client: TestClient, signer: Signer) -> None:
    # A Glacier signature is not an admin credential, and neither is Basic.
    signed = signer.sign("POST", "/_admin/maintenance")
    assert_error(
        client.post(signed.url, headers=signed.headers), 401, "MissingAuthenticationTokenException"
    )
    basic = client.post("/_admin/maintenance", headers={"Authorization": "Basic YTpi"})
    assert_error(basic, 401, "MissingAuthenticationTokenException")
    assert_error(
        client.post("/_admin/maintenance", headers={"Authorization": "Bearer "}),
        401,
        "MissingAuthenticationTokenException",
    )


def test_wrong_token_is_401_invalid_token(client: TestClient) -> None:
    resp = client.post("/_admin/maintenance", headers={"Authorization": "Bearer nope"})
    assert_error(resp, 401, "UnrecognizedClientException", "Admin API: invalid admin token")
    assert resp.headers["www-authenticate"] == (
        'Bearer realm="openglacier-admin", error="invalid_token"'
    )
    assert resp.headers["x-amzn-requestid"]


def test_health_needs_no_token_and_unknown_paths_need_one(client: TestClient) -> None:
    assert client.get("/_admin/health").json() == {"status": "ok"}
    assert client.post("/_admin/no-such-thing").status_code == 401
    assert_error(admin_raw(client, "POST", "/no-such-thing"), 404, "ResourceNotFoundException")
    assert_error(admin_raw(client, "GET", "/maintenance"), 405, "InvalidParameterValueException")


# --- jobs ------------------------------------------------------------------------------------


def test_complete_or_fail_an_unknown_job_is_404(api: Api) -> None:
    for action in ("complete", "fail"):
        assert_error(
            api.admin("POST", f"/jobs/NOSUCHJOB/{action}"),
            404,
            "ResourceNotFoundException",
            "Admin API: no such job: NOSUCHJOB",
        )


def test_complete_or_fail_a_finished_job_is_409(api: Api) -> None:
    archive_id = upload(api, V, b"data")
    job = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    assert api.admin("POST", f"/jobs/{job}/complete").json() == {"completed": True}
    for action in ("complete", "fail"):
        assert_error(
            api.admin("POST", f"/jobs/{job}/{action}"),
            409,
            "ConflictException",
            f"Admin API: job {job} has already finished (Succeeded)",
        )
    assert describe(api, V, job)["StatusCode"] == "Succeeded"  # unchanged


def test_fail_message_must_be_a_string(api: Api) -> None:
    archive_id = upload(api, V, b"data")
    job = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    for message in (5, "", ["x"]):
        resp = api.admin("POST", f"/jobs/{job}/fail", {"message": message})
        assert_error(resp, 400, "InvalidParameterValueException")
    assert describe(api, V, job)["StatusCode"] == "InProgress"


# --- inventory -------------------------------------------------------------------------------


def test_inventory_of_a_current_vault_says_so_with_its_facts(api: Api) -> None:
    upload(api, V, b"x" * 100)
    body = {"account_id": ACCOUNT_ID, "vault": V}
    first = api.admin("POST", "/inventory", body).json()
    assert first["taken"] is True
    assert (first["NumberOfArchives"], first["SizeInBytes"]) == (1, 100 + 32768)
    assert "reason" not in first
    again = api.admin("POST", "/inventory", body).json()
    assert again == {
        "taken": False,
        "reason": "current",
        "InventoryDate": first["InventoryDate"],
        "NumberOfArchives": 1,
        "SizeInBytes": 100 + 32768,
    }
    described = api("GET", f"/-/vaults/{V}").json()
    assert described["LastInventoryDate"] == first["InventoryDate"]
    assert described["SizeInBytes"] == again["SizeInBytes"]


def test_inventory_of_a_vault_never_written_to(api: Api) -> None:
    resp = api.admin("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": V})
    assert resp.json() == {
        "taken": False,
        "reason": "current",
        "InventoryDate": None,
        "NumberOfArchives": 0,
        "SizeInBytes": 0,
    }


def test_unknown_vault_and_account_are_404_with_clear_messages(api: Api) -> None:
    arn = f"arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/nope"
    for resp in (
        api.admin("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": "nope"}),
        api.admin("GET", f"/vaults/{ACCOUNT_ID}/nope/archives"),
    ):
        assert_error(resp, 404, "ResourceNotFoundException", f"Vault not found for ARN: {arn}")
    unknown = "Unknown account: 999999999999 has no access key and no vault in us-east-1"
    for resp in (
        api.admin("POST", "/inventory", {"account_id": "999999999999", "vault": V}),
        api.admin("GET", f"/vaults/999999999999/{V}/archives"),
    ):
        assert_error(resp, 404, "ResourceNotFoundException", unknown)


# --- bad input: 400, never 500 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": 5}),
        ("POST", "/inventory", {"account_id": ACCOUNT_ID}),
        ("POST", "/inventory", {"account_id": 7, "vault": V}),
        ("POST", "/clock/advance", {"seconds": True}),
        ("POST", "/clock/advance", {"seconds": 1e300}),
        ("POST", "/clock/advance", {"seconds": -1}),
        ("POST", "/clock/advance", {"seconds": "60"}),
        ("GET", "/notifications?state=bogus", None),
        ("GET", "/notifications?limit=0", None),
        ("GET", f"/vaults/{ACCOUNT_ID}/{V}/archives?limit=x", None),
        ("POST", "/jobs/%ED%A0%80/complete", None),
    ],
)
def test_bad_parameters_are_400(api: Api, method: str, path: str, body: Any) -> None:
    assert_error(api.admin(method, path, body), 400, "InvalidParameterValueException")


def test_infinite_advance_is_400(client: TestClient) -> None:
    # Infinity is not JSON (refused when parsed); were it let through, timedelta overflows.
    resp = admin_raw(client, "POST", "/clock/advance", content=b'{"seconds": Infinity}')
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] in ("SerializationException", "InvalidParameterValueException")


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_bad_json_is_400(client: TestClient, content: bytes) -> None:
    resp = admin_raw(client, "POST", "/inventory", content=content)
    assert_error(resp, 400, "SerializationException")


# --- documentation ---------------------------------------------------------------------------


def test_every_route_is_documented() -> None:
    doc = DOC.read_text()
    headings = set(re.findall(r"^### (GET|POST|PUT|DELETE) (/_admin/\S+)", doc, re.MULTILINE))
    routes = {(r.method, r.path) for r in ROUTES}
    assert routes == headings, "docs/admin-api.md must have one '### METHOD /path' per route"
    assert "TOKEN=$(cat data/admin-token)" in doc


def test_module_docstring_lists_every_route() -> None:
    import openglacier.admin.api as module

    lines = (module.__doc__ or "").splitlines()
    listed = {
        (line.split()[0], line.split()[1].split("?")[0]) for line in lines if line[:4] == "    "
    }
    assert {(r.method, r.path) for r in ROUTES} <= listed


# --- text that PostgreSQL cannot hold --------------------------------------------------------


@pytest.fixture
def pg_runtime(tmp_path: Path, clock: ManualClock, pg_admin: URL) -> Iterator[Runtime]:
    with fresh_pg_database(pg_admin) as url:
        settings = make_settings(tmp_path, timing="aws", clock="manual", metadata_url=url)
        rt = build_runtime(settings, clock=clock)
        try:
            yield rt
        finally:
            rt.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "path",
    [
        "/jobs/A%00B/complete",
        "/jobs/A%00B/fail",
        f"/vaults/{ACCOUNT_ID}%00/{V}/archives",
        f"/vaults/{ACCOUNT_ID}/{V}/archives?after=a%00b",
        "/jobs/%ED%A0%80/complete",
    ],
)
def test_nul_and_surrogates_in_paths_and_queries_are_400_on_postgres(
    pg_runtime: Runtime, path: str
) -> None:
    with TestClient(pg_runtime.app, base_url="http://testserver") as client:
        method = "GET" if "/archives" in path else "POST"
        resp = admin_raw(client, method, path)
        assert_error(resp, 400, "InvalidParameterValueException")
