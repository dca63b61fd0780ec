"""The transfer client's local catalogue: which file became which archive.

Glacier itself knows archives only by id (and an inventory a day late), so the
client remembers, per endpoint and vault, each uploaded file's path, size,
mtime and SHA-256 with its archive id, description and tree hash. That lets
`archive ls` show file names, `archive upload` skip files already uploaded
unchanged, and `archive get`/`rm` take a path instead of a 138-character id.
It also holds the multipart uploads in progress (upload id, part size, file
identity), so that a killed upload is resumed rather than restarted.

One SQLite file in the user's data dir ($XDG_DATA_HOME/openglacier/catalogue.db,
else ~/.local/share/openglacier/catalogue.db); `--catalogue FILE` or
OPENGLACIER_CATALOGUE names another. Every change is committed at once: the
catalogue must be right after a SIGKILL at any point.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openglacier.transfer.endpoint import Endpoint

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS archives (
    endpoint    TEXT NOT NULL,
    account     TEXT NOT NULL,
    vault       TEXT NOT NULL,
    archive_id  TEXT NOT NULL,
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    tree_hash   TEXT NOT NULL,
    description TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (endpoint, vault, archive_id)
);
CREATE INDEX IF NOT EXISTS archives_by_path ON archives (endpoint, vault, path);
CREATE TABLE IF NOT EXISTS uploads (
    endpoint    TEXT NOT NULL,
    account     TEXT NOT NULL,
    vault       TEXT NOT NULL,
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    part_size   INTEGER NOT NULL,
    upload_id   TEXT NOT NULL,
    description TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    PRIMARY KEY (endpoint, vault, path)
);
"""
_SELECT = (
    "SELECT archive_id, path, size, sha256, tree_hash, description, vault,"
    " mtime_ns, uploaded_at, account, endpoint FROM archives "
)


class CatalogueError(Exception):
    """The catalogue file cannot be opened or used (message is one line)."""


def default_path() -> Path:
    """OPENGLACIER_CATALOGUE, else the XDG data dir's openglacier/catalogue.db."""
    named = os.environ.get("OPENGLACIER_CATALOGUE")
    if named:
        return Path(named).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "openglacier" / "catalogue.db"


def endpoint_key(glacier: Any, endpoint: Endpoint) -> str:
    """The catalogue's name for an endpoint: the URL the client really talks to
    (for AWS, the region's endpoint), plus the account id when one was named.

    The same vault name at two endpoints (or regions) is two different vaults,
    so every catalogue row is keyed by this string.
    """
    url = str(glacier.meta.endpoint_url).rstrip("/")
    return url if endpoint.account_id == "-" else f"{url}#{endpoint.account_id}"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CatalogueEntry:
    archive_id: str
    path: str  # absolute path of the file that was uploaded
    size: int
    sha256: str
    tree_hash: str
    description: str  # as sent to Glacier (printable ASCII; see transfer/naming.py)
    vault: str
    mtime_ns: int = 0
    uploaded_at: str = ""
    account: str = "-"
    endpoint: str = ""


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload initiated for a file and not completed yet."""

    path: str
    size: int
    mtime_ns: int
    part_size: int
    upload_id: str
    description: str
    started_at: str


class Catalogue:
    """The catalogue database; safe to share between the upload threads."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, path: Path | None = None) -> Catalogue:
        path = path or default_path()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            created = not path.exists()
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
            if created:  # file names are nobody else's business
                path.chmod(0o600)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                conn.close()
                raise CatalogueError(
                    f"catalogue {path} was written by a newer openglacier (schema {version})"
                )
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.commit()
        except (OSError, sqlite3.Error) as exc:
            raise CatalogueError(f"cannot open catalogue {path}: {exc}") from exc
        return cls(conn, path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- archives -------------------------------------------------------------------------
    def add_archive(self, endpoint: str, entry: CatalogueEntry) -> None:
        with self._lock, self._conn:
            self._insert_archive(endpoint, entry)

    def _insert_archive(self, endpoint: str, entry: CatalogueEntry) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO archives (endpoint, account, vault, archive_id, path,"
            " size, mtime_ns, sha256, tree_hash, description, uploaded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                endpoint,
                entry.account,
                entry.vault,
                entry.archive_id,
                entry.path,
                entry.size,
                entry.mtime_ns,
                entry.sha256,
                entry.tree_hash,
                entry.description,
                entry.uploaded_at or now_iso(),
            ),
        )

    def archives(self, endpoint: str, vault: str) -> list[CatalogueEntry]:
        """Every archive recorded for the vault, by path then upload time."""
        return list(
            self._entries(
                "WHERE endpoint = ? AND vault = ? ORDER BY path, uploaded_at", (endpoint, vault)
            )
        )

    def same_file(
        self, endpoint: str, vault: str, path: str, size: int, mtime_ns: int
    ) -> list[CatalogueEntry]:
        """Archives recorded for this path with this size and mtime (the caller then
        compares SHA-256, which costs a read of the file)."""
        return list(
            self._entries(
                "WHERE endpoint = ? AND vault = ? AND path = ? AND size = ? AND mtime_ns = ?",
                (endpoint, vault, path, size, mtime_ns),
            )
        )

    def find_archive(self, endpoint_key: str, vault: str, path_or_id: str) -> CatalogueEntry | None:
        """The entry with this archive id, else the latest upload of this path (as
        stored, then as an absolute path from the current directory)."""
        where = "WHERE endpoint = ? AND vault = ? AND {} = ? ORDER BY uploaded_at DESC LIMIT 1"
        for column, value in (
            ("archive_id", path_or_id),
            ("path", path_or_id),
            ("path", str(Path(path_or_id).expanduser().resolve())),
        ):
            found = list(self._entries(where.format(column), (endpoint_key, vault, value)))
            if found:
                return found[0]
        return None

    def remove_archive(self, endpoint: str, vault: str, archive_id: str) -> bool:
        with self._lock, self._conn:
            cur = self._conn.execute(
                "DELETE FROM archives WHERE endpoint = ? AND vault = ? AND archive_id = ?",
                (endpoint, vault, archive_id),
            )
            return cur.rowcount > 0

    def _entries(self, where: str, params: tuple[Any, ...]) -> Iterator[CatalogueEntry]:
        with self._lock:
            rows = self._conn.execute(_SELECT + where, params).fetchall()
        return (CatalogueEntry(*row) for row in rows)

    # --- uploads in progress -------------------------------------------------------------
    def pending_upload(self, endpoint: str, vault: str, path: str) -> PendingUpload | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT path, size, mtime_ns, part_size, upload_id, description, started_at"
                " FROM uploads WHERE endpoint = ? AND vault = ? AND path = ?",
                (endpoint, vault, path),
            ).fetchone()
        return PendingUpload(*row) if row else None

    def start_upload(self, endpoint: str, account: str, vault: str, upload: PendingUpload) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO uploads (endpoint, account, vault, path, size, mtime_ns,"
                " part_size, upload_id, description, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    endpoint,
                    account,
                    vault,
                    upload.path,
                    upload.size,
                    upload.mtime_ns,
                    upload.part_size,
                    upload.upload_id,
                    upload.description,
                    upload.started_at,
                ),
            )

    def finish_upload(
        self, endpoint: str, vault: str, upload_id: str, entry: CatalogueEntry | None
    ) -> None:
        """Forget the upload and, when it completed, record its archive: in one
        transaction, so a kill leaves either the upload or the archive."""
        with self._lock, self._conn:
            self._conn.execute(
                "DELETE FROM uploads WHERE endpoint = ? AND vault = ? AND upload_id = ?",
                (endpoint, vault, upload_id),
            )
            if entry is not None:
                self._insert_archive(endpoint, entry)
