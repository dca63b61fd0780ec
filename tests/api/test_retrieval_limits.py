"""Data retrieval policies and the Expedited capacity model on InitiateJob
(spec 6.4, 6.5): rejections with the spec's errors, acceptance later."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.conftest import make_settings
from openglacier.clock import ManualClock
from openglacier.server import build_runtime
from openglacier.treehash import MIB
from support.asserts import assert_error
from support.inprocess import ACCESS_KEY, SECRET_KEY, Api
from support.jobs import advance, initiate, run_jobs, start_job, upload
from support.signing import Signer

V = "limits"
HOUR = 3600
MESSAGE = "InitiateJob request denied by current data retrieval policy."


def make_api(tmp_path: Path, **overrides: object) -> Iterator[Api]:
    settings = make_settings(tmp_path, timing="aws", clock="manual", **overrides)
    runtime = build_runtime(settings, clock=ManualClock())
    try:
        with TestClient(runtime.app, base_url="http://testserver") as client:
            api = Api(client, Signer("http://testserver", ACCESS_KEY, SECRET_KEY))
            assert api("PUT", f"/-/vaults/{V}").status_code == 201
            yield api
    finally:
        runtime.close()


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path, free_tier_bytes_per_month=31 * 3 * MIB)


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path, expedited_capacity="strict")


def set_policy(api: Api, rule: dict[str, object]) -> None:
    body = json.dumps({"Policy": {"Rules": [rule]}}).encode()
    assert api("PUT", "/-/policies/data-retrieval", body=body).status_code == 204


def retrieval(archive_id: str, tier: str = "Standard") -> dict[str, str]:
    return {"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": tier}


def job_count(api: Api) -> int:
    return len(api("GET", f"/-/vaults/{V}/jobs").json()["JobList"])


def test_bytes_per_hour_rejects_then_accepts_later(limited: Api) -> None:
    archive_id = upload(limited, V, b"x" * (4 * MIB))  # counts as 1 MiB/h over 4 h
    set_policy(limited, {"Strategy": "BytesPerHour", "BytesPerHour": MIB + MIB // 2})
    start_job(limited, V, retrieval(archive_id))
    resp = initiate(limited, V, retrieval(archive_id))
    assert_error(resp, 400, "PolicyEnforcedException", MESSAGE)
    assert job_count(limited) == 1  # the rejected job was not recorded
    # Only Standard retrievals are governed; inventory jobs never.
    start_job(limited, V, retrieval(archive_id, "Bulk"))
    start_job(limited, V, retrieval(archive_id, "Expedited"))
    advance(limited, 4 * HOUR)
    run_jobs(limited)  # the first Standard job completes: its rate is released
    start_job(limited, V, retrieval(archive_id))


def test_ranged_retrieval_counts_only_its_range(limited: Api) -> None:
    archive_id = upload(limited, V, b"y" * (8 * MIB))
    set_policy(limited, {"Strategy": "BytesPerHour", "BytesPerHour": MIB})
    assert_error(initiate(limited, V, retrieval(archive_id)), 400, "PolicyEnforcedException")
    ranged = {**retrieval(archive_id), "RetrievalByteRange": f"0-{4 * MIB - 1}"}
    start_job(limited, V, ranged)


def test_free_tier_daily_allowance(limited: Api) -> None:
    # 93 MiB per month: 3 MiB per day in a 31-day month, 3.1+ in shorter ones.
    archive_id = upload(limited, V, b"z" * (2 * MIB))
    set_policy(limited, {"Strategy": "FreeTier"})
    start_job(limited, V, retrieval(archive_id))
    assert_error(initiate(limited, V, retrieval(archive_id)), 400, "PolicyEnforcedException")
    advance(limited, 24 * HOUR)  # a new day, a new allowance
    start_job(limited, V, retrieval(archive_id))


def test_none_policy_never_rejects(limited: Api) -> None:
    archive_id = upload(limited, V, b"w" * (4 * MIB))
    set_policy(limited, {"Strategy": "None"})
    for _ in range(5):
        start_job(limited, V, retrieval(archive_id))


def test_strict_capacity_needs_provisioned_units(strict: Api) -> None:
    archive_id = upload(strict, V, b"expedite me")
    resp = initiate(strict, V, retrieval(archive_id, "Expedited"))
    assert_error(resp, 503, "InsufficientCapacityException")
    start_job(strict, V, retrieval(archive_id, "Standard"))  # other tiers unaffected
    assert strict("POST", "/-/provisioned-capacity").status_code == 201
    for _ in range(3):  # three per unit per five minutes
        start_job(strict, V, retrieval(archive_id, "Expedited"))
    assert_error(
        initiate(strict, V, retrieval(archive_id, "Expedited")),
        503,
        "InsufficientCapacityException",
    )
    advance(strict, 5 * 60)
    start_job(strict, V, retrieval(archive_id, "Expedited"))
