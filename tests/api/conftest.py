"""In-process API tests: the real app over real SQLite and real files, no sockets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from openglacier.clock import ManualClock
from openglacier.config import Settings
from openglacier.server import Runtime, build_runtime
from support.inprocess import ACCESS_KEY, ACCOUNT_ID, ADMIN_TOKEN, SECRET_KEY, Api
from support.signing import Signer


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    base = Settings(
        data_dir=tmp_path / "data",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        account_id=ACCOUNT_ID,
        admin_token=ADMIN_TOKEN,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def timing() -> str:
    return "instant"


@pytest.fixture
def runtime(tmp_path: Path, clock: ManualClock, timing: str) -> Iterator[Runtime]:
    rt = build_runtime(make_settings(tmp_path, timing=timing, clock="manual"), clock=clock)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(runtime.app, base_url="http://testserver", raise_server_exceptions=True) as c:
        yield c


@pytest.fixture
def signer() -> Signer:
    return Signer("http://testserver", ACCESS_KEY, SECRET_KEY)


@pytest.fixture
def api(client: TestClient, signer: Signer) -> Api:
    return Api(client, signer)
