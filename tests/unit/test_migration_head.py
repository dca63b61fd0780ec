"""`HEAD_REVISION`, which spares a server alembic when its database is current,
names the newest migration in versions/ (alembic's own reading of the files)."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from openglacier.storage.migrations import HEAD_REVISION, alembic_config


def test_head_revision_is_alembics_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [HEAD_REVISION], "a new migration: update HEAD_REVISION in migrations/"
