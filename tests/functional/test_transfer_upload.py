"""`openglacier archive upload|ls|rm` and `vault ...` against a live server, as a
user runs them (a subprocess, real boto3 inside). Which parts the server was
sent is recorded by a proxy in front of it (support/part_gate.py), which can
also hold parts to stop an upload midway at a known point."""

from __future__ import annotations

import contextlib
import os
import pty
import random
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from openglacier.transfer.multipart import parts_on_endpoint
from openglacier.transfer.naming import decode_description
from openglacier.treehash import MIB, tree_hash
from support.part_gate import PartGate
from support.server import LiveServer
from support.transfer import (
    client_env,
    command,
    parts_on_server,
    retrieve,
    run,
    server_archives,
)

UNICODE_NAME = "é 日本 photo.txt"


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def gate(server: LiveServer) -> Any:
    with PartGate(("127.0.0.1", server.port)) as proxy:
        yield proxy


@pytest.fixture
def env(gate: PartGate, tmp_path: Path) -> dict[str, str]:
    return client_env(gate.endpoint, tmp_path)


def make_tree(root: Path) -> dict[str, bytes]:
    """A directory tree: nested dirs, an empty file, a file of exactly one part
    (1 MiB parts), a multipart file, names with spaces and Unicode."""
    files = {
        "tree/empty": b"",
        "tree/small.txt": b"hello\n",
        "tree/one part.bin": random_bytes(MIB, 1),
        "tree/sub/multi.bin": random_bytes(3 * MIB + 12345, 2),
        f"tree/sub/deeper/{UNICODE_NAME}": "bonjour 世界\n".encode(),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def upload(env: dict[str, str], *args: str) -> Any:
    return run(env, "archive", "upload", *args, "--part-size", "1MiB", "--json")


def test_a_directory_tree_uploads_and_a_second_run_skips_it(
    *,
    server: LiveServer,
    glacier: Any,
    vault: str,
    gate: PartGate,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    files = make_tree(tmp_path)
    first = upload(env, str(tmp_path / "tree"), "--vault", vault)
    assert first.code == 0, first.stderr
    results = {r["path"]: r for r in first.json_lines()}
    assert set(results) == set(files)
    assert results["tree/empty"]["status"] == "skipped"
    assert "at least 1 byte" in results["tree/empty"]["reason"]
    uploaded = {p: r for p, r in results.items() if p != "tree/empty"}
    assert {r["status"] for r in uploaded.values()} == {"uploaded"}
    # Multipart for the one-part and the 4-part file, UploadArchive for the small ones.
    assert sorted(gate.ranges) == sorted(
        [f"bytes 0-{MIB - 1}/*"]
        + [
            f"bytes {i * MIB}-{min((i + 1) * MIB, len(files['tree/sub/multi.bin'])) - 1}/*"
            for i in range(4)
        ]
    )
    on_server = server_archives(server, vault)
    for path, result in uploaded.items():
        stored = on_server[result["archive_id"]]
        description = stored["ArchiveDescription"]
        assert all(0x20 <= ord(c) <= 0x7E for c in description)
        assert decode_description(description) == path  # default template: {relpath}
        assert stored["SHA256TreeHash"] == result["tree_hash"] == tree_hash(files[path])
    data, checksum = retrieve(server, glacier, vault, uploaded["tree/sub/multi.bin"]["archive_id"])
    assert data == files["tree/sub/multi.bin"]
    assert checksum == tree_hash(data)

    gate.open_fully()  # counts from here
    second = upload(env, str(tmp_path / "tree"), "--vault", vault)
    assert second.code == 0, second.stderr
    assert {r["status"] for r in second.json_lines()} == {"skipped"}
    assert gate.ranges == []
    assert len(server_archives(server, vault)) == len(uploaded)

    listed = run(env, "archive", "ls", "--vault", vault, "--json")
    assert listed.code == 0, listed.stderr
    by_path = {Path(e["Path"]).relative_to(tmp_path).as_posix(): e for e in listed.json_lines()}
    assert {p: e["ArchiveId"] for p, e in by_path.items()} == {
        p: r["archive_id"] for p, r in uploaded.items()
    }
    assert by_path[f"tree/sub/deeper/{UNICODE_NAME}"]["Description"].endswith(UNICODE_NAME)


def test_a_changed_file_is_uploaded_again_and_the_rest_skipped(
    *, server: LiveServer, vault: str, env: dict[str, str], tmp_path: Path
) -> None:
    files = make_tree(tmp_path)
    assert upload(env, str(tmp_path / "tree"), "--vault", vault).code == 0
    changed = tmp_path / "tree" / "small.txt"
    stat = changed.stat()
    changed.write_bytes(b"HELLO\n")  # same size, same mtime: only SHA-256 tells
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = upload(env, str(tmp_path / "tree"), "--vault", vault)
    assert again.code == 0, again.stderr
    statuses = {r["path"]: r["status"] for r in again.json_lines()}
    assert statuses.pop("tree/small.txt") == "uploaded"
    assert set(statuses.values()) == {"skipped"}
    assert len(server_archives(server, vault)) == len(files)  # 4 + the new small.txt


def start_upload(env: dict[str, str], path: Path, vault: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(
            "archive",
            "upload",
            str(path),
            "--vault",
            vault,
            "--part-size",
            "1MiB",
            "--parallel",
            "2",
        ),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def part_range(index: int, size: int) -> str:
    return f"{index * MIB}-{min((index + 1) * MIB, size) - 1}"


def test_a_killed_upload_resumes_without_sending_accepted_parts_again(
    *,
    server: LiveServer,
    glacier: Any,
    vault: str,
    gate: PartGate,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    size = 8 * MIB - 1000
    data = random_bytes(size, 3)
    path = tmp_path / "big file.bin"
    path.write_bytes(data)
    gate.forward = 3
    process = start_upload(env, path, vault)
    assert gate.wait_held(), process.communicate()
    upload_id, accepted = parts_on_server(glacier, vault, 3)
    assert len(accepted) == 3  # the gate forwarded three parts (not always the first three)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert glacier.list_multipart_uploads(vaultName=vault)["UploadsList"]  # not complete

    gate.open_fully()
    resumed = run(env, "archive", "upload", str(path), "--vault", vault, "--part-size", "1MiB")
    assert resumed.code == 0, resumed.stderr
    assert "resuming big file.bin: 3 of 8 parts already on the endpoint" in resumed.stderr
    assert "3 of 8 parts were already there" in resumed.stdout
    everything = {part_range(i, size) for i in range(8)}
    assert sorted(gate.ranges) == sorted(f"bytes {r}/*" for r in everything - set(accepted))
    assert glacier.list_multipart_uploads(vaultName=vault)["UploadsList"] == []
    (archive,) = server_archives(server, vault).values()
    assert archive["SHA256TreeHash"] == tree_hash(data)
    assert retrieve(server, glacier, vault, archive["ArchiveId"]) == (data, tree_hash(data))
    assert upload_id  # the same upload was completed: no other was ever initiated


def test_ctrl_c_then_a_part_changed_in_place_is_sent_again(
    *,
    server: LiveServer,
    glacier: Any,
    vault: str,
    gate: PartGate,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    """SIGINT stops at once with exit 130; a part whose bytes changed under an
    unchanged size and mtime has another tree hash than the server's copy, so
    it (and only it, with the missing ones) is sent again."""
    size = 5 * MIB
    path = tmp_path / "data.bin"
    path.write_bytes(random_bytes(size, 4))
    gate.forward = 2
    process = start_upload(env, path, vault)
    assert gate.wait_held(), process.communicate()
    _, accepted = parts_on_server(glacier, vault, 2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "interrupted: run the same command again to resume" in stderr
    assert "Traceback" not in stderr

    stat = path.stat()
    data = bytearray(path.read_bytes())
    changed = int(accepted[-1].split("-")[0]) // MIB  # a part the server holds
    data[changed * MIB + 5] ^= 0xFF
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    gate.open_fully()
    resumed = run(env, "archive", "upload", str(path), "--vault", vault, "--part-size", "1MiB")
    assert resumed.code == 0, resumed.stderr
    resent = {part_range(i, size) for i in range(5)} - set(accepted) | {accepted[-1]}
    assert sorted(gate.ranges) == sorted(f"bytes {r}/*" for r in resent)
    assert len(resent) == 4
    (archive,) = server_archives(server, vault).values()
    assert retrieve(server, glacier, vault, archive["ArchiveId"]) == (
        bytes(data),
        tree_hash(bytes(data)),
    )


def test_an_upload_the_server_forgot_is_started_anew(
    *,
    server: LiveServer,
    glacier: Any,
    vault: str,
    gate: PartGate,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    size = 3 * MIB
    data = random_bytes(size, 5)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    gate.forward = 1
    process = start_upload(env, path, vault)
    assert gate.wait_held(), process.communicate()
    upload_id, _ = parts_on_server(glacier, vault, 1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    glacier.abort_multipart_upload(vaultName=vault, uploadId=upload_id)

    gate.open_fully()
    again = run(env, "archive", "upload", str(path), "--vault", vault, "--part-size", "1MiB")
    assert again.code == 0, again.stderr
    assert f"the endpoint no longer knows upload {upload_id}" in again.stderr
    assert "starting a new upload" in again.stderr
    assert sorted(gate.ranges) == sorted(f"bytes {part_range(i, size)}/*" for i in range(3))
    (archive,) = server_archives(server, vault).values()
    assert retrieve(server, glacier, vault, archive["ArchiveId"]) == (data, tree_hash(data))


def test_errors_are_one_line_with_distinct_exit_codes(
    *, server: LiveServer, vault: str, env: dict[str, str], tmp_path: Path
) -> None:
    good = tmp_path / "good.txt"
    good.write_bytes(b"fine")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "fifo")  # reading it would block the upload
    cases = {
        3: (env, ["--vault", "no-such-vault", str(good)], "error: not found: vault no-such-vault"),
        4: (
            {**env, "AWS_SECRET_ACCESS_KEY": "wrong"},
            ["--vault", vault, str(good)],
            "error: credentials rejected: InvalidSignatureException",
        ),
        5: (
            {**env, "OPENGLACIER_ENDPOINT_URL": "http://127.0.0.1:9"},
            ["--vault", vault, str(good)],
            "error: endpoint unreachable",
        ),
    }
    for code, (case_env, args, line) in cases.items():
        result = run(case_env, "archive", "upload", *args)
        lines = result.stderr.strip().splitlines()
        assert result.code == code, result
        assert len(lines) == 1, result
        assert lines[0].startswith(line), result
    partly = run(
        env,
        "archive",
        "upload",
        "--vault",
        vault,
        str(good),
        str(tmp_path / "dangling"),
        str(tmp_path / "fifo"),
        str(tmp_path / "missing"),
    )
    assert partly.code == 1
    assert "uploaded good.txt" in partly.stdout
    failures = partly.stderr.strip().splitlines()
    assert failures == [
        f"failed {tmp_path / 'dangling'}: No such file or directory",
        f"failed {tmp_path / 'fifo'}: not a regular file",
        f"failed {tmp_path / 'missing'}: No such file or directory",
    ]
    for args, says in (
        (["--vault", vault, "--part-size", "3MiB"], "power of two"),
        (["--vault", "a/b"], "is not a vault name"),
        (["--vault", vault, "--endpoint-url", "not-a-url"], "Invalid endpoint: not-a-url"),
        (["--vault", vault, "--description", "{size"], "bad --description template"),
    ):
        usage = run(env, "archive", "upload", *args, str(good))
        assert usage.code == 2, usage
        assert says in usage.stderr
        assert "Traceback" not in usage.stderr
    assert "Traceback" not in partly.stderr


def test_vault_commands_and_archive_rm(
    *, server: LiveServer, glacier: Any, env: dict[str, str], tmp_path: Path
) -> None:
    assert run(env, "vault", "create", "transfer-v").code == 0
    listed = run(env, "vault", "ls", "--json")
    assert listed.code == 0
    assert "transfer-v" in {v["VaultName"] for v in listed.json_lines()}
    described = run(env, "vault", "describe", "transfer-v", "--json").json_lines()
    assert described[0]["VaultARN"].endswith(":vaults/transfer-v")
    missing = run(env, "vault", "describe", "no-such-vault")
    assert (missing.code, missing.stderr) == (3, "error: not found: vault no-such-vault\n")

    (tmp_path / "f.txt").write_bytes(b"x")
    assert run(env, "archive", "upload", str(tmp_path / "f.txt"), "--vault", "transfer-v").code == 0
    (archive_id,) = server_archives(server, "transfer-v")
    refused = run(env, "vault", "rm", "transfer-v")
    assert refused.code == 6
    assert "is not empty" in refused.stderr

    removed = run(env, "archive", "rm", str(tmp_path / "f.txt"), "--vault", "transfer-v")
    assert removed.code == 0, removed.stderr
    assert archive_id in removed.stdout
    assert server_archives(server, "transfer-v") == {}
    assert run(env, "archive", "ls", "--vault", "transfer-v", "--json").stdout == ""
    gone = run(env, "archive", "rm", str(tmp_path / "f.txt"), "--vault", "transfer-v")
    assert gone.code == 3
    assert "not in the catalogue" in gone.stderr


def test_a_terminal_gets_progress_bars_and_quiet_gets_nothing(
    vault: str, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "bars").mkdir()
    (tmp_path / "bars" / "a.bin").write_bytes(random_bytes(3 * MIB, 6))
    (tmp_path / "bars" / "b.txt").write_bytes(b"b")
    leader, follower = pty.openpty()
    args = ["archive", "upload", str(tmp_path / "bars"), "--vault", vault, "--part-size", "1MiB"]
    with subprocess.Popen(
        command(*args), env={**env, "COLUMNS": "120"}, stdout=follower, stderr=follower
    ) as process:
        os.close(follower)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
            while chunk := os.read(leader, 65536):
                shown += chunk
        os.close(leader)
    assert process.returncode == 0, shown
    text = shown.decode(errors="replace")
    assert "━" in text  # a bar was drawn
    assert "total" in text
    assert "3.1 MB" in text  # bytes done / total
    assert "uploaded bars/a.bin (3.1 MB" in text
    (tmp_path / "bars" / "c.txt").write_bytes(b"c")
    quiet = run(env, "archive", "upload", str(tmp_path / "bars"), "--vault", vault, "--quiet")
    assert (quiet.code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_the_parts_on_the_endpoint_are_read_over_every_page(glacier: Any, vault: str) -> None:
    """Resume asks ListParts for every page (a real upload has up to 10,000 parts,
    a page at most 1,000): here pages of 2 over 5 parts."""
    upload_id = glacier.initiate_multipart_upload(vaultName=vault, partSize=str(MIB))["uploadId"]
    pieces = [random_bytes(MIB, 10 + i) for i in range(5)]
    for index in (0, 1, 3, 4):  # part 2 missing
        glacier.upload_multipart_part(
            vaultName=vault,
            uploadId=upload_id,
            range=f"bytes {index * MIB}-{(index + 1) * MIB - 1}/*",
            body=pieces[index],
        )
    first_page = glacier.list_parts(vaultName=vault, uploadId=upload_id, limit="2")
    assert first_page["Marker"]  # there is more than one page to read
    size, parts = parts_on_endpoint(glacier, vault, upload_id, "-", page_size=2)
    assert size == MIB
    assert parts == {i * MIB: tree_hash(pieces[i]) for i in (0, 1, 3, 4)}
