"""The benchmark scenarios of issue 5, each against a running server.

Every function returns plain numbers; `bench/__main__.py` repeats, alternates and
reports them. Nothing here asserts a speed: a slow machine gives small numbers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from hashlib import sha256

from bench.data import ArchiveFile
from bench.servers import Server
from bench.wire import Conn, Endpoint, LoadResult, raw_request, request

MIB = 1 << 20
VAULT = "bench"


def vault_path(name: str = VAULT) -> str:
    return f"/-/vaults/{name}"


def check(response_status: int, expected: int, what: str) -> None:
    if response_status != expected:
        raise RuntimeError(f"{what}: HTTP {response_status}, expected {expected}")


def create_vault(endpoint: Endpoint, name: str = VAULT) -> None:
    check(request(endpoint, "PUT", vault_path(name)).status, 201, "CreateVault")


# --- scenario 1 and 6: UploadArchive in one request ------------------------------------


def upload_archive(
    endpoint: Endpoint, archive: ArchiveFile, vault: str = VAULT
) -> tuple[str, float]:
    """One UploadArchive from the file with sendfile; (archive id, seconds)."""
    response = request(
        endpoint,
        "POST",
        vault_path(vault) + "/archives",
        payload_sha256=archive.sha256,
        headers={"x-amz-sha256-tree-hash": archive.tree_hash},
        body_file=str(archive.path),
    )
    check(response.status, 201, "UploadArchive")
    return response.headers["x-amz-archive-id"], response.seconds


def delete_archive(endpoint: Endpoint, archive_id: str, vault: str = VAULT) -> None:
    response = request(endpoint, "DELETE", f"{vault_path(vault)}/archives/{archive_id}")
    check(response.status, 204, "DeleteArchive")


# --- scenario 2: multipart over concurrent connections -------------------------------------


def multipart_upload(endpoint: Endpoint, archive: ArchiveFile, connections: int = 4) -> float:
    """Initiate, all parts over `connections` parallel connections, complete: seconds."""
    started = time.perf_counter()
    initiated = request(
        endpoint,
        "POST",
        vault_path() + "/multipart-uploads",
        headers={"x-amz-part-size": str(archive.part_size)},
    )
    check(initiated.status, 201, "InitiateMultipartUpload")
    target = f"{vault_path()}/multipart-uploads/{initiated.headers['x-amz-multipart-upload-id']}"

    def put(part_index: int) -> None:
        part = archive.parts[part_index]
        response = request(
            endpoint,
            "PUT",
            target,
            payload_sha256=part.sha256,
            headers={
                "x-amz-sha256-tree-hash": part.tree_hash,
                "Content-Range": f"bytes {part.offset}-{part.offset + part.size - 1}/*",
            },
            body_file=str(archive.path),
            file_range=(part.offset, part.size),
        )
        check(response.status, 204, "UploadMultipartPart")

    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(put, range(len(archive.parts))))
    done = request(
        endpoint,
        "POST",
        target,
        headers={
            "x-amz-archive-size": str(archive.size),
            "x-amz-sha256-tree-hash": archive.tree_hash,
        },
    )
    check(done.status, 201, "CompleteMultipartUpload")
    seconds = time.perf_counter() - started
    delete_archive(endpoint, done.headers["x-amz-archive-id"])
    return seconds


# --- scenario 3: GetJobOutput ----------------------------------------------------------------


def initiate_job(endpoint: Endpoint, params: dict[str, object], vault: str = VAULT) -> str:
    body = json.dumps(params).encode()
    response = request(
        endpoint,
        "POST",
        vault_path(vault) + "/jobs",
        body=body,
        payload_sha256=sha256(body).hexdigest(),
    )
    check(response.status, 202, "InitiateJob")
    return response.headers["x-amz-job-id"]


def wait_for_job(
    endpoint: Endpoint, job_id: str, vault: str = VAULT, timeout: float = 3600
) -> float:
    """Poll DescribeJob until the job completes (benchmarks may wait; tests never do)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        response = request(endpoint, "GET", f"{vault_path(vault)}/jobs/{job_id}")
        check(response.status, 200, "DescribeJob")
        description = json.loads(response.body)
        if description["Completed"]:
            if description["StatusCode"] != "Succeeded":
                raise RuntimeError(f"job failed: {description}")
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError(f"job {job_id} not done after {timeout}s")


def retrieval_job(endpoint: Endpoint, archive_id: str) -> str:
    return timed_retrieval_job(endpoint, archive_id)[0]


def timed_retrieval_job(endpoint: Endpoint, archive_id: str) -> tuple[str, float]:
    """(job id, seconds from InitiateJob's answer to a DescribeJob saying it is
    complete); with the instant profile that is the job's run, which reads and
    verifies the whole archive, to within the 50 ms polling interval."""
    job_id = initiate_job(
        endpoint, {"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": "Expedited"}
    )
    return job_id, wait_for_job(endpoint, job_id)


def download(endpoint: Endpoint, target: str, size: int, ranges: int = 1) -> float:
    """GET `target` whole (ranges=1) or as `ranges` sequential Range requests; seconds."""
    step = -(-size // ranges)
    started = time.perf_counter()
    for first in range(0, size, step):
        last = min(size, first + step) - 1
        headers = {} if ranges == 1 else {"Range": f"bytes={first}-{last}"}
        response = request(endpoint, "GET", target, headers=headers, keep_body=False)
        check(response.status, 200 if ranges == 1 else 206, f"GET {target}")
        if response.size != last - first + 1:
            raise RuntimeError(f"GET {target}: {response.size} bytes, expected {last - first + 1}")
    return time.perf_counter() - started


# --- scenario 4: small operations under concurrency --------------------------------------------


@dataclass(frozen=True)
class SmallOp:
    name: str
    method: str
    target: str
    expected: int


Step = Callable[[Conn], Awaitable[bool]]  # one timed unit of work; False = unexpected answer


async def _drive(endpoint: Endpoint, step: Step, connections: int, seconds: float) -> LoadResult:
    """Run `step` back to back on `connections` keep-alive connections for `seconds`."""
    result = LoadResult()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = await Conn.open(endpoint)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                ok = await step(conn)
                result.latencies.append(time.perf_counter() - started)
                result.errors += not ok
        finally:
            conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.seconds = time.perf_counter() - began
    return result


def load(endpoint: Endpoint, op: SmallOp, connections: int, seconds: float) -> LoadResult:
    """One pre-signed request, repeated."""
    raw = raw_request(endpoint, op.method, op.target)

    async def step(conn: Conn) -> bool:
        status, _, _ = await conn.call(raw)
        return status == op.expected

    return asyncio.run(_drive(endpoint, step, connections, seconds))


def job_pairs(
    endpoint: Endpoint, archive_id: str, connections: int, seconds: float, vault: str = VAULT
) -> LoadResult:
    """InitiateJob then DescribeJob of the new job, timed as one unit."""
    body = json.dumps({"Type": "archive-retrieval", "ArchiveId": archive_id}).encode()
    initiate = raw_request(
        endpoint, "POST", vault_path(vault) + "/jobs", body, sha256(body).hexdigest()
    )

    async def step(conn: Conn) -> bool:
        status, headers, _ = await conn.call(initiate)
        if status != 202:
            return False
        job = headers["x-amz-job-id"]
        status, _, _ = await conn.call(
            raw_request(endpoint, "GET", f"{vault_path(vault)}/jobs/{job}")
        )
        return status == 200

    return asyncio.run(_drive(endpoint, step, connections, seconds))


def page_time(
    endpoint: Endpoint, target: str, repeats: int
) -> tuple[list[float], dict[str, object]]:
    """Latencies of one GET page, repeated; plus the last page's JSON."""
    times = []
    page: dict[str, object] = {}
    for _ in range(repeats):
        response = request(endpoint, "GET", target)
        check(response.status, 200, f"GET {target}")
        times.append(response.seconds)
        page = json.loads(response.body)
    return times, page


def try_multipart(server: Server) -> str:
    """What a server answers to InitiateMultipartUpload (moto lacks it)."""
    response = request(
        server.endpoint,
        "POST",
        vault_path() + "/multipart-uploads",
        headers={"x-amz-part-size": str(MIB)},
    )
    return f"HTTP {response.status}"
