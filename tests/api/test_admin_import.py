"""The admin import operation (docs/admin-api.md): an archive created under a given
id, description, creation date and tree hash, verified, idempotent, and then an
archive like any other (inventory, retrieval, DeleteArchive)."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from api.conftest import make_settings
from openglacier.clock import ManualClock
from openglacier.ids import ARCHIVE_ID_LEN
from openglacier.server import Runtime, build_runtime
from openglacier.treehash import tree_hash
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, ADMIN_TOKEN, Api
from support.jobs import describe, run_jobs, start_job, upload
from support.services import fresh_pg_database

V = "v"
DATE = "2019-05-01T10:00:00Z"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def runtime(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock, timing: str
) -> Iterator[Runtime]:
    """Both metadata stores: ids and dates reach the database as given."""
    with contextlib.ExitStack() as stack:
        store: dict[str, object] = {}
        if request.param == "postgres":
            pg_admin = request.getfixturevalue("pg_admin")
            store["metadata_url"] = stack.enter_context(fresh_pg_database(pg_admin))
        settings = make_settings(tmp_path, timing=timing, clock="manual", **store)
        rt = build_runtime(settings, clock=clock)
        stack.callback(rt.close)
        yield rt


@pytest.fixture(autouse=True)
def vault(api: Api) -> None:
    assert api("PUT", f"/-/vaults/{V}").status_code == 201


def foreign_id() -> str:
    """An id of AWS's shape that this server never issued."""
    return ("AWS" + secrets.token_urlsafe(120))[:ARCHIVE_ID_LEN]


def send(
    client: TestClient,
    archive_id: str,
    body: bytes,
    *,
    tree: str | None = None,
    date: str | None = DATE,
    description: str | None = "my%20photo%20",
    vault: str = V,
    token: str | None = ADMIN_TOKEN,
) -> httpx.Response:
    headers = {"x-amz-sha256-tree-hash": tree or tree_hash(body)}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if date is not None:
        headers["x-openglacier-creation-date"] = date
    if description is not None:
        headers["x-openglacier-archive-description"] = description
    path = f"/_admin/vaults/{ACCOUNT_ID}/{vault}/archives/{archive_id}/import"
    return client.post(path, content=body, headers=headers)


def live(api: Api) -> list[dict[str, Any]]:
    resp = api.admin("GET", f"/vaults/{ACCOUNT_ID}/{V}/archives")
    assert resp.status_code == 200, resp.text
    return list(resp.json()["archives"])


def test_import_keeps_id_description_date_and_is_retrievable(client: TestClient, api: Api) -> None:
    archive_id, body = foreign_id(), b"hello imported world"
    resp = send(client, archive_id, body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["imported"] is True
    assert resp.json()["ArchiveId"] == archive_id
    [row] = live(api)
    assert row["ArchiveId"] == archive_id
    assert row["ArchiveDescription"] == "my photo "  # percent-decoded, trailing space kept
    assert row["CreationDate"] == "2019-05-01T10:00:00.000Z"
    assert row["SHA256TreeHash"] == tree_hash(body)

    job = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    run_jobs(api)
    assert describe(api, V, job)["StatusCode"] == "Succeeded"
    assert api("GET", f"/-/vaults/{V}/jobs/{job}/output").content == body

    api.admin("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": V})
    inv_job = start_job(api, V, {"Type": "inventory-retrieval"})
    run_jobs(api)
    inventory = json.loads(api("GET", f"/-/vaults/{V}/jobs/{inv_job}/output").content)
    [entry] = inventory["ArchiveList"]
    assert entry["ArchiveId"] == archive_id
    assert entry["CreationDate"] == DATE

    assert api("DELETE", f"/-/vaults/{V}/archives/{archive_id}").status_code == 204
    assert live(api) == []


def test_same_id_same_tree_hash_is_skipped(client: TestClient, api: Api) -> None:
    archive_id, body = foreign_id(), b"twice"
    assert send(client, archive_id, body).status_code == 201
    again = send(client, archive_id, body)
    assert again.status_code == 200, again.text
    assert again.json()["imported"] is False
    assert again.json()["reason"] == "exists"
    assert len(live(api)) == 1


def test_same_id_other_bytes_is_a_conflict(client: TestClient, api: Api) -> None:
    archive_id = foreign_id()
    assert send(client, archive_id, b"first").status_code == 201
    resp = send(client, archive_id, b"second")
    assert_error(resp, 409, "ConflictException")
    assert "exists with another content" in resp.json()["message"]
    assert [a["SHA256TreeHash"] for a in live(api)] == [tree_hash(b"first")]


def test_id_in_another_vault_is_a_conflict(client: TestClient, api: Api) -> None:
    assert api("PUT", "/-/vaults/other").status_code == 201
    archive_id = foreign_id()
    assert send(client, archive_id, b"x", vault="other").status_code == 201
    assert_error(send(client, archive_id, b"x"), 409, "ConflictException")


def test_bytes_not_matching_the_tree_hash_store_nothing(client: TestClient, api: Api) -> None:
    resp = send(client, foreign_id(), b"the bytes", tree=tree_hash(b"other bytes"))
    assert_error(resp, 400, "InvalidParameterValueException")
    assert resp.json()["message"].startswith("Checksum mismatch")
    assert live(api) == []


@pytest.mark.parametrize(
    "archive_id",
    ["short", "A" * (ARCHIVE_ID_LEN + 1), "A" * (ARCHIVE_ID_LEN - 1) + "!", "A" * 137 + "%2F"],
)
def test_malformed_ids_are_refused(client: TestClient, api: Api, archive_id: str) -> None:
    assert_error(send(client, archive_id, b"x"), 400, "InvalidParameterValueException")
    assert live(api) == []


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"date": None}, 400, "MissingParameterValueException"),
        ({"date": "yesterday"}, 400, "InvalidParameterValueException"),
        ({"date": "2019-05-01T10:00:00"}, 400, "InvalidParameterValueException"),
        ({"date": "2999-01-01T00:00:00Z"}, 400, "InvalidParameterValueException"),
        ({"tree": "nothex"}, 400, "InvalidParameterValueException"),
        ({"description": "%FF"}, 400, "InvalidParameterValueException"),
        ({"description": "tab%09"}, 400, "InvalidParameterValueException"),
        ({"vault": "missing"}, 404, "ResourceNotFoundException"),
    ],
)
def test_bad_input_is_a_glacier_error(
    client: TestClient, api: Api, changes: dict[str, Any], status: int, code: str
) -> None:
    assert_error(send(client, foreign_id(), b"x", **changes), status, code)
    assert live(api) == []


def test_empty_body_is_refused(client: TestClient, api: Api) -> None:
    resp = send(client, foreign_id(), b"", tree="0" * 64)
    assert_error(resp, 400, "InvalidParameterValueException")


def test_empty_description_is_kept_apart_from_none(client: TestClient, api: Api) -> None:
    empty, absent = foreign_id(), foreign_id()
    assert send(client, empty, b"a", description="").status_code == 201
    assert send(client, absent, b"b", description=None).status_code == 201
    got = {a["ArchiveId"]: a["ArchiveDescription"] for a in live(api)}
    assert got[empty] == ""
    assert got[absent] in (None, "")


@pytest.mark.parametrize(
    ("token", "code"),
    [(None, "MissingAuthenticationTokenException"), ("nope", "UnrecognizedClientException")],
)
def test_token_is_required(client: TestClient, api: Api, token: str | None, code: str) -> None:
    assert_error(send(client, foreign_id(), b"x", token=token), 401, code)
    assert live(api) == []


def test_an_older_import_joins_an_existing_inventory(client: TestClient, api: Api) -> None:
    uploaded = upload(api, V, b"uploaded today")
    api.admin("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": V})
    imported = foreign_id()
    assert send(client, imported, b"from 2019").status_code == 201
    resp = api.admin("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": V})
    assert resp.json()["NumberOfArchives"] == 2
    job = start_job(api, V, {"Type": "inventory-retrieval"})
    run_jobs(api)
    inventory = json.loads(api("GET", f"/-/vaults/{V}/jobs/{job}/output").content)
    assert [a["ArchiveId"] for a in inventory["ArchiveList"]] == [imported, uploaded]
    described = api("GET", f"/-/vaults/{V}").json()
    assert described["NumberOfArchives"] == 2
