"""The notification outbox delivered to real targets (spec 4.7 [R]).

Real parts only: the outbox in a real metadata store (SQLite and PostgreSQL), a
real HTTP server for webhooks and a real moto server for SNS -> SQS. Retries
become due by moving a ManualClock, never by sleeping.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import boto3
import httpx
import pytest

from openglacier.clock import PROFILES, ManualClock
from openglacier.config import Settings
from openglacier.domain.context import Deps
from openglacier.notify import (
    Deliverer,
    DeliveryError,
    DeliveryReport,
    Targets,
    parse_targets,
)
from openglacier.notify.deliver import BATCH, LEASE, MAX_BACKOFF
from openglacier.notify.webhook import WebhookTarget
from openglacier.ports import MetadataStore
from openglacier.records import Notification
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.metadata.store import SqlMetadataStore, open_metadata_store
from support.http_sink import HttpSink, running_sink
from support.server import free_port

TOPIC = "arn:aws:sns:us-east-1:111122223333:glacier-jobs"
OTHER = "arn:aws:sns:us-east-1:111122223333:other-jobs"
JOB = json.dumps(
    {
        "Action": "InventoryRetrieval",
        "ArchiveId": None,
        "Completed": True,
        "CompletionDate": "2012-06-12T22:20:40.790Z",
        "CreationDate": "2012-06-12T22:20:36.814Z",
        "InventorySizeInBytes": 11693,
        "JobDescription": "my retrieval job — ünïcode",
        "JobId": "HkF9p6o7yjh" + "x" * 81,
        "SNSTopic": TOPIC,
        "StatusCode": "Succeeded",
        "StatusMessage": "Succeeded",
        "VaultARN": "arn:aws:glacier:us-east-1:111122223333:vaults/examplevault",
    },
    ensure_ascii=False,
)
KEY, SECRET = "testing", "testing"


# --- helpers ------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def deps(metadata_store: SqlMetadataStore, tmp_path: Path, clock: ManualClock) -> Deps:
    return make_deps(metadata_store, tmp_path, clock)


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    with running_sink() as running:
        yield running


def make_deps(store: MetadataStore, tmp_path: Path, clock: ManualClock) -> Deps:
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    return Deps(store=store, blobs=blobs, clock=clock, timing=PROFILES["instant"])


def enqueue(deps: Deps, topic: str = TOPIC, message: str = JOB) -> None:
    with deps.store.transaction() as tx:
        tx.enqueue_notification(topic, message, deps.clock.now())


def outbox(deps: Deps) -> list[Notification]:
    with deps.store.transaction() as tx:
        return tx.list_notifications(None, 1000)


_made: list[Targets] = []


@pytest.fixture(autouse=True)
def _close_targets() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def targets_for(spec: str) -> Targets:
    targets = parse_targets(spec)
    _made.append(targets)
    return targets


def deliverer(
    deps: Deps, spec: str, *, max_attempts: int = 5, retry_base: float = 2.0
) -> Deliverer:
    return Deliverer(
        deps,
        targets_for(spec),
        max_attempts=max_attempts,
        retry_base=timedelta(seconds=retry_base),
    )


def run_once(d: Deliverer) -> DeliveryReport:
    return anyio.run(d.run_once)


def report(delivered: int = 0, retried: int = 0, failed: int = 0) -> DeliveryReport:
    return DeliveryReport(delivered=delivered, retried=retried, failed=failed)


# --- webhooks -----------------------------------------------------------------------


def test_webhook_receives_exactly_the_job_json(deps: Deps, sink: HttpSink) -> None:
    enqueue(deps)
    d = deliverer(deps, f"{TOPIC}={sink.url}/hooks/glacier?token=a=b")

    assert run_once(d) == report(delivered=1)

    (got,) = sink.requests
    assert (got.method, got.path) == ("POST", "/hooks/glacier?token=a=b")
    assert got.body == JOB.encode()
    assert json.loads(got.body) == json.loads(JOB)
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-amz-sns-topic-arn"] == TOPIC
    (row,) = outbox(deps)
    assert (row.state, row.attempts, row.last_error, row.next_attempt_at) == (
        "delivered",
        1,
        None,
        None,
    )
    assert run_once(d) == report()  # delivered rows are never sent again
    assert len(sink.requests) == 1


def test_failed_delivery_backs_off_then_succeeds(
    deps: Deps, sink: HttpSink, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink.fail_next(2, status=500)
    enqueue(deps)
    d = deliverer(deps, f"*={sink.url}/hook", max_attempts=5, retry_base=2.0)

    with caplog.at_level(logging.WARNING, logger="openglacier.notify"):
        assert run_once(d) == report(retried=1)
    (row,) = outbox(deps)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error is not None
    assert "HTTP 500" in row.last_error
    assert row.next_attempt_at == clock.now() + timedelta(seconds=2)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert TOPIC in warnings[0].getMessage()

    assert run_once(d) == report()  # not due yet
    assert len(sink.requests) == 1

    clock.advance(timedelta(seconds=2))
    assert run_once(d) == report(retried=1)
    (row,) = outbox(deps)
    assert row.attempts == 2
    assert row.next_attempt_at == clock.now() + timedelta(seconds=4)  # doubled

    clock.advance(timedelta(seconds=3))
    assert run_once(d) == report()  # still a second early
    clock.advance(timedelta(seconds=1))
    assert run_once(d) == report(delivered=1)

    (row,) = outbox(deps)
    assert (row.state, row.attempts, row.last_error) == ("delivered", 3, None)
    assert [r.body for r in sink.requests] == [JOB.encode()] * 3


def test_gives_up_after_max_attempts_and_logs_the_whole_message(
    deps: Deps, sink: HttpSink, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink.fail_next(100, status=503)
    enqueue(deps)
    d = deliverer(deps, f"{TOPIC}={sink.url}/hook", max_attempts=3, retry_base=1.0)

    with caplog.at_level(logging.WARNING, logger="openglacier.notify"):
        assert run_once(d) == report(retried=1)
        clock.advance(timedelta(seconds=1))
        assert run_once(d) == report(retried=1)
        clock.advance(timedelta(seconds=2))
        assert run_once(d) == report(failed=1)

    (row,) = outbox(deps)
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert row.last_error is not None
    assert "HTTP 503" in row.last_error
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert TOPIC in error.getMessage()
    assert JOB in error.getMessage()
    clock.advance(timedelta(days=1))
    assert run_once(d) == report()
    assert len(sink.requests) == 3


def test_unreachable_webhook_is_retried_not_lost(deps: Deps, clock: ManualClock) -> None:
    port = free_port()  # nothing listens here yet: connection refused
    enqueue(deps)
    d = deliverer(deps, f"{TOPIC}=http://127.0.0.1:{port}/hook", retry_base=5.0)

    assert run_once(d) == report(retried=1)
    (row,) = outbox(deps)
    assert row.state == "pending"
    assert row.last_error is not None
    assert "ConnectError" in row.last_error

    with running_sink(port) as sink:  # the receiver comes back
        clock.advance(timedelta(seconds=5))
        assert run_once(d) == report(delivered=1)
        assert [r.body for r in sink.requests] == [JOB.encode()]
    assert outbox(deps)[0].state == "delivered"


def test_slow_webhook_times_out_as_a_delivery_error(sink: HttpSink) -> None:
    sink.hold()
    target = WebhookTarget(f"{sink.url}/slow", timeout=0.3)
    try:
        with pytest.raises(DeliveryError, match="Timeout"):
            target.deliver(TOPIC, JOB)
    finally:
        target.close()


def test_routes_topics_and_logs_unlisted_ones(
    deps: Deps, sink: HttpSink, caplog: pytest.LogCaptureFixture
) -> None:
    enqueue(deps, TOPIC, '{"n":1}')
    enqueue(deps, OTHER, '{"n":2}')
    d = deliverer(deps, f"{TOPIC}={sink.url}/one")

    with caplog.at_level(logging.INFO, logger="openglacier.notify"):
        assert run_once(d) == report(delivered=2)

    assert [(r.path, r.body) for r in sink.requests] == [("/one", b'{"n":1}')]
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(OTHER in m and '{"n":2}' in m for m in logged)
    assert {n.state for n in outbox(deps)} == {"delivered"}


def test_many_rows_and_concurrent_deliverers_send_each_once(deps: Deps, sink: HttpSink) -> None:
    count = BATCH * 2 + 3
    for i in range(count):
        enqueue(deps, message=json.dumps({"n": i}))
    first, second = (deliverer(deps, f"*={sink.url}/all") for _ in range(2))
    reports: list[DeliveryReport] = []

    async def both() -> None:
        async def one(d: Deliverer) -> None:
            reports.append(await d.run_once())

        async with anyio.create_task_group() as group:
            group.start_soon(one, first)
            group.start_soon(one, second)

    anyio.run(both)

    assert sum(r.delivered for r in reports) == count
    bodies = sorted(json.loads(r.body)["n"] for r in sink.requests)
    assert bodies == list(range(count))
    assert {n.state for n in outbox(deps)} == {"delivered"}


def test_an_expired_lease_makes_a_claimed_row_due_again(deps: Deps, clock: ManualClock) -> None:
    # A deliverer that died after claiming: its row comes back after the lease.
    enqueue(deps)
    now = clock.now()
    with deps.store.transaction() as tx:
        (claimed,) = tx.claim_notifications(now, now + LEASE, 10)
    assert claimed.attempts == 1
    with deps.store.transaction() as tx:
        assert tx.claim_notifications(now, now + LEASE, 10) == []
    clock.advance(LEASE)
    with deps.store.transaction() as tx:
        (again,) = tx.claim_notifications(clock.now(), clock.now() + LEASE, 10)
    assert (again.id, again.attempts) == (claimed.id, 2)


def test_long_errors_are_truncated_to_fit_the_outbox(deps: Deps) -> None:
    class Verbose:
        def deliver(self, topic_arn: str, message: str) -> None:
            raise DeliveryError("x" * 5000)

    enqueue(deps)
    targets = Targets({}, default=Verbose())
    d = Deliverer(deps, targets, max_attempts=2, retry_base=timedelta(seconds=1))
    assert run_once(d) == report(retried=1)
    (row,) = outbox(deps)
    assert row.last_error == "x" * 1024


def test_unexpected_target_exceptions_are_retried(deps: Deps) -> None:
    class Broken:
        def deliver(self, topic_arn: str, message: str) -> None:
            raise RuntimeError("bug")

    enqueue(deps)
    targets = Targets({}, default=Broken())
    d = Deliverer(deps, targets, max_attempts=2, retry_base=timedelta(seconds=1))
    assert run_once(d) == report(retried=1)
    assert outbox(deps)[0].last_error == "RuntimeError: bug"


def test_backoff_doubles_and_is_capped(deps: Deps) -> None:
    d = deliverer(deps, "", retry_base=2.0)
    assert [d.backoff(n).total_seconds() for n in range(1, 6)] == [2, 4, 8, 16, 32]
    assert d.backoff(12) == MAX_BACKOFF
    assert d.backoff(10_000) == MAX_BACKOFF
    assert deliverer(deps, "", retry_base=7200).backoff(3) == timedelta(hours=2)
    with pytest.raises(ValueError, match="max_attempts"):
        deliverer(deps, "", max_attempts=0)
    with pytest.raises(ValueError, match="retry_base"):
        deliverer(deps, "", retry_base=-1)


def test_loop_keeps_delivering(deps: Deps, sink: HttpSink) -> None:
    settings = Settings(notify_targets=f"*={sink.url}/loop")
    d = Deliverer.from_settings(deps, settings)
    _made.append(d.targets)
    enqueue(deps, message='{"n":1}')
    clock_now = deps.clock.now()

    async def two_passes() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(d.loop, 0.01)
            await anyio.to_thread.run_sync(sink.wait_for, 1)
            await deps.in_tx(lambda tx: tx.enqueue_notification(TOPIC, '{"n":2}', clock_now))
            await anyio.to_thread.run_sync(sink.wait_for, 2)
            group.cancel_scope.cancel()

    anyio.run(two_passes)
    # The second message went out in a later pass, so the first was settled by then.
    first = outbox(deps)[0]
    assert (first.state, first.message) == ("delivered", '{"n":1}')
    assert [r.body for r in sink.requests] == [b'{"n":1}', b'{"n":2}']


# --- SNS (a real moto server, SNS -> SQS) ----------------------------------------------


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"moto server exited: {log_path.read_text(errors='replace')}")
        try:
            httpx.get(f"{url}/moto-api/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)  # polling a starting process, not waiting for a retry
    pytest.fail(f"moto server did not answer at {url}")


def aws_client(service: str, url: str, region: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    )


def subscribed_queue(url: str, region: str) -> tuple[str, Any, str]:
    """A new topic and an SQS queue subscribed to it: (topic ARN, sqs, queue URL)."""
    name = f"glacier-{uuid.uuid4().hex[:8]}"
    sns, sqs = aws_client("sns", url, region), aws_client("sqs", url, region)
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    queue_arn = attributes["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, sqs, queue


def received(sqs: Any, queue: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_sns_publish_reaches_a_subscribed_queue(
    moto_url: str, region: str, tmp_path: Path, sqlite_url: str, clock: ManualClock
) -> None:
    topic, sqs, queue = subscribed_queue(moto_url, region)
    store = open_metadata_store(sqlite_url)
    try:
        deps = make_deps(store, tmp_path, clock)
        enqueue(deps, topic, JOB)
        endpoint = moto_url.replace("http://", f"sns+http://{KEY}:{SECRET}@")
        d = deliverer(deps, f"{topic}={endpoint}")
        assert run_once(d) == report(delivered=1)
        assert outbox(deps)[0].state == "delivered"
    finally:
        store.close()

    (envelope,) = received(sqs, queue)
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"] == topic
    assert envelope["Message"] == JOB
    assert envelope["Subject"] == "Amazon Glacier job completed"


def test_sns_without_credentials_uses_dummy_ones(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    topic, sqs, queue = subscribed_queue(moto_url, "us-east-1")

    targets = targets_for(f"{topic}={moto_url.replace('http://', 'sns+http://')}")
    targets.for_topic(topic).deliver(topic, JOB)
    assert [e["Message"] for e in received(sqs, queue)] == [JOB]


def test_sns_to_a_missing_topic_is_retried(
    moto_url: str, tmp_path: Path, sqlite_url: str, clock: ManualClock
) -> None:
    missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    store = open_metadata_store(sqlite_url)
    try:
        deps = make_deps(store, tmp_path, clock)
        enqueue(deps, missing)
        endpoint = moto_url.replace("http://", f"sns+http://{KEY}:{SECRET}@")
        d = deliverer(deps, f"*={endpoint}")
        assert run_once(d) == report(retried=1)
        (row,) = outbox(deps)
    finally:
        store.close()
    assert row.state == "pending"
    assert row.last_error is not None
    assert "NotFound" in row.last_error


def test_a_stale_claim_cannot_settle_over_a_newer_one(deps: Deps, clock: ManualClock) -> None:
    """A deliverer that stalled past its lease must not overwrite the newer claim."""
    topic = "arn:aws:sns:us-east-1:111122223333:stale"
    with deps.store.transaction() as tx:
        tx.enqueue_notification(topic, "{}", clock.now())
    with deps.store.transaction() as tx:
        (first,) = tx.claim_notifications(clock.now(), clock.now() + LEASE, 10)
    clock.advance(LEASE + timedelta(seconds=1))
    with deps.store.transaction() as tx:
        (second,) = tx.claim_notifications(clock.now(), clock.now() + LEASE, 10)
    assert (first.attempts, second.attempts) == (1, 2)
    with deps.store.transaction() as tx:
        stale = tx.settle_notification(
            first.id, attempts=1, state="failed", next_attempt_at=None, last_error="late"
        )
        current = tx.settle_notification(
            second.id, attempts=2, state="delivered", next_attempt_at=None, last_error=None
        )
    assert (stale, current) == (False, True)
    with deps.store.transaction() as tx:
        (row,) = tx.list_notifications(None, 10)
    assert (row.state, row.last_error) == ("delivered", None)
