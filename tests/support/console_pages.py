"""What the console's browser tests do on many pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.server import LiveServer

OTHER_ACCOUNT = "444455556666"


def sign_in(page: Any, server: LiveServer, key_id: str, secret: str) -> None:
    page.goto(f"{server.endpoint}/console/")
    page.get_by_label("Access key id").fill(key_id)
    page.get_by_label("Secret access key or admin token").fill(secret)
    page.get_by_role("button", name="Sign in").click()


def write_file(path: Path, size: int) -> bytes:
    data = bytes((i * 7 + i // 251) % 256 for i in range(size))
    path.write_bytes(data)
    return data
