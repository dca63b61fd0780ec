"""A real OpenGlacier server inside the test process, for other people's tests.

`GlacierTestServer` runs the same app `openglacier serve` runs (build_runtime,
uvicorn, the real HTTP protocol and SigV4) on a free loopback port, in a thread
of the calling process, over a fresh data dir it removes when stopped. In a
thread rather than a subprocess because a fresh server then starts in ~40 ms
instead of ~700 ms (docs/testing-your-code.md), which makes one server per test
affordable.

The clock is manual by default: nothing happens in the background, and time,
jobs, inventories and notification deliveries move only through the helper
methods, which call the server's /_admin API (docs/admin-api.md), so a test
never sleeps.

Heavy imports (the server, uvicorn, httpx, boto3) happen in `start()`, not at
import time: the pytest plugin imports this module only when a fixture is used.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

ACCESS_KEY_ID = "OGAKPYTESTPYTESTPYTE"
SECRET_ACCESS_KEY = "openglacier-pytest-secret-0123456789abcd"  # noqa: S105 - a test key
ACCOUNT_ID = "123456789012"
ADMIN_TOKEN = "openglacier-pytest-admin-token"  # noqa: S105 - a test token
REGION = "us-east-1"
START_TIMEOUT_SECONDS = 30.0


class AdminError(RuntimeError):
    """An /_admin call was refused; the message holds the server's answer."""


class GlacierTestServer:
    """A started server: `with GlacierTestServer() as server: ...`.

    `timing`: instant, fast or aws (the tier delays jobs take on the server's
    clock); `clock`: manual (default: moves only through `advance`) or system;
    `settings`: any other Settings field (docs/settings.md), e.g.
    `inventory_before_first="empty"` or `notify_targets="*=http://..."`.
    """

    def __init__(
        self,
        *,
        timing: str = "aws",
        clock: str = "manual",
        region: str = REGION,
        **settings: Any,
    ) -> None:
        self.region = region
        self.access_key_id = ACCESS_KEY_ID
        self.secret_access_key = SECRET_ACCESS_KEY
        self.account_id = ACCOUNT_ID
        self.admin_token = ADMIN_TOKEN
        self._overrides = {"timing": timing, "clock": clock, "region": region, **settings}
        self._root: Path | None = None
        self._stop: Any = None  # stops what start() started, in reverse order
        self._http: Any = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> GlacierTestServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        if self._root is None:
            raise RuntimeError("the server is not running")
        return self._root / "data"

    def start(self) -> GlacierTestServer:
        from openglacier.testing._runner import start_in_thread  # noqa: PLC0415 - lazy

        self._root = Path(tempfile.mkdtemp(prefix="openglacier-test-"))
        try:
            self.port, self._stop, self._http = start_in_thread(
                self._settings(), START_TIMEOUT_SECONDS
            )
        except BaseException:
            self._remove_files()
            raise
        return self

    def _settings(self) -> dict[str, Any]:
        return {
            **self._overrides,
            "data_dir": self.data_dir,
            "host": "127.0.0.1",
            "port": 0,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "account_id": self.account_id,
            "admin_token": self.admin_token,
            "log_level": self._overrides.get("log_level", "warning"),
        }

    def stop(self) -> None:
        """Stop the server and remove every file it made. Safe to call twice."""
        try:
            if self._http is not None:
                self._http.close()
            if self._stop is not None:
                self._stop()
        finally:
            self._http = self._stop = None
            self._remove_files()

    def _remove_files(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    # --- clients -----------------------------------------------------------------------------
    def client_kwargs(self) -> dict[str, str]:
        """What boto3.client("glacier", **kwargs) needs to reach this server."""
        return {
            "endpoint_url": self.endpoint,
            "region_name": self.region,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
        }

    def env(self) -> dict[str, str]:
        """AWS_* variables for code (or the AWS CLI) that reads its configuration from
        the environment; AWS_ENDPOINT_URL_GLACIER points boto3 >= 1.28 here."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL_GLACIER": self.endpoint,
        }

    def client(self, **config: Any) -> Any:
        """A boto3 Glacier client for this server; `config`: botocore Config fields.
        One attempt by default: a retry would hide the server's first answer."""
        import boto3  # noqa: PLC0415 - lazy: only tests that use a client pay for boto3
        from botocore.config import Config  # noqa: PLC0415

        config.setdefault("retries", {"max_attempts": 1})
        return boto3.client("glacier", config=Config(**config), **self.client_kwargs())

    # --- /_admin helpers ---------------------------------------------------------------------
    def admin(self, method: str, path: str, json: Any = None) -> Any:
        """One /_admin call (path after /_admin); its JSON answer, or AdminError."""
        if self._http is None:
            raise RuntimeError("the server is not running")
        response = self._http.request(method, "/_admin" + path, json=json)
        if response.status_code >= 400:
            raise AdminError(f"{method} /_admin{path}: {response.status_code} {response.text}")
        return response.json()

    def now(self) -> datetime:
        """The server's clock."""
        return datetime.fromisoformat(self.admin("GET", "/clock")["now"].replace("Z", "+00:00"))

    def advance(
        self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> datetime:
        """Move the manual clock forward; the new time. Jobs that became due still
        need `run_jobs()` (nothing runs in the background with a manual clock)."""
        delta = timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
        answer = self.admin("POST", "/clock/advance", {"seconds": delta.total_seconds()})
        return datetime.fromisoformat(answer["now"].replace("Z", "+00:00"))

    def run_jobs(self) -> int:
        """Complete every job due now on the server's clock; how many were completed."""
        return int(self.admin("POST", "/jobs/run")["completed"])

    def complete_job(self, job_id: str) -> None:
        """Complete one in-progress job now, due or not (its notification is queued)."""
        self.admin("POST", f"/jobs/{job_id}/complete")

    def fail_job(self, job_id: str, message: str = "Failed by the test.") -> None:
        """Fail one in-progress job now: DescribeJob shows Failed and `message`."""
        self.admin("POST", f"/jobs/{job_id}/fail", {"message": message})

    def inventory(self, vault: str | None = None) -> dict[str, Any]:
        """Take a vault's inventory now (or of every vault written since its last one,
        when `vault` is None), so an inventory-retrieval job has something to return."""
        body = {} if vault is None else {"account_id": self.account_id, "vault": vault}
        return dict(self.admin("POST", "/inventory", body))

    def deliver_notifications(self) -> dict[str, Any]:
        """Deliver every due notification now (to the configured targets)."""
        return dict(self.admin("POST", "/notifications/deliver"))

    def notifications(self, state: str | None = None) -> list[dict[str, Any]]:
        """The notification outbox, oldest first: each with topic, message (the
        SNS message as a dict) and state (pending, delivered or failed)."""
        import json  # noqa: PLC0415

        query = f"?state={state}" if state else ""
        rows = self.admin("GET", "/notifications" + query)["notifications"]
        for row in rows:
            if isinstance(row.get("message"), str):
                with contextlib.suppress(ValueError):  # not JSON: left as sent
                    row["message"] = json.loads(row["message"])
        return list(rows)
