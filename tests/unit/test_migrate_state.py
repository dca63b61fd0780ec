"""The migration state file: the daily byte budget's window and resuming a load."""

from __future__ import annotations

from pathlib import Path

import pytest

from openglacier.transfer.migrate import Migration, Options, Source
from openglacier.transfer.migrate_dest import GlacierUpload
from openglacier.transfer.migrate_state import (
    DAY_SECONDS,
    FAILED,
    PENDING,
    Entry,
    MigrationState,
    StateMismatch,
)


class Quiet:
    def begin(self, archives: int, size: int) -> None:
        pass

    def step(self, kind: str, entry: Entry | None, detail: str = "") -> None:
        pass

    def transferred(self, count: int) -> None:
        pass


def entries(n: int) -> list[Entry]:
    return [Entry(f"id{i}", 100, "0" * 64, None, "2019-01-01T00:00:00Z") for i in range(n)]


@pytest.fixture
def state(tmp_path: Path) -> MigrationState:
    s = MigrationState(tmp_path / "state.sqlite")
    s.load(iter(entries(3)))
    return s


def migration(state: MigrationState, tmp_path: Path, now: list[float], budget: int) -> Migration:
    return Migration(
        Source(None, "-", "v"),
        GlacierUpload(None, "w", 1 << 20, 1),
        state,
        tmp_path,
        options=Options(max_bytes_per_day=budget),
        events=Quiet(),
        clock=lambda: now[0],
    )


def test_budget_counts_the_last_24_hours(state: MigrationState, tmp_path: Path) -> None:
    now = [1000.0]
    m = migration(state, tmp_path, now, budget=250)
    assert m._budget_allows(100)
    state.requested("id0", "job0", 100, now[0])
    state.requested("id1", "job1", 100, now[0] + 10)
    assert state.window(now[0] + 10) == (200, now[0] + DAY_SECONDS)
    assert not m._budget_allows(100)  # 300 > 250
    now[0] += DAY_SECONDS + 1  # the first left the window
    assert state.window(now[0]) == (100, 1010.0 + DAY_SECONDS)
    assert m._budget_allows(100)


def test_an_archive_above_the_budget_goes_alone(state: MigrationState, tmp_path: Path) -> None:
    now = [0.0]
    m = migration(state, tmp_path, now, budget=50)
    assert m._budget_allows(100)  # nothing else in the window: it would never go otherwise
    state.requested("id0", "job0", 100, now[0])
    assert not m._budget_allows(1)


def test_retry_failed_and_reload_keep_progress(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    s = MigrationState(path)
    assert s.load(iter(entries(3))) == 3
    s.set_state("id1", FAILED, reason="boom")
    s.close()
    s = MigrationState(path)
    assert s.loaded
    assert [e.state for e in s.entries()] == [PENDING, FAILED, PENDING]
    assert s.entries(FAILED)[0].reason == "boom"
    assert s.retry_failed() == 1
    assert [e.state for e in s.entries()] == [PENDING] * 3
    s.close()


def test_identity_is_bound_once(tmp_path: Path) -> None:
    s = MigrationState(tmp_path / "state.sqlite")
    s.bind({"from": "a", "to": "b"})
    s.bind({"from": "a", "to": "b"})
    with pytest.raises(StateMismatch, match="belongs to another migration"):
        s.bind({"from": "a", "to": "c"})
    s.close()


def test_every_migrate_flag_has_help_and_an_env_var() -> None:
    from openglacier.cli.migrate import migrate

    for param in migrate.params:
        assert str(param.envvar).startswith("OPENGLACIER_"), param.name
        assert f"Env: {param.envvar}." in getattr(param, "help", ""), param.name
