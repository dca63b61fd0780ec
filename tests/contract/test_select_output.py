"""Select output written to a real S3-compatible store (SeaweedFS, spec 7.3)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from openglacier.domain.select.jobs import SelectRequest, parse_select_job, run_select
from openglacier.errors import StorageError
from openglacier.ports import OutputSink
from openglacier.storage.outputs import open_output_sink
from support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed, seaweed_store

__all__ = ["seaweed_store"]  # the session fixture (shared if conftest imports it too)

JOB = "S" * 92


@pytest.fixture
def store(seaweed_store: Seaweed) -> Seaweed:
    return seaweed_store


@pytest.fixture
def sink(store: Seaweed) -> Iterator[OutputSink]:
    opened = open_output_sink(store.output_url, ACCESS_KEY, SECRET_KEY, REGION)
    yield opened
    opened.close()


def select(expression: str, prefix: str = "jobs") -> SelectRequest:
    return parse_select_job(
        {
            "ExpressionType": "SQL",
            "Expression": expression,
            "InputSerialization": {"csv": {"FileHeaderInfo": "USE"}},
        },
        {"S3": {"BucketName": "results", "Prefix": prefix}},
    )


def test_results_layout_in_s3(store: Seaweed) -> None:
    sink = open_output_sink(store.output_url, ACCESS_KEY, SECRET_KEY, REGION)
    data = b"id,kind\n1,a\n2,b\n3,a\n"
    request = select("SELECT id FROM archive WHERE kind = 'a'")
    outcome = run_select(request, JOB, {"JobId": JOB}, [data], sink)
    assert outcome.succeeded
    objects = store.objects("results", f"jobs/{JOB}/")
    assert set(objects) == {
        f"jobs/{JOB}/job.txt",
        f"jobs/{JOB}/results/00000001.csv",
        f"jobs/{JOB}/result_manifest.txt",
    }
    assert objects[f"jobs/{JOB}/results/00000001.csv"] == b"1\n3\n"
    assert objects[f"jobs/{JOB}/result_manifest.txt"] == f"jobs/{JOB}/results/00000001.csv".encode()
    sink.close()


def test_large_result_streams_to_s3(store: Seaweed, tmp_path: Path) -> None:
    sink = open_output_sink(store.output_url, ACCESS_KEY, SECRET_KEY, REGION)
    rows = 300_000
    data = b"n,square\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(rows))
    chunks = (data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20))
    request = select("SELECT n, square FROM archive", prefix="big")
    assert run_select(request, JOB, {}, chunks, sink).succeeded
    body = store.objects("results", f"big/{JOB}/results/")[f"big/{JOB}/results/00000001.csv"]
    parsed = list(csv.reader(io.StringIO(body.decode())))
    assert len(parsed) == rows
    assert parsed[-1] == [str(rows - 1), str((rows - 1) ** 2)]
    sink.close()


def test_missing_bucket_is_a_storage_error(store: Seaweed) -> None:
    sink = open_output_sink(store.output_url, ACCESS_KEY, SECRET_KEY, REGION)
    with pytest.raises(StorageError, match=r"s3://no-such-bucket/k: .*NoSuchBucket"):
        sink.put("no-such-bucket", "k", [b"x"], "text/plain")


def test_wrong_credentials_are_refused(store: Seaweed) -> None:
    sink = open_output_sink(store.output_url, ACCESS_KEY, "wrong-secret", REGION)
    with pytest.raises(StorageError):
        sink.put("results", "k", [b"x"], "text/plain")


def test_failed_query_leaves_errors_and_no_result_object(sink: OutputSink, store: Seaweed) -> None:
    # Over 8 MiB of good results first: the multipart upload is under way (and
    # must be aborted) when the bad record comes.
    data = b"id\n" + b"".join(b"%08d\n" % i for i in range(1_100_000)) + b'"unterminated\n'
    request = select("SELECT * FROM archive", prefix="fails")
    outcome = run_select(request, JOB, {"JobId": JOB}, [data], sink)
    assert not outcome.succeeded
    assert "CSVParsingError" in outcome.message
    objects = store.objects("results", f"fails/{JOB}/")
    assert set(objects) == {
        f"fails/{JOB}/job.txt",
        f"fails/{JOB}/errors/00000001.txt",
        f"fails/{JOB}/error_manifest.txt",
    }
    assert objects[f"fails/{JOB}/errors/00000001.txt"] == outcome.message.encode()
    uploads = store.client().list_multipart_uploads(Bucket="results", Prefix="fails/")
    assert uploads.get("Uploads", []) == []


def test_twenty_megabytes_stream_through(sink: OutputSink, store: Seaweed) -> None:
    """A 20 MB archive in 1 MiB chunks: read, filtered and uploaded as it streams."""
    line = b"%08d,%s,%d\n"
    pad = b"x" * 40
    rows = 20_000_000 // len(line % (0, pad, 0))

    def chunks() -> Iterator[bytes]:
        block: list[bytes] = []
        for i in range(rows):
            block.append(line % (i, pad, i % 10))
            if len(block) == 16_384:
                yield b"".join(block)
                block.clear()
        yield b"".join(block)

    request = parse_select_job(
        {"ExpressionType": "SQL", "Expression": "SELECT _1 FROM archive WHERE _3 = '7'"},
        {"S3": {"BucketName": "results", "Prefix": "twenty"}},
    )
    assert run_select(request, JOB, {}, chunks(), sink).succeeded
    key = f"twenty/{JOB}/results/00000001.csv"
    body = store.objects("results", key)[key]
    assert body.count(b"\n") == len(range(7, rows, 10))
    assert body.startswith(b"00000007\n00000017\n")
