"""A server on the embedded default loads no client library it does not use.

Every API process pays for each import in RSS (the bench's limit is 150 MiB):
psycopg (9 MiB) only for PostgreSQL, httpx and boto3 only for a webhook, SNS,
S3 or the transfer client, and alembic (10 MiB) only when an existing database
needs a migration. Each start runs in a fresh interpreter, as `openglacier
serve` does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("alembic", "boto3", "botocore", "httpx", "psycopg", "s3transfer")
LOADED = "sqlalchemy"  # what a server does use: the check sees it

START = """
import sys
from pathlib import Path

import click

from openglacier.cli.entry import cli

cli.get_command(click.Context(cli), "serve")  # the modules `openglacier serve` loads
from openglacier.config import Settings
from openglacier.server import build_runtime

build_runtime(Settings(data_dir=Path(sys.argv[1])), tune_allocator=False).close()
print(",".join(sorted(name for name in sys.argv[2:] if name in sys.modules)))
"""


def loaded_by_a_start(data_dir: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", START, str(data_dir), LOADED, *HEAVY],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(filter(None, done.stdout.strip().split(",")))


def test_neither_the_first_start_nor_a_restart_loads_them(tmp_path: Path) -> None:
    # The first start creates the database (at head, from schema.py), the
    # second finds it at head: neither needs alembic.
    assert loaded_by_a_start(tmp_path) == {LOADED}
    assert (tmp_path / "metadata.db").exists()
    assert loaded_by_a_start(tmp_path) == {LOADED}
