"""Vault rules: names, limits, markers, inventory-driven counts and deletion (spec 2.1-2.4, 5)."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest

from openglacier.clock import ManualClock
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, Api
from support.signing import upload_headers

ARN = f"arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/"


@pytest.mark.parametrize("name", ["bad name", "a" * 256, "ü", "a:b"])
def test_create_rejects_bad_names(api: Api, name: str) -> None:
    resp = api("PUT", "/-/vaults/" + quote(name, safe=""))
    assert_error(resp, 400, "InvalidParameterValueException")


def test_create_is_idempotent(api: Api) -> None:
    first = api("PUT", "/-/vaults/v")
    second = api("PUT", "/-/vaults/v")
    assert first.headers["location"] == second.headers["location"]
    assert len(api("GET", "/-/vaults").json()["VaultList"]) == 1


def test_list_marker_is_inclusive_next_arn(api: Api) -> None:
    for name in ["c", "a", "b", "d"]:
        api("PUT", f"/-/vaults/{name}")
    page = api("GET", "/-/vaults?limit=2").json()
    assert [v["VaultName"] for v in page["VaultList"]] == ["a", "b"]
    assert page["Marker"] == ARN + "c"
    # Encoded as botocore's serializer encodes query values.
    page = api("GET", f"/-/vaults?limit=2&marker={quote(ARN + 'c', safe='')}").json()
    assert [v["VaultName"] for v in page["VaultList"]] == ["c", "d"]
    assert page["Marker"] is None


def test_list_bad_marker_and_limit(api: Api) -> None:
    assert_error(api("GET", "/-/vaults?marker=nonsense"), 400, "InvalidParameterValueException")
    assert_error(
        api(
            "GET",
            "/-/vaults?marker=" + quote("arn:aws:glacier:us-east-1:999999999999:vaults/a", safe=""),
        ),
        400,
        "InvalidParameterValueException",
    )
    assert_error(api("GET", "/-/vaults?limit=0"), 400, "InvalidParameterValueException")
    assert api("GET", "/-/vaults?limit=1000").status_code == 200


@pytest.mark.parametrize("timing", ["aws"])
def test_inventory_lags_writes_and_gates_delete(api: Api) -> None:
    api("PUT", "/-/vaults/v")
    body = b"z" * 100
    archive = api("POST", "/-/vaults/v/archives", body=body, headers=upload_headers(body)).headers[
        "x-amz-archive-id"
    ]
    described = api("GET", "/-/vaults/v").json()
    assert described["NumberOfArchives"] == 0  # not until the next inventory
    assert described["LastInventoryDate"] is None
    assert_error(
        api("DELETE", "/-/vaults/v"),
        400,
        "InvalidParameterValueException",
        f"Vault not empty or recently written to: {ARN}v",
    )
    forced = api.admin("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": "v"}).json()
    assert forced["taken"] is True
    described = api("GET", "/-/vaults/v").json()
    assert described["NumberOfArchives"] == 1
    assert described["SizeInBytes"] == 100 + 32768
    assert described["LastInventoryDate"] is not None
    again = api.admin("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": "v"}).json()
    assert again["taken"] is False  # clean vault: the inventory date does not move
    assert api("DELETE", f"/-/vaults/v/archives/{archive}").status_code == 204
    assert api("GET", "/-/vaults/v").json()["NumberOfArchives"] == 1
    assert_error(api("DELETE", "/-/vaults/v"), 400, "InvalidParameterValueException")
    api.admin("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": "v"})
    assert api("GET", "/-/vaults/v").json()["NumberOfArchives"] == 0
    assert api("DELETE", "/-/vaults/v").status_code == 204
    assert_error(api("DELETE", "/-/vaults/v"), 404, "ResourceNotFoundException")


def test_new_vault_is_deletable_at_once(api: Api) -> None:
    api("PUT", "/-/vaults/v")
    assert api("DELETE", "/-/vaults/v").status_code == 204


def test_tag_validation(api: Api) -> None:
    api("PUT", "/-/vaults/v")
    add = "/-/vaults/v/tags?operation=add"
    assert_error(api("POST", add, body=b"{}"), 400, "MissingParameterValueException")
    assert_error(
        api("POST", add, body=b'{"Tags": {"aws:x": "v"}}'), 400, "InvalidParameterValueException"
    )
    assert_error(api("POST", add, body=b'{"Tags": {"k": 5}}'), 400, "SerializationException")
    long_value = '{"Tags": {"k": "' + "v" * 256 + '"}}'
    assert_error(api("POST", add, body=long_value.encode()), 400, "InvalidParameterValueException")
    remove = "/-/vaults/v/tags?operation=remove"
    assert_error(api("POST", remove, body=b"{}"), 400, "MissingParameterValueException")
    assert api("GET", "/-/vaults/v/tags").json() == {"Tags": {}}


ISO_MS = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


@pytest.mark.parametrize("timing", ["aws"])
def test_daily_inventory_cadence(api: Api, clock: ManualClock) -> None:
    api("PUT", "/-/vaults/v")
    body = b"daily"
    api("POST", "/-/vaults/v/archives", body=body, headers=upload_headers(body))
    clock.advance(timedelta(hours=23))
    assert api.admin("POST", "/maintenance").json()["inventories"] == 0
    assert api("GET", "/-/vaults/v").json()["NumberOfArchives"] == 0
    clock.advance(timedelta(hours=1))
    assert api.admin("POST", "/maintenance").json()["inventories"] == 1
    described = api("GET", "/-/vaults/v").json()
    assert described["NumberOfArchives"] == 1
    assert ISO_MS.match(described["LastInventoryDate"])
    assert ISO_MS.match(described["CreationDate"])
    # No writes since: the next day's pass leaves the inventory date alone (spec 5).
    clock.advance(timedelta(hours=25))
    assert api.admin("POST", "/maintenance").json()["inventories"] == 0
    assert api("GET", "/-/vaults/v").json()["LastInventoryDate"] == described["LastInventoryDate"]


def test_upload_list_dates_are_iso_ms(api: Api) -> None:
    api("PUT", "/-/vaults/v")
    api("POST", "/-/vaults/v/multipart-uploads", headers={"x-amz-part-size": "1048576"})
    listed = api("GET", "/-/vaults/v/multipart-uploads").json()
    assert ISO_MS.match(listed["UploadsList"][0]["CreationDate"])
    assert listed["UploadsList"][0]["ArchiveDescription"] is None
    assert listed["Marker"] is None
