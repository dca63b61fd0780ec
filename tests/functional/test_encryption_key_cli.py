"""Encryption keys through the real CLI: `encryption-key create [--add]`, and
every process that opens the stores refused with one line, before it serves
or writes anything, when its key file does not fit the key ids recorded by
earlier starts (storage/encryption_keys.py)."""

from __future__ import annotations

import base64
import os
import stat
import tomllib
from pathlib import Path

import pytest
from test_startup_errors import run_cli

from openglacier.keyring import load_keyring
from support.server import LiveServer

pytestmark = pytest.mark.functional


def key_cli(*args: str | Path, cwd: Path) -> tuple[int, list[str], list[str]]:
    result = run_cli(["encryption-key", *map(str, args)], cwd / "unused-data")
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout.splitlines(), result.stderr.splitlines()


def test_create_writes_a_private_keyring_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    status, out, err = key_cli("create", path, cwd=tmp_path)
    assert (status, err) == (0, [])
    ring = load_keyring(path)
    assert out == [
        f"created key id {ring.current} in {path}",
        f"Back up {path} now, apart from the data: without it, encrypted archives cannot be read.",
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()

    status, out, err = key_cli("create", path, cwd=tmp_path)
    assert (status, out) == (1, [])
    assert err == [
        f"Error: {path} already exists: not overwriting a key file (use --add to add a key)"
    ]
    assert path.read_bytes() == before


def test_add_makes_a_new_current_key_and_keeps_the_old_ones(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    key_cli("create", path, cwd=tmp_path)
    first = load_keyring(path)
    status, out, _ = key_cli("create", "--add", path, cwd=tmp_path)
    assert status == 0
    ring = load_keyring(path)
    assert set(ring.keys) == {first.current, ring.current}
    assert ring.keys[first.current] == first.keys[first.current]
    assert out[0].startswith(f"added key id {ring.current} to {path}")
    assert f"blobs rewrite --key-id {ring.current}" in out[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.tmp"))


def test_show_lists_ids_and_check_values_never_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    key_cli("create", path, cwd=tmp_path)
    key_cli("create", "--add", path, cwd=tmp_path)
    ring = load_keyring(path)
    status, out, _ = key_cli("show", path, cwd=tmp_path)
    assert status == 0
    assert out == [
        f"{k}  {ring.check_value(k)}" + ("  (current)" if k == ring.current else "")
        for k in sorted(ring.keys)
    ]
    for key in ring.keys.values():
        assert base64.b64encode(key).decode() not in "\n".join(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--add", "{dir}/missing.toml"], "cannot read key file {dir}/missing.toml"),
        (["create", "{dir}/no/such/dir/keys.toml"], "cannot create {dir}/no/such/dir/keys.toml"),
        (["show", "{dir}/missing.toml"], "cannot read key file {dir}/missing.toml"),
    ],
)
def test_create_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    status, out, err = key_cli(*(a.format(dir=tmp_path) for a in args), cwd=tmp_path)
    assert (status, out, len(err)) == (1, [], 1)
    assert err[0].startswith(f"Error: {message.format(dir=tmp_path)}")


# --- start-up checks ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data dir whose one start encrypted with the keyring (data, key file)."""
    root = tmp_path_factory.mktemp("keyed")
    key_file = root / "keys.toml"
    assert run_cli(["encryption-key", "create", str(key_file)], root / "x").returncode == 0
    data = root / "data"
    env = {"OPENGLACIER_ENCRYPTION_KEY_FILE": str(key_file)}
    server = LiveServer(data, extra_env=env).start()
    server.stop()
    return data, key_file


def listing(data: Path) -> dict[str, int]:
    """Every file but the SQLite database's own (which any opening touches)."""
    return {
        str(p.relative_to(data)): p.stat().st_size
        for p in data.rglob("*")
        if p.is_file() and not p.name.startswith("metadata.db")
    }


COMMANDS = [
    ["serve"],
    ["worker"],
    ["keys", "create"],
    ["blobs", "migrate", "--to", "file:///nowhere-{id}"],
    ["blobs", "rewrite", "--key-id", "{id}"],
]


def refused(data: Path, command: list[str], key_id: str, *env_key_file: Path) -> str:
    before = listing(data)
    args = [a.format(id=key_id) for a in command]
    env = {"OPENGLACIER_ENCRYPTION_KEY_FILE": str(env_key_file[0])} if env_key_file else {}
    result = run_cli(args, data, **env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # no banner: refused before serving
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert listing(data) == before
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_a_start_without_the_key_file_is_refused(
    deployment: tuple[Path, Path], command: list[str]
) -> None:
    data, key_file = deployment
    key_id = load_keyring(key_file).current
    line = refused(data, command, key_id)
    if command[:2] == ["blobs", "rewrite"]:
        assert line == (
            "Error: blobs rewrite encrypts with a key of the key file: "
            "give --encryption-key-file FILE"
        )
        return
    assert line == (
        f"Error: blobs and secrets are encrypted with key id(s) {key_id}; "
        "start with --encryption-key-file FILE"
    )


@pytest.mark.parametrize("command", COMMANDS[:3], ids=lambda c: "-".join(c[:2]))
def test_a_keyring_without_a_recorded_id_is_refused(
    deployment: tuple[Path, Path], command: list[str], tmp_path: Path
) -> None:
    data, key_file = deployment
    recorded = load_keyring(key_file).current
    other = tmp_path / "other.toml"
    assert run_cli(["encryption-key", "create", str(other)], tmp_path / "x").returncode == 0
    line = refused(data, command, recorded, other)
    assert line.startswith(f"Error: key id(s) {recorded} encrypted data here but {other} does")


@pytest.mark.parametrize("command", COMMANDS[:3], ids=lambda c: "-".join(c[:2]))
def test_another_key_under_a_recorded_id_is_refused(
    deployment: tuple[Path, Path], command: list[str], tmp_path: Path
) -> None:
    data, key_file = deployment
    doc = tomllib.loads(key_file.read_text())
    key_id = doc["current"]
    forged = tmp_path / "forged.toml"
    forged.write_text(
        f'current = "{key_id}"\n[keys]\n{key_id} = "{base64.b64encode(os.urandom(32)).decode()}"\n'
    )
    line = refused(data, command, key_id, forged)
    assert line == (
        f"Error: the key for id {key_id} in {forged} is not the one the data was written "
        "with (its check value differs): use the key file the data was written with"
    )


def test_the_right_key_file_starts(deployment: tuple[Path, Path]) -> None:
    data, key_file = deployment
    server = LiveServer(data, extra_env={"OPENGLACIER_ENCRYPTION_KEY_FILE": str(key_file)})
    server.start()
    try:
        assert server.client().list_vaults()["VaultList"] == []
    finally:
        server.stop()


def test_rewrite_refuses_a_key_id_the_file_lacks_and_a_bad_grace(
    deployment: tuple[Path, Path],
) -> None:
    data, key_file = deployment
    env = {"OPENGLACIER_ENCRYPTION_KEY_FILE": str(key_file)}
    result = run_cli(["blobs", "rewrite", "--key-id", "k-nope"], data, **env)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        f"Error: key id k-nope is not in {key_file} (it holds {load_keyring(key_file).current}): "
        "add a key with `openglacier encryption-key create FILE --add`"
    ]
    result = run_cli(["blobs", "rewrite", "--key-id", "x", "--delete-after", "soon"], data, **env)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "Error: --delete-after: 'soon' is not a duration (e.g. 30d, 12h, 90m, 3600s)"
    ]
