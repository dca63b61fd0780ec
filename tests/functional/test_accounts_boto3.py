"""Account-level settings through boto3 against a live server (spec 2.30-2.33, 8.3)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def test_data_retrieval_policy_round_trip(glacier: Any) -> None:
    assert glacier.get_data_retrieval_policy()["Policy"] == {"Rules": [{"Strategy": "None"}]}
    policy = {"Rules": [{"Strategy": "BytesPerHour", "BytesPerHour": 1073741824}]}
    glacier.set_data_retrieval_policy(Policy=policy)
    assert glacier.get_data_retrieval_policy()["Policy"] == policy
    with pytest.raises(ClientError) as info:
        glacier.set_data_retrieval_policy(Policy={"Rules": [{"Strategy": "Sometimes"}]})
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"
    glacier.set_data_retrieval_policy(Policy={"Rules": [{"Strategy": "None"}]})


def test_provisioned_capacity_purchase_and_list(glacier: Any) -> None:
    bought = [glacier.purchase_provisioned_capacity()["capacityId"] for _ in range(2)]
    with pytest.raises(ClientError) as info:
        glacier.purchase_provisioned_capacity()
    assert info.value.response["Error"]["Code"] == "LimitExceededException"
    listed = glacier.list_provisioned_capacity()["ProvisionedCapacityList"]
    assert [u["CapacityId"] for u in listed] == bought
    assert all(u["ExpirationDate"] > u["StartDate"] for u in listed)
