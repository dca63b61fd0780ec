"""Which S3 client for the s3+http blob store: PUT and GET of one payload through
the adapter (boto3, parts sent on threads), boto3's own managed transfer, and
obstore if it is installed (`pip install obstore`), against a local SeaweedFS.

    .venv/bin/python -m bench.s3_clients [MIB] [RUNS]

Prints each way's best rate over RUNS; the figures and the choice are in
docs/decisions.md. Not a test, not part of `python -m bench`.
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from boto3.s3.transfer import TransferConfig

from openglacier.ids import new_blob_key
from openglacier.storage.blobs import put_blob
from support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed, seaweed

CHUNK = 1 << 20
PART = 8 << 20


def _chunks(data: bytes) -> Iterator[memoryview]:
    view = memoryview(data)
    for i in range(0, len(data), CHUNK):
        yield view[i : i + CHUNK]


def _adapter(sw: Seaweed, data: bytes, run: int) -> tuple[float, float]:
    store = sw.blob_store("bench", "adapter")
    key = new_blob_key()
    t0 = time.perf_counter()
    put_blob(store, key, _chunks(data))
    t1 = time.perf_counter()
    got = sum(len(b) for b in store.open(key))
    t2 = time.perf_counter()
    store.close()
    assert got == len(data)
    return t1 - t0, t2 - t1


def _boto3(sw: Seaweed, data: bytes, run: int) -> tuple[float, float]:
    client = sw.client()
    t0 = time.perf_counter()
    config = TransferConfig(multipart_chunksize=PART)  # 10 threads, boto3's default
    client.upload_fileobj(io.BytesIO(data), "bench", f"boto3-{run}", Config=config)
    t1 = time.perf_counter()
    body = client.get_object(Bucket="bench", Key=f"boto3-{run}")["Body"]
    got = 0
    while block := body.read(CHUNK):
        got += len(block)
    t2 = time.perf_counter()
    assert got == len(data)
    return t1 - t0, t2 - t1


def _obstore(sw: Seaweed, data: bytes, run: int) -> tuple[float, float]:
    import obstore  # type: ignore[import-not-found]
    from obstore.store import S3Store  # type: ignore[import-not-found]

    store = S3Store(
        "bench",
        endpoint=sw.endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        region=REGION,
        client_options={"allow_http": True},
        virtual_hosted_style_request=False,
    )
    t0 = time.perf_counter()
    obstore.put(store, f"obstore-{run}", _chunks(data), chunk_size=PART, max_concurrency=4)
    t1 = time.perf_counter()
    got = sum(len(b) for b in obstore.get(store, f"obstore-{run}").stream(min_chunk_size=CHUNK))
    t2 = time.perf_counter()
    assert got == len(data)
    return t1 - t0, t2 - t1


def main(argv: list[str]) -> None:
    size = int(argv[0] if argv else 256) << 20
    runs = int(argv[1]) if len(argv) > 1 else 2
    ways: dict[str, Callable[[Seaweed, bytes, int], tuple[float, float]]] = {
        "adapter (boto3, 2 parts in flight)": _adapter,
        "boto3 upload_fileobj / get_object": _boto3,
    }
    if importlib.util.find_spec("obstore"):
        ways["obstore put / get stream"] = _obstore
    data = os.urandom(size)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    with (
        tempfile.TemporaryDirectory(prefix="og-s3-bench-") as root,
        seaweed(Path(root), volume_size_mb=1024) as sw,
    ):
        sw.client().create_bucket(Bucket="bench")
        _boto3(sw, data, -1)  # warm-up: SeaweedFS allocates the bucket's volumes
        for run in range(runs):  # round robin, so a busy moment hits every way alike
            for name, way in ways.items():
                times[name].append(way(sw, data, run))
    for name, figures in times.items():
        put = size / min(t[0] for t in figures) / 1e6
        get = size / min(t[1] for t in figures) / 1e6
        print(f"{name:40s} PUT {put:7.1f} MB/s   GET {get:7.1f} MB/s")


if __name__ == "__main__":
    main(sys.argv[1:])
