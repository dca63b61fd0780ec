"""Data retrieval policies and provisioned capacity (spec 2.30-2.33)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from openglacier.domain.account_settings import one_month_later
from support.asserts import assert_error
from support.inprocess import Api
from support.jobs import advance

POLICY = "/-/policies/data-retrieval"
CAPACITY = "/-/provisioned-capacity"
DAY = 86400


def put_policy(api: Api, body: Any) -> Any:
    return api("PUT", POLICY, body=json.dumps(body).encode())


def rules(*rule: dict[str, Any]) -> dict[str, Any]:
    return {"Policy": {"Rules": list(rule)}}


def test_default_policy_is_none(api: Api) -> None:
    resp = api("GET", POLICY)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == rules({"Strategy": "None"})


@pytest.mark.parametrize(
    "rule",
    [
        {"Strategy": "BytesPerHour", "BytesPerHour": 10737418240},
        {"Strategy": "FreeTier"},
        {"Strategy": "None"},
        {"Strategy": "BytesPerHour", "BytesPerHour": 2**63 - 1},
    ],
)
def test_set_and_get_round_trip(api: Api, rule: dict[str, Any]) -> None:
    assert put_policy(api, rules(rule)).status_code == 204
    assert api("GET", POLICY).json() == rules(rule)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "MissingParameterValueException"),
        ({"Policy": {}}, "MissingParameterValueException"),
        (rules({}), "MissingParameterValueException"),
        (rules({"Strategy": "BytesPerHour"}), "MissingParameterValueException"),
        (rules(), "InvalidParameterValueException"),
        (rules({"Strategy": "None"}, {"Strategy": "None"}), "InvalidParameterValueException"),
        (rules({"Strategy": "Unlimited"}), "InvalidParameterValueException"),
        (rules({"Strategy": "FreeTier", "BytesPerHour": 5}), "InvalidParameterValueException"),
        (rules({"Strategy": "BytesPerHour", "BytesPerHour": 0}), "InvalidParameterValueException"),
        (
            rules({"Strategy": "BytesPerHour", "BytesPerHour": 2**63}),
            "InvalidParameterValueException",
        ),
        (rules({"Strategy": "BytesPerHour", "BytesPerHour": "5"}), "SerializationException"),
        ({"Policy": "None"}, "SerializationException"),
        ({"Policy": {"Rules": "x"}}, "SerializationException"),
    ],
)
def test_bad_policies_change_nothing(api: Api, body: Any, code: str) -> None:
    assert put_policy(api, rules({"Strategy": "FreeTier"})).status_code == 204
    assert_error(put_policy(api, body), 400, code)
    assert api("GET", POLICY).json() == rules({"Strategy": "FreeTier"})


def test_policy_of_another_account_is_denied(api: Api) -> None:
    resp = api("GET", "/999999999999/policies/data-retrieval")
    assert_error(resp, 403, "AccessDeniedException")


def test_purchase_limit_expiry_and_listing(api: Api) -> None:
    assert api("GET", CAPACITY).json() == {"ProvisionedCapacityList": []}
    ids = []
    for _ in range(2):
        resp = api("POST", CAPACITY)
        assert resp.status_code == 201
        assert resp.headers["content-length"] == "0"
        ids.append(resp.headers["x-amz-capacity-id"])
        advance(api, 1)
    assert all(len(i) == 24 for i in ids)
    assert_error(api("POST", CAPACITY), 400, "LimitExceededException")
    listed = api("GET", CAPACITY).json()["ProvisionedCapacityList"]
    assert [u["CapacityId"] for u in listed] == ids  # by start date
    for unit in listed:
        start = datetime.strptime(unit["StartDate"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert unit["ExpirationDate"].endswith(".000Z")
        assert unit["ExpirationDate"] == one_month_later(start).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    advance(api, 32 * DAY)  # both expired: two more may be bought
    third = api("POST", CAPACITY)
    assert third.status_code == 201
    listed = api("GET", CAPACITY).json()["ProvisionedCapacityList"]
    assert len(listed) == 3  # expired units stay listed for 30 days
    advance(api, 31 * DAY)
    listed = api("GET", CAPACITY).json()["ProvisionedCapacityList"]
    assert [u["CapacityId"] for u in listed] == [third.headers["x-amz-capacity-id"]]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (
            datetime(2017, 1, 31, 14, 26, 33, 31000, tzinfo=UTC),
            datetime(2017, 2, 28, 14, 26, 33, tzinfo=UTC),
        ),
        (datetime(2016, 1, 31, 1, 2, 3, tzinfo=UTC), datetime(2016, 2, 29, 1, 2, 3, tzinfo=UTC)),
        (datetime(2017, 8, 31, 0, 0, 0, tzinfo=UTC), datetime(2017, 9, 30, 0, 0, 0, tzinfo=UTC)),
        (datetime(2017, 12, 15, 9, 0, 0, tzinfo=UTC), datetime(2018, 1, 15, 9, 0, 0, tzinfo=UTC)),
        (datetime(2017, 3, 30, 9, 0, 0, tzinfo=UTC), datetime(2017, 4, 30, 9, 0, 0, tzinfo=UTC)),
    ],
)
def test_one_month_later(start: datetime, end: datetime) -> None:
    assert one_month_later(start) == end
