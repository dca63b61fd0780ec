"""SIGKILL while an empty database is created at head: nothing of it stays.

`upgrade_to_head` creates an empty database's tables from `schema.py` and
writes the version row in one transaction. A process killed anywhere in it
must leave the database empty, so the next start creates it again; a half
made schema without its version row would send that start to alembic, whose
first migration would find its tables already there and refuse to start.

The kill is real: a child process SIGKILLs itself from SQLAlchemy's events
after the Nth table is created, after the version table is, or as the
transaction is about to COMMIT.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from sqlalchemy import inspect

from openglacier.storage.metadata.engine import make_engine
from openglacier.storage.metadata.schema import metadata
from openglacier.storage.migrations import HEAD_REVISION, upgrade_to_head
from support.schema_checks import TABLES, current_revision, schema_differences

AT_COMMIT = 0

CHILD = """
import os, signal, sys

from sqlalchemy import Engine, event

from openglacier.storage.metadata.schema import metadata
from openglacier.storage.migrations import VERSIONS, upgrade_to_head

url, kill_at = sys.argv[1], int(sys.argv[2])
created = 0


def die(*_, **__):
    os.kill(os.getpid(), signal.SIGKILL)


def after_create(*_, **__):
    global created
    created += 1
    if created == kill_at:
        die()


if kill_at == 0:
    event.listen(Engine, "commit", die)
for table in [*metadata.sorted_tables, VERSIONS]:
    event.listen(table, "after_create", after_create)
upgrade_to_head(url)
"""

# After the first table, one in the middle, the last of schema.py's, the
# version table, and at COMMIT (the version row written).
KILL_POINTS = [1, len(TABLES) // 2, len(TABLES), len(TABLES) + 1, AT_COMMIT]


def test_kill_points_cover_the_creation() -> None:
    assert len(metadata.sorted_tables) == len(TABLES)


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_a_killed_creation_leaves_nothing_and_the_next_start_creates_it(
    empty_db_url: str, kill_at: int
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, empty_db_url, str(kill_at)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr  # the kill point was reached
    engine = make_engine(empty_db_url)
    try:
        assert inspect(engine).get_table_names() == []
        upgrade_to_head(empty_db_url)
        assert current_revision(engine) == HEAD_REVISION
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
        assert schema_differences(engine) == []
    finally:
        engine.dispose()
