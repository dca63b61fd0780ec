"""Shared parts of the malformed-input property suites (tests/api/test_malformed_*.py):
hostile values, the in-process world they are sent to, and the checks every answer
must pass (no 5xx, Glacier's error shape, no state change on refusal)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import botocore.session
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.pool import NullPool
from starlette.testclient import TestClient

from api.conftest import make_settings
from openglacier.clock import ManualClock
from openglacier.server import Runtime, build_runtime
from support.inprocess import ACCESS_KEY, ACCOUNT_ID, SECRET_KEY, Api
from support.jobs import force_inventory, start_job, upload
from support.services import fresh_pg_database
from support.signing import Signer

MODEL = botocore.session.get_session().get_service_model("glacier")
OPERATIONS = sorted(MODEL.operation_names)
REQUEST_ID = re.compile(r"\A[A-Za-z0-9_-]{47}\Z")
MIB = 1 << 20
SETTINGS = settings(
    # Per operation: all suites, on SQLite and PostgreSQL, take about 30 s together.
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Strings chosen to break things: lone surrogates, NUL and other controls, path
# tricks, numbers that are not, and sizes past every limit.
NASTY = [
    "",
    " ",
    "\ud800",
    "a\udfffb",
    "\x00",
    "a\x00b",
    "\x01\x1f\x7f",
    ".",
    "..",
    "%",
    "%00",
    "%ED%A0%80",
    "/",
    "?",
    "-",
    "-1",
    "0",
    "1e309",
    "NaN",
    "18446744073709551616",
    "9" * 40,
    "\u202e\ufeff",
    "\U0001f600",
    "é",
    "null",
    "a" * 5000,
]
# What broke the server before: a third of all strings.
HOSTILE = ["\ud800", "a\udfffb", "a\x00b", "a" * 5000]
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
NASTY_TEXT = st.one_of(st.sampled_from(HOSTILE), st.sampled_from(NASTY), ANY_TEXT)
# Header values travel as latin-1 bytes; CR and LF would end the header.
HEADER_TEXT = st.one_of(
    st.sampled_from([v for v in NASTY if v.isascii() and "\x00" not in v]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40),
)
WRONG_JSON: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    NASTY_TEXT,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(NASTY_TEXT, st.integers(), max_size=3),
)


DEEP = [b"[" * 1000 + b"]" * 1000, b'{"a":' * 3000 + b"0" + b"}" * 3000]
TOPIC = "arn:aws:sns:us-east-1:111122223333:t"


@dataclass(frozen=True)
class Generated:
    operation: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def __repr__(self) -> str:  # bodies can be megabytes: show their start
        return (
            f"{self.method} {self.path[:300]} headers={self.headers!r:.600} "
            f"body={self.body[:300]!r} ({len(self.body)} bytes)"
        )


@dataclass
class World:
    """The in-process server and the ids a request can name."""

    api: Api
    data_dir: Path
    ids: dict[str, list[str]]
    store: Engine  # a connection of our own to the metadata store, for snapshots
    tables: list[str] = field(default_factory=list)

    def send(self, request: Generated) -> Any:
        """Signed by botocore; header values sent as their latin-1 bytes, as on a wire."""
        signed = self.api.signer.sign(
            request.method, request.path, body=request.body, headers=request.headers
        )
        headers = {k: v.encode("latin-1") for k, v in signed.headers.items()}
        return self.api.client.request(
            signed.method, signed.url, headers=headers, content=signed.body
        )

    def snapshot(self) -> tuple[Any, ...]:
        """Every metadata row and every blob file: what a refusal must not change."""
        with self.store.connect() as db:
            self.tables = self.tables or sorted(inspect(db).get_table_names())
            rows = {
                n: sorted(map(repr, db.execute(text(f'SELECT * FROM "{n}"')))) for n in self.tables
            }
        files = sorted(
            (str(p.relative_to(self.data_dir)), p.stat().st_size)
            for p in self.data_dir.rglob("*")
            if p.is_file() and not p.name.startswith("metadata.db")
        )
        return rows, files


POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Principal": "*",
                "Effect": "Deny",
                "Action": "glacier:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestTag/never": "x"}},
            }
        ],
    }
)


def js(value: Any) -> bytes:
    return json.dumps(value).encode()


def restore(api: Api, ids: dict[str, list[str]]) -> None:
    """Make (again) what requests name: vaults "v" (an archive, tags, an access
    policy, so requests go through the policy check's body reading, notifications,
    an upload, a job) and "empty" (a lock in progress). Idempotent; run at the
    start and after any request that may have removed a piece."""
    for name in ("v", "empty"):
        assert api("PUT", f"/-/vaults/{name}").status_code == 201
    if not ids.get("archiveId") or not archive_exists(api, ids["archiveId"][0]):
        ids["archiveId"] = [upload(api, "v", b"x" * 3000, "an archive")]
    assert api("POST", "/-/vaults/v/tags?operation=add", body=js(TAGS)).status_code == 204
    assert api("PUT", "/-/vaults/v/access-policy", body=js({"Policy": POLICY})).status_code == 204
    topic = {"SNSTopic": TOPIC, "Events": EVENTS}
    resp = api("PUT", "/-/vaults/v/notification-configuration", body=js(topic))
    assert resp.status_code == 204, resp.text
    uploads = api("GET", "/-/vaults/v/multipart-uploads").json()["UploadsList"]
    if not uploads:
        resp = api("POST", "/-/vaults/v/multipart-uploads", headers={"x-amz-part-size": str(MIB)})
        assert resp.status_code == 201, resp.text
        uploads = [{"MultipartUploadId": resp.headers["x-amz-multipart-upload-id"]}]
    ids["uploadId"] = [uploads[0]["MultipartUploadId"]]
    jobs = api("GET", "/-/vaults/v/jobs").json()["JobList"]
    if not jobs:
        force_inventory(api, ACCOUNT_ID, "v")
        job = {"Type": "archive-retrieval", "ArchiveId": ids["archiveId"][0]}
        jobs = [{"JobId": start_job(api, "v", job)}]
    ids["jobId"] = [jobs[0]["JobId"]]
    if api("GET", "/-/vaults/empty/lock-policy").status_code == 404:
        locked = api("POST", "/-/vaults/empty/lock-policy", body=js({"Policy": POLICY}))
        assert locked.status_code == 201, locked.text
        ids["lockId"] = [locked.headers["x-amz-lock-id"]]
    ids.update(accountId=["-", ACCOUNT_ID], vaultName=["v", "empty"])


def archive_exists(api: Api, archive_id: str) -> bool:
    resp = api.admin("GET", f"/vaults/{ACCOUNT_ID}/v/archives")
    return archive_id in {a["ArchiveId"] for a in resp.json()["archives"]}


TAGS = {"Tags": {"team": "a"}}
EVENTS = ["ArchiveRetrievalCompleted", "InventoryRetrievalCompleted"]


@contextmanager
def open_world(tmp: Path, metadata_url: str | None = None) -> Iterator[World]:
    """A server over real files in `tmp` (and SQLite there, unless `metadata_url`
    names another metadata store), populated by `restore`."""
    settings = make_settings(tmp, timing="instant", clock="manual", metadata_url=metadata_url)
    runtime: Runtime = build_runtime(settings, clock=ManualClock())
    store = create_engine(settings.resolved_metadata_url, poolclass=NullPool)
    # No `with`: no lifespan, so no background loop changes state between snapshots.
    client = TestClient(runtime.app, base_url="http://testserver", raise_server_exceptions=True)
    api = Api(client, Signer("http://testserver", ACCESS_KEY, SECRET_KEY))
    ids: dict[str, list[str]] = {}
    restore(api, ids)
    try:
        yield World(api, tmp / "data", ids, store)
    finally:
        store.dispose()
        runtime.close()


def label(value: str) -> str:
    """Percent-encoded the way an SDK would; surrogates as their (invalid) UTF-8 bytes."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def assert_glacier_shaped(resp: Any, request: Generated) -> None:
    assert resp.status_code < 500, (request, resp.text)
    assert REQUEST_ID.match(resp.headers["x-amzn-requestid"]), request
    if resp.status_code < 400:
        return
    assert resp.headers["content-type"] == "application/json", (request, resp.text)
    error = json.loads(resp.content)
    assert set(error) == {"code", "message", "type"}, (request, error)
    assert resp.headers["x-amzn-errortype"] == error["code"], (request, error)
    assert error["type"] == "Client", (request, error)


def check_request(world: World, request: Generated) -> None:
    """Send it; no 5xx, Glacier's shape, and a refusal changes nothing."""
    before = world.snapshot()
    resp = world.send(request)
    event(f"{resp.status_code} {resp.headers.get('x-amzn-errortype', '')}")
    assert_glacier_shaped(resp, request)
    if resp.status_code >= 400:
        assert world.snapshot() == before, (request, resp.text)
    elif request.method != "GET":
        restore(world.api, world.ids)  # it may have removed what later requests name


@contextmanager
def world_on(store: str, tmp: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    """`open_world` on SQLite or, for "postgresql", on a fresh PostgreSQL database."""
    if store == "sqlite":
        with open_world(tmp) as world:
            yield world
        return
    with (
        fresh_pg_database(request.getfixturevalue("pg_admin")) as url,
        open_world(tmp, url) as world,
    ):
        yield world


# Module-scoped `world` fixtures take these params: every suite runs on both stores.
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
