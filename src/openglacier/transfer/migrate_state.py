"""The durable state of one `openglacier migrate` run (a SQLite file).

Every step is recorded the moment it is done, in its own transaction, so a run
killed at any point and started again repeats nothing that was finished: an
archive moves pending -> requested (its retrieval job initiated) -> downloaded
(its bytes on local disk, tree hash verified) -> done (written to the
destination), or ends skipped (already there) or failed (with the reason).
Each initiated retrieval is also entered in a ledger, which is what the daily
byte budget counts.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PENDING = "pending"
REQUESTED = "requested"
DOWNLOADED = "downloaded"
DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"
DAY_SECONDS = 86_400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS archives (
    archive_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,          -- order in the source inventory
    size INTEGER NOT NULL,
    tree_hash TEXT NOT NULL,
    description TEXT,
    created TEXT NOT NULL,              -- the source's CreationDate, as given
    state TEXT NOT NULL,
    job_id TEXT,
    new_id TEXT,                        -- the destination's id (differs without import)
    reason TEXT
);
CREATE INDEX IF NOT EXISTS archives_state ON archives (state, position);
CREATE TABLE IF NOT EXISTS retrievals (at REAL NOT NULL, bytes INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Entry:
    archive_id: str
    size: int
    tree_hash: str
    description: str | None
    created: str
    state: str = PENDING
    job_id: str | None = None
    new_id: str | None = None
    reason: str | None = None


class StateMismatch(Exception):
    """The state file belongs to another migration."""


class MigrationState:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Worker threads record their steps too; one connection behind a lock.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a step recorded is a step done
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _run(self, sql: str, args: Iterable[object] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    # --- identity and small values ----------------------------------------------------------
    def get(self, key: str) -> str | None:
        rows = self._run("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def put(self, key: str, value: str | None) -> None:
        if value is None:
            self._run("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._run("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def bind(self, identity: dict[str, str]) -> None:
        """Tie the file to one source and destination; refuse it for any other."""
        for key, value in identity.items():
            known = self.get("identity." + key)
            if known is None:
                self.put("identity." + key, value)
            elif known != value:
                raise StateMismatch(
                    f"{self.path} belongs to another migration ({key} was {known!r}, "
                    f"now {value!r}); use another --state file"
                )

    # --- the inventory ----------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.get("inventory.loaded") == "1"

    def load(self, entries: Iterator[Entry]) -> int:
        """Enter the source inventory, all or nothing."""
        count = 0
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for count, e in enumerate(entries, 1):
                    self._db.execute(
                        "INSERT OR IGNORE INTO archives (archive_id, position, size, tree_hash,"
                        " description, created, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            e.archive_id,
                            count,
                            e.size,
                            e.tree_hash,
                            e.description,
                            e.created,
                            PENDING,
                        ),
                    )
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('inventory.loaded', '1')")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return count

    # --- archives ---------------------------------------------------------------------------
    def entries(self, *states: str, limit: int | None = None) -> list[Entry]:
        """Archives in these states (all if none), in inventory order."""
        sql = (
            "SELECT archive_id, size, tree_hash, description, created, state, job_id, new_id,"
            " reason FROM archives"
        )
        if states:
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
        sql += " ORDER BY position" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return [Entry(*row) for row in self._run(sql, states)]

    def count(self, *states: str) -> tuple[int, int]:
        """How many archives are in these states, and their bytes."""
        marks = ",".join("?" * len(states))
        rows = self._run(
            f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM archives WHERE state IN ({marks})",  # noqa: S608 (only '?' placeholders are formatted in)
            states,
        )
        return int(rows[0][0]), int(rows[0][1])

    def state_of(self, archive_id: str) -> str | None:
        rows = self._run("SELECT state FROM archives WHERE archive_id = ?", (archive_id,))
        return str(rows[0][0]) if rows else None

    def counts(self) -> dict[str, tuple[int, int]]:
        rows = self._run(
            "SELECT state, COUNT(*), COALESCE(SUM(size), 0) FROM archives GROUP BY state"
        )
        return {str(s): (int(n), int(b)) for s, n, b in rows}

    def set_state(
        self,
        archive_id: str,
        state: str,
        *,
        job_id: str | None = None,
        new_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        self._run(
            "UPDATE archives SET state = ?, job_id = ?, new_id = COALESCE(?, new_id), reason = ?"
            " WHERE archive_id = ?",
            (state, job_id, new_id, reason, archive_id),
        )

    def requested(self, archive_id: str, job_id: str, size: int, at: float) -> None:
        """The job and its ledger line in one transaction: the budget counts what was asked."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "UPDATE archives SET state = ?, job_id = ?, reason = NULL WHERE archive_id = ?",
                (REQUESTED, job_id, archive_id),
            )
            self._db.execute("INSERT INTO retrievals VALUES (?, ?)", (at, size))
            self._db.execute("COMMIT")

    def retry_failed(self) -> int:
        rows = self._run(
            "UPDATE archives SET state = ?, job_id = NULL, reason = NULL WHERE state = ?"
            " RETURNING archive_id",
            (PENDING, FAILED),
        )
        return len(rows)

    # --- the daily budget -------------------------------------------------------------------
    def window(self, now: float) -> tuple[int, float | None]:
        """Bytes requested in the 24 hours before `now`, and when the oldest of them
        leaves the window (None if none)."""
        rows = self._run(
            "SELECT COALESCE(SUM(bytes), 0), MIN(at) FROM retrievals WHERE at > ?",
            (now - DAY_SECONDS,),
        )
        total, oldest = rows[0]
        return int(total), (float(oldest) + DAY_SECONDS if oldest is not None else None)
