"""Debian's chromium driven by Playwright (its own browser download is not
used: `make test` installs chromium with apt). Missing: skip on a laptop, fail
in CI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support.services import require_or_skip

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium keeps dialling Google's
# hosts, which a closed test network refuses.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A persistent-context-free browser; `profile` holds its temp files."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip("playwright is not installed (pip install -e '.[test]')")
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if executable is None:
        require_or_skip("Debian's chromium is not installed (make test installs it)")
    profile.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable, args=ARGS, downloads_path=str(profile / "downloads")
        )
        try:
            yield browser
        finally:
            browser.close()
