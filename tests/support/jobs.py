"""Job helpers for in-process API tests: upload, initiate, drive time, read back."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx

from support.inprocess import Api
from support.signing import upload_headers


def upload(api: Api, vault: str, body: bytes, description: str | None = None) -> str:
    resp = api(
        "POST", f"/-/vaults/{vault}/archives", body=body, headers=upload_headers(body, description)
    )
    assert resp.status_code == 201, resp.text
    return resp.headers["x-amz-archive-id"]


def initiate(api: Api, vault: str, params: dict[str, Any]) -> httpx.Response:
    return api("POST", f"/-/vaults/{vault}/jobs", body=json.dumps(params).encode())


def start_job(api: Api, vault: str, params: dict[str, Any]) -> str:
    resp = initiate(api, vault, params)
    assert resp.status_code == 202, resp.text
    return resp.headers["x-amz-job-id"]


def describe(api: Api, vault: str, job_id: str) -> dict[str, Any]:
    resp = api("GET", f"/-/vaults/{vault}/jobs/{job_id}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def run_jobs(api: Api) -> int:
    resp = api.admin("POST", "/jobs/run")
    assert resp.status_code == 200, resp.text
    return int(resp.json()["completed"])


def advance(api: Api, seconds: float) -> None:
    assert api.admin("POST", "/clock/advance", {"seconds": seconds}).status_code == 200


def force_inventory(api: Api, account_id: str, vault: str) -> None:
    resp = api.admin("POST", "/inventory", {"account_id": account_id, "vault": vault})
    assert resp.status_code == 200, resp.text


def output(api: Api, vault: str, job_id: str, range_header: str | None = None) -> httpx.Response:
    headers = {"Range": range_header} if range_header else None
    return api("GET", f"/-/vaults/{vault}/jobs/{job_id}/output", headers=headers)
