"""Screenshots of the web console for docs/console.md.

Starts a server on the embedded default in a temp dir, adds a little data with
boto3, signs in with Debian's chromium (Playwright, as the end-to-end tests do)
and saves PNGs to docs/images/. Run it from the repository after `make test`
installed what it needs:

    .venv/bin/python scripts/console_screenshots.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from playwright.sync_api import sync_playwright

from openglacier.testing.ports import free_port

KEY, SECRET, TOKEN = "OGAKSCREENSHOTS00001", "screenshot-secret-0123456789abcdefghijkl", "shots"
OUT = Path(__file__).resolve().parent.parent / "docs" / "images"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = _start(Path(tmp), port)
        try:
            endpoint = f"http://127.0.0.1:{port}"
            archive_id = _seed(endpoint)
            _shoot(endpoint, archive_id, Path(tmp))
        finally:
            server.terminate()
            server.wait(10)


def _start(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        OPENGLACIER_DATA_DIR=str(tmp / "data"),
        OPENGLACIER_PORT=str(port),
        OPENGLACIER_ACCESS_KEY_ID=KEY,
        OPENGLACIER_SECRET_ACCESS_KEY=SECRET,
        OPENGLACIER_ACCOUNT_ID="111122223333",
        OPENGLACIER_ADMIN_TOKEN=TOKEN,
        OPENGLACIER_LOG_LEVEL="warning",
    )
    process = subprocess.Popen([sys.executable, "-m", "openglacier", "serve"], env=env)
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health/live")
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def _seed(endpoint: str) -> str:
    glacier: Any = boto3.client(
        "glacier",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    )
    for name in ("photos", "db-backups", "mail-archive"):
        glacier.create_vault(vaultName=name)
    glacier.add_tags_to_vault(vaultName="photos", Tags={"team": "family", "retention": "10y"})
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "no-deletes",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "glacier:DeleteArchive",
                "Resource": "arn:aws:glacier:us-east-1:111122223333:vaults/photos",
            }
        ],
    }
    glacier.set_vault_access_policy(vaultName="photos", policy={"Policy": json.dumps(policy)})
    archive_id = ""
    for i, name in enumerate(("2024 summer", "2025 winter", "wedding raw", "scans")):
        body = bytes([i]) * (1_500_000 * (i + 1))
        answer = glacier.upload_archive(vaultName="photos", archiveDescription=name, body=body)
        archive_id = archive_id or answer["archiveId"]
    glacier.upload_archive(
        vaultName="db-backups", archiveDescription="pg 2026-12-01", body=b"x" * 9
    )
    glacier.initiate_job(
        vaultName="photos",
        jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": "Expedited"},
    )
    admin = {"Authorization": f"Bearer {TOKEN}"}
    httpx.post(f"{endpoint}/_admin/jobs/run", headers=admin)
    httpx.post(f"{endpoint}/_admin/maintenance", headers=admin)
    return archive_id


def _shoot(endpoint: str, archive_id: str, tmp: Path) -> None:
    upload = tmp / "home-video.mp4"
    upload.write_bytes(os.urandom(3 * 1048576 + 5))
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 760})
        page.goto(f"{endpoint}/console/signin")
        page.screenshot(path=OUT / "console-signin.png")
        page.get_by_label("Access key id").fill(KEY)
        page.get_by_label("Secret access key or admin token").fill(SECRET)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/console/vaults")
        page.screenshot(path=OUT / "console-vaults.png")
        for name, path in (
            ("vault", "/vaults/photos"),
            ("archives", "/vaults/photos/archives"),
            ("archive", f"/vaults/photos/archives/{archive_id}"),
            ("jobs", "/vaults/photos/jobs"),
            ("usage", "/usage"),
        ):
            page.goto(f"{endpoint}/console{path}")
            page.screenshot(path=OUT / f"console-{name}.png", full_page=True)
        page.goto(f"{endpoint}/console/vaults/photos/upload")
        page.get_by_label("File").set_input_files(str(upload))
        page.get_by_label("Description").fill("home video")
        page.get_by_role("button", name="Upload").click()
        page.locator("#uploaded").wait_for()
        page.screenshot(path=OUT / "console-upload.png")
        phone = browser.new_page(viewport={"width": 390, "height": 760}, storage_state=None)
        phone.context.add_cookies(page.context.cookies())
        phone.goto(f"{endpoint}/console/vaults/photos")
        phone.screenshot(path=OUT / "console-phone.png")
        browser.close()


if __name__ == "__main__":
    main()
