"""Select output written to a real S3-compatible store (SeaweedFS, spec 7.3)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from openglacier.domain.select import parse_select_job, run_select
from openglacier.errors import StorageError
from openglacier.storage.outputs import open_output_sink
from support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed, seaweed

JOB = "S" * 92


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    with seaweed(tmp_path_factory.mktemp("seaweed")) as running:
        running.client().create_bucket(Bucket="results")
        yield running


def select(expression: str, prefix: str = "jobs") -> object:
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
    outcome = run_select(request, JOB, {"JobId": JOB}, [data], sink)  # type: ignore[arg-type]
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
    assert run_select(request, JOB, {}, chunks, sink).succeeded  # type: ignore[arg-type]
    body = store.objects("results", f"big/{JOB}/results/")[f"big/{JOB}/results/00000001.csv"]
    parsed = list(csv.reader(io.StringIO(body.decode())))
    assert len(parsed) == rows
    assert parsed[-1] == [str(rows - 1), str((rows - 1) ** 2)]
    sink.close()


def test_missing_bucket_is_a_storage_error(store: Seaweed) -> None:
    sink = open_output_sink(store.output_url, ACCESS_KEY, SECRET_KEY, REGION)
    with pytest.raises(StorageError, match="no-such-bucket"):
        sink.put("no-such-bucket", "k", [b"x"], "text/plain")


def test_wrong_credentials_are_refused(store: Seaweed) -> None:
    sink = open_output_sink(store.output_url, ACCESS_KEY, "wrong-secret", REGION)
    with pytest.raises(StorageError):
        sink.put("results", "k", [b"x"], "text/plain")
