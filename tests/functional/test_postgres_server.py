"""The same server on PostgreSQL metadata (`--metadata-url postgresql://...`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from openglacier.treehash import MIB, tree_hash
from support.server import LiveServer
from support.services import fresh_pg_database
from support.uploads import multipart_upload

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_server(tmp_path: Path, pg_admin: URL) -> Iterator[LiveServer]:
    with fresh_pg_database(pg_admin) as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://")  # what users type
        live = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_METADATA_URL": plain})
        yield live.start()
        live.stop()


def test_live_server_on_postgresql(pg_server: LiveServer) -> None:
    glacier = pg_server.client()
    glacier.create_vault(vaultName="pg")
    single = glacier.upload_archive(vaultName="pg", body=b"on postgres")
    data = bytes(range(256)) * (MIB // 256) + b"tail"
    done = multipart_upload(glacier, "pg", data)
    assert done["checksum"] == tree_hash(data)
    described = glacier.describe_vault(vaultName="pg")
    assert described["NumberOfArchives"] == 2
    assert described["SizeInBytes"] == len(data) + len(b"on postgres") + 2 * 32768
    assert pg_server.admin("POST", "/audit").json() == {"checked": 2, "problems": []}
    for archive_id in (single["archiveId"], done["archiveId"]):
        glacier.delete_archive(vaultName="pg", archiveId=archive_id)
    glacier.delete_vault(vaultName="pg")
    assert glacier.list_vaults()["VaultList"] == []
