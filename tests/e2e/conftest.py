"""One server and one chromium for the console's end-to-end tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from support.browser import chromium
from support.console_pages import OTHER_ACCOUNT
from support.server import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("console") / "data",
        extra_env={"OPENGLACIER_TIMING": "instant", "OPENGLACIER_ACCESS_LOG": "off"},
    ).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium")) as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture(scope="module")
def other_key(server: LiveServer) -> tuple[str, str]:
    """A key of a second account, made with the CLI as an operator would."""
    out = subprocess.run(
        [sys.executable, "-m", "openglacier", "keys", "create", "--account-id", OTHER_ACCOUNT,
         "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    lines = {ln.rsplit(None, 1)[0].strip(): ln.rsplit(None, 1)[1] for ln in out.splitlines()}
    return lines["access key id"], lines["secret access key"]
