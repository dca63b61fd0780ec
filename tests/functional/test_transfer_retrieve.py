"""`openglacier archive get`, `job get|ls` and `inventory` against a live server,
run as a user runs them (a subprocess, real boto3 inside). A proxy in front of
the server (support/output_proxy.py) records which job-output ranges were asked
for, and can flip a byte in one or hold requests so that the client is killed
at a known point of its download. The module's server runs the `instant`
profile (jobs complete as soon as they are initiated); nothing here sleeps.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openglacier.transfer import jobs
from openglacier.transfer.download import download_job_output
from openglacier.treehash import MIB, tree_hash
from support.inventory import parse_csv_inventory, parse_json_inventory
from support.output_proxy import OutputProxy
from support.server import LiveServer
from support.transfer import Run, client_env, command, run, server_archives

SIZE = 6 * MIB + MIB // 2  # seven 1 MiB ranges, a short last one
FAST = ("--poll-seconds", "0.05", "--range-size", "1MiB")
ALL_RANGES = [(i * MIB, min((i + 1) * MIB, SIZE) - 1) for i in range(7)]


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def proxy(server: LiveServer) -> Iterator[OutputProxy]:
    with OutputProxy(server.endpoint) as p:
        yield p


@pytest.fixture
def env(proxy: OutputProxy, tmp_path: Path) -> dict[str, str]:
    return client_env(proxy.endpoint, tmp_path)


@pytest.fixture
def archive(glacier: Any, vault: str) -> tuple[str, bytes]:
    data = random_bytes(SIZE, 7)
    return glacier.upload_archive(vaultName=vault, body=data)["archiveId"], data


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".part" in p.name)


def get(env: dict[str, str], vault: str, name: str, out: Path, *extra: str) -> Run:
    return run(env, "archive", "get", name, "--vault", vault, "-o", str(out), *FAST, *extra)


def test_get_single_request_archive(
    env: dict[str, str], proxy: OutputProxy, archive: Any, vault: str, tmp_path: Path
) -> None:
    archive_id, data = archive
    out = tmp_path / "restored.bin"
    result = get(env, vault, archive_id, out, "--parallel", "3", "--tier", "bulk")
    assert result.code == 0, result.stderr
    assert out.read_bytes() == data
    assert f"tree hash {tree_hash(data)} verified" in result.stderr
    assert "Bulk" in result.stderr
    assert "5-12 hours" in result.stderr
    assert sorted(proxy.ranges) == ALL_RANGES  # every range once, aligned
    assert leftovers(tmp_path) == []


def test_get_multipart_upload_by_path(
    env: dict[str, str], proxy: OutputProxy, vault: str, tmp_path: Path
) -> None:
    src = tmp_path / "src" / "big file.bin"
    src.parent.mkdir()
    data = random_bytes(5 * MIB + 3, 8)
    src.write_bytes(data)
    up = run(env, "archive", "upload", str(src), "--vault", vault, "--part-size", "1MiB")
    assert up.code == 0, up.stderr
    out = tmp_path / "out.bin"
    result = get(env, vault, str(src), out, "--range-size", "2MiB")
    assert result.code == 0, result.stderr
    assert out.read_bytes() == data
    assert sorted(proxy.ranges) == [
        (0, 2 * MIB - 1),
        (2 * MIB, 4 * MIB - 1),
        (4 * MIB, 5 * MIB + 2),
    ]


def test_damaged_range_in_transit_is_asked_again(
    env: dict[str, str], proxy: OutputProxy, archive: Any, vault: str, tmp_path: Path
) -> None:
    archive_id, data = archive
    proxy.flip[2 * MIB] = 1
    out = tmp_path / "out.bin"
    result = get(env, vault, archive_id, out)
    assert result.code == 0, result.stderr
    assert out.read_bytes() == data
    assert [r for r in proxy.ranges if r[0] == 2 * MIB] == [(2 * MIB, 3 * MIB - 1)] * 2


def test_range_that_never_matches_fails_with_nothing_kept(
    env: dict[str, str], proxy: OutputProxy, archive: Any, vault: str, tmp_path: Path
) -> None:
    archive_id, _ = archive
    proxy.flip[3 * MIB] = 100
    out = tmp_path / "out.bin"
    result = get(env, vault, archive_id, out)
    assert result.code == 9, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: checksum mismatch: range 3145728-4194303")
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_download_functions_as_a_library(
    glacier: Any, archive: Any, vault: str, tmp_path: Path
) -> None:
    """What `migrate` calls: no thread is left behind, progress adds up to the size."""
    archive_id, data = archive
    job_id = jobs.initiate_archive_retrieval(glacier, "-", vault, archive_id, "Expedited")
    seen: list[str] = []
    job = jobs.wait_for_job(
        glacier,
        "-",
        vault,
        job_id,
        poll_seconds=0.05,
        on_status=lambda j: seen.append(j["StatusCode"]),
    )
    assert seen[-1] == "Succeeded"
    assert job["SHA256TreeHash"] == tree_hash(data)
    threads, got = threading.active_count(), []
    digest = download_job_output(
        glacier,
        "-",
        vault,
        job_id,
        tmp_path / "lib.bin",
        size=jobs.output_size(job),
        tree_hash=job["SHA256TreeHash"],
        parallel=3,
        part_size=MIB,
        progress=got.append,
    )
    assert digest == tree_hash(data)
    assert (tmp_path / "lib.bin").read_bytes() == data
    assert sum(got) == SIZE
    assert threading.active_count() == threads
    assert leftovers(tmp_path) == []


def kill_mid_download(
    env: dict[str, str], proxy: OutputProxy, args: list[str], out: Path, done: int
) -> None:
    """Run the command, SIGKILL it once `done` ranges are recorded in the sidecar
    (the proxy holds every later range request unanswered)."""
    proxy.hold_after = done
    process = subprocess.Popen(
        command(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = out.with_name(out.name + ".part.state")
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            recorded = state.read_text().count('"range"') if state.exists() else 0
            if recorded >= done:
                break
            assert process.poll() is None, "the client ended before it was killed"
            time.sleep(0.02)  # polling the client's progress, not waiting for a job
        else:
            raise AssertionError("the client never recorded its ranges")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    proxy.release()


def test_killed_download_resumes_without_asking_finished_ranges_again(
    env: dict[str, str], proxy: OutputProxy, archive: Any, vault: str, tmp_path: Path
) -> None:
    archive_id, data = archive
    out = tmp_path / "out.bin"
    args = [
        "archive",
        "get",
        archive_id,
        "--vault",
        vault,
        "-o",
        str(out),
        *FAST,
        "--parallel",
        "1",
    ]
    kill_mid_download(env, proxy, args, out, done=3)
    assert not out.exists()
    first_run = list(proxy.ranges)
    assert first_run[:3] == ALL_RANGES[:3]
    result = get(env, vault, archive_id, out, "--parallel", "2")
    assert result.code == 0, result.stderr
    assert out.read_bytes() == data
    again = proxy.ranges[len(first_run) :]
    # The three finished ranges were not asked for again; the others were. (The
    # range held when the client was killed may reach the proxy after the kill,
    # so it can appear in either run.)
    assert set(again) == set(ALL_RANGES[3:])
    assert proxy.initiated == 1  # the rerun continued the recorded job
    assert "continuing job" in result.stderr
    assert "already downloaded" in result.stderr
    assert leftovers(tmp_path) == []


def test_partial_file_damaged_on_disk_is_caught_by_the_final_check(
    env: dict[str, str], proxy: OutputProxy, archive: Any, vault: str, tmp_path: Path
) -> None:
    archive_id, data = archive
    out = tmp_path / "out.bin"
    args = [
        "archive",
        "get",
        archive_id,
        "--vault",
        vault,
        "-o",
        str(out),
        *FAST,
        "--parallel",
        "1",
    ]
    kill_mid_download(env, proxy, args, out, done=2)
    part = out.with_name(out.name + ".part")
    with part.open("r+b") as fh:  # a finished range rots on disk
        fh.seek(MIB + 10)
        byte = fh.read(1)
        fh.seek(MIB + 10)
        fh.write(bytes([byte[0] ^ 0xFF]))
    before = len(proxy.ranges)
    result = get(env, vault, archive_id, out)
    assert result.code == 0, result.stderr
    assert out.read_bytes() == data
    assert "damaged on disk" in result.stderr
    assert (MIB, 2 * MIB - 1) in proxy.ranges[before:]  # fetched again


def test_no_wait_then_job_get_and_job_ls(
    env: dict[str, str], proxy: OutputProxy, archive: Any, vault: str, tmp_path: Path
) -> None:
    archive_id, data = archive
    out = tmp_path / "later.bin"
    started = get(env, vault, archive_id, out, "--no-wait", "--tier", "Expedited")
    assert started.code == 0, started.stderr
    job_id = started.stdout.strip()
    assert len(job_id) > 40
    assert not out.exists()
    listed = run(env, "job", "ls", "--vault", vault, "--json")
    assert listed.code == 0, listed.stderr
    assert [(j["JobId"], j["ArchiveId"], j["Tier"]) for j in listed.json_lines()] == [
        (job_id, archive_id, "Expedited")
    ]
    text = run(env, "job", "ls", "--vault", vault)
    assert text.stdout.split()[-1] == job_id
    done = run(env, "job", "get", job_id, "--vault", vault, "-o", str(out), *FAST)
    assert done.code == 0, done.stderr
    assert out.read_bytes() == data
    again = run(env, "job", "get", job_id, "--vault", vault, "-o", str(out), *FAST)
    assert again.code == 7
    assert "--force" in again.stderr


def test_not_found_and_unreachable_are_one_line_with_their_codes(
    env: dict[str, str], vault: str, tmp_path: Path
) -> None:
    out = tmp_path / "x"
    no_archive = get(env, vault, "A" * 138, out)
    assert no_archive.code == 3, no_archive.stderr
    assert no_archive.stderr.startswith("error: not found: archive")
    assert len(no_archive.stderr.strip().splitlines()) == 1
    no_path = get(env, vault, str(tmp_path / "never-uploaded"), out)
    assert no_path.code == 3
    assert "not in the catalogue" in no_path.stderr
    no_job = run(env, "job", "get", "J" * 92, "--vault", vault, "-o", str(out), *FAST)
    assert no_job.code == 3
    assert no_job.stderr.startswith("error: not found: job")
    dead = dict(env, OPENGLACIER_ENDPOINT_URL="http://127.0.0.1:9")
    unreachable = run(dead, "job", "ls", "--vault", vault)
    assert unreachable.code == 5
    assert "unreachable" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr + no_archive.stderr + no_job.stderr


# --- inventory -----------------------------------------------------------------------------

DESCRIPTIONS = ["plain", 'with "quotes", commas', "back\\slash\\", ""]


@pytest.fixture
def inventoried(glacier: Any, vault: str) -> dict[str, tuple[str, int]]:
    """Archives with awkward descriptions; the instant profile inventories each write."""
    made = {}
    for n, description in enumerate(DESCRIPTIONS):
        body = random_bytes(100 + n, n)
        resp = glacier.upload_archive(vaultName=vault, body=body, archiveDescription=description)
        made[resp["archiveId"]] = (description, len(body))
    return made


def test_inventory_json_lines_and_text(
    env: dict[str, str], inventoried: Any, vault: str, proxy: OutputProxy, server: LiveServer
) -> None:
    result = run(env, "inventory", vault, "--json", "--poll-seconds", "0.05")
    assert result.code == 0, result.stderr
    rows = result.json_lines()
    assert {r["ArchiveId"]: (r["ArchiveDescription"], r["Size"]) for r in rows} == inventoried
    hashes = {a: v["SHA256TreeHash"] for a, v in server_archives(server, vault).items()}
    assert {r["ArchiveId"]: r["SHA256TreeHash"] for r in rows} == hashes
    # A second run reuses the finished job (the inventory has not changed since).
    text = run(env, "inventory", vault, "--poll-seconds", "0.05")
    assert text.code == 0, text.stderr
    assert proxy.initiated == 1
    assert "using inventory job" in text.stderr
    assert sorted(line.split()[-1] for line in text.stdout.splitlines()) == sorted(inventoried)


def test_inventory_csv_streams_the_document_and_parses(
    env: dict[str, str], inventoried: Any, vault: str, tmp_path: Path
) -> None:
    raw = run(env, "inventory", vault, "--format", "csv", "--poll-seconds", "0.05")
    assert raw.code == 0, raw.stderr
    doc = parse_csv_inventory(raw.stdout.encode())
    assert {r[0]: (r[1], r[3]) for r in doc.rows} == inventoried
    as_json = run(env, "inventory", vault, "--format", "csv", "--json", "--poll-seconds", "0.05")
    assert as_json.code == 0, as_json.stderr
    assert [tuple(r.values()) for r in as_json.json_lines()] == doc.rows
    saved = tmp_path / "inventory.json"
    got = run(env, "inventory", vault, "-o", str(saved), "--poll-seconds", "0.05")
    assert got.code == 0, got.stderr
    parsed = parse_json_inventory(saved.read_bytes())
    assert sorted(parsed.rows) == sorted(doc.rows)
    assert leftovers(tmp_path) == []


def test_inventory_no_wait_prints_the_job_and_job_id_uses_it(
    env: dict[str, str], inventoried: Any, vault: str
) -> None:
    started = run(env, "inventory", vault, "--no-wait", "--new-job")
    assert started.code == 0, started.stderr
    job_id = started.stdout.strip()
    result = run(env, "inventory", vault, "--job-id", job_id, "--json", "--poll-seconds", "0.05")
    assert result.code == 0, result.stderr
    assert len(result.json_lines()) == len(inventoried)


# --- a job that fails (the aws profile: jobs wait for the admin hooks) ------------------------


@pytest.fixture(scope="module")
def aws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("aws-timing") / "data", extra_env={"OPENGLACIER_TIMING": "aws"}
    ).start()
    yield live
    live.stop()


def test_failed_job_exits_8_with_its_message(aws_server: LiveServer, tmp_path: Path) -> None:
    glacier = aws_server.client()
    glacier.create_vault(vaultName="f")
    archive_id = glacier.upload_archive(vaultName="f", body=b"x" * 10)["archiveId"]
    env = client_env(aws_server.endpoint, tmp_path)
    out = tmp_path / "out"
    started = get(env, "f", archive_id, out, "--no-wait")
    assert started.code == 0, started.stderr
    job_id = started.stdout.strip()
    resp = aws_server.admin("POST", f"/jobs/{job_id}/fail", {"message": "Simulated outage"})
    assert resp.status_code == 200, resp.text
    result = run(env, "job", "get", job_id, "--vault", "f", "-o", str(out), *FAST)
    assert result.code == 8, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: job {job_id} failed: Simulated outage"
    )
    # Run again, `archive get` replaces the failed job with a new one and says so.
    again = get(env, "f", archive_id, out, "--no-wait")
    assert again.code == 0
    assert again.stdout.strip() != job_id
    assert "failed (Simulated outage); initiating a new one" in again.stderr


# --- a job that expires (manual clock: moved past the job's 24 hours) -------------------------


@pytest.fixture
def manual_server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_CLOCK": "manual"}).start()
    yield live
    live.stop()


def run_jobs_once_initiated(server: LiveServer, proxy: OutputProxy, count: int) -> None:
    """The manual clock runs no job by itself: run them once the client has
    initiated its `count`th job (polled: the client's request is in flight)."""
    deadline = time.monotonic() + 60
    while proxy.initiated < count:
        assert time.monotonic() < deadline, "the client never initiated its job"
        time.sleep(0.02)  # polling a client's request in flight, not waiting for a job
    resp = server.admin("POST", "/jobs/run")
    assert resp.status_code == 200, resp.text


def test_expired_job_is_replaced_and_finished_ranges_kept(
    manual_server: LiveServer, tmp_path: Path
) -> None:
    glacier = manual_server.client()
    glacier.create_vault(vaultName="e")
    data = random_bytes(SIZE, 9)
    archive_id = glacier.upload_archive(vaultName="e", body=data)["archiveId"]
    with OutputProxy(manual_server.endpoint) as proxy:
        env = client_env(proxy.endpoint, tmp_path)
        out = tmp_path / "out.bin"
        args = ["archive", "get", archive_id, "--vault", "e", "-o", str(out), *FAST]
        assert run(env, *args, "--no-wait").code == 0
        run_jobs_once_initiated(manual_server, proxy, 1)
        kill_mid_download(env, proxy, [*args, "--parallel", "1"], out, done=3)
        first_run = len(proxy.ranges)
        for path, body in (("/clock/advance", {"seconds": 2 * 86400}), ("/maintenance", None)):
            resp = manual_server.admin("POST", path, body)
            assert resp.status_code == 200, resp.text
        process = subprocess.Popen(
            command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        run_jobs_once_initiated(manual_server, proxy, 2)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        assert "has expired; initiating a new retrieval job" in stderr
        assert set(proxy.ranges[first_run:]) == set(ALL_RANGES[3:])  # finished ranges kept
    assert out.read_bytes() == data
    assert leftovers(tmp_path) == []


def test_inventory_of_a_vault_never_inventoried_is_one_line(
    aws_server: LiveServer, tmp_path: Path
) -> None:
    aws_server.client().create_vault(vaultName="never")
    env = client_env(aws_server.endpoint, tmp_path)
    result = run(env, "inventory", "never", "--poll-seconds", "0.05")
    assert result.code == 3, result.stderr
    assert result.stderr.startswith("error: not found: ")
    assert len(result.stderr.strip().splitlines()) == 1
