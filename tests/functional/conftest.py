"""A live OpenGlacier process per module, driven by real boto3 and the AWS CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server import LiveServer

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("live") / "data").start()
    yield live
    live.stop()


@pytest.fixture
def glacier(server: LiveServer):  # type: ignore[no-untyped-def]
    return server.client()


@pytest.fixture
def vault(glacier, request: pytest.FixtureRequest) -> str:  # type: ignore[no-untyped-def]
    name = request.node.name.replace("[", "-").replace("]", "")[:200]
    glacier.create_vault(vaultName=name)
    return name


@pytest.fixture
def cli_env(server: LiveServer, tmp_path: Path) -> dict[str, str]:
    import os

    from support.server import ACCESS_KEY, SECRET_KEY

    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_PAGER="",
    )
    return env
