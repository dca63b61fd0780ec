"""The usage report's in-memory counts (docs/operations.md, Usage report).

Every request that reached an account (signature checked, account resolved)
is counted here by `api/metering.py`, per (day, account, vault, kind, name):
a dict lookup and two additions, no I/O. Each process's maintenance pass
drains the counts and adds them to the daily rollup table
(`MetadataTx.add_usage`), so any number of processes and nodes add up; a
crash loses only what was counted since that process's last flush.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

from openglacier.domain.validation import is_valid_vault_name
from openglacier.ports import UsageRow

# Put in the request scope by the app once the account is known: (day, account, vault).
WHERE_KEY = "openglacier.usage.where"
# Put in the scope by InitiateJob's handler: (tier, bytes) of a retrieval or select.
RETRIEVAL_KEY = "openglacier.usage.retrieval"
REQUEST, UPLOAD, RETRIEVAL, STORED = "request", "upload", "retrieval", "stored"
# Requests naming an invalid vault (refused later): counted under a name no
# vault can have, so an over-long or binary path segment never reaches the table.
INVALID_VAULT = "(invalid)"

Key = tuple[str, str, str, str, str]


class UsageCounts:
    __slots__ = ("_cells",)

    def __init__(self) -> None:
        self._cells: dict[Key, list[int]] = {}

    def add(self, key: Key, number: int, size: int) -> None:
        cell = self._cells.get(key)
        if cell is None:
            self._cells[key] = [number, size]
        else:
            cell[0] += number
            cell[1] += size

    def drain(self) -> list[UsageRow]:
        """Everything counted so far, and start again from zero."""
        cells, self._cells = self._cells, {}
        return [UsageRow(*key, number, size) for key, (number, size) in cells.items()]

    def restore(self, rows: Sequence[UsageRow]) -> None:
        """Put back a drain whose flush failed: counted again at the next one."""
        for r in rows:
            self.add((r.day, r.account_id, r.vault, r.kind, r.name), r.number, r.bytes)


USAGE = UsageCounts()  # the process's counts, like its Prometheus counters


def vault_label(name: str) -> str:
    """The vault a request is counted under: "" for account-level operations."""
    return name if not name or is_valid_vault_name(name) else INVALID_VAULT


def count_request(
    scope: MutableMapping[str, Any], operation: str, status: int, received: int
) -> None:
    """Count one metered request, if it got as far as an account."""
    where = scope.get(WHERE_KEY)
    if where is None:
        return
    day, account, vault = where
    USAGE.add((day, account, vault, REQUEST, operation), 1, 0)
    if status >= 300:
        return
    if operation == "UploadArchive":
        USAGE.add((day, account, vault, UPLOAD, ""), 1, received)
    elif operation == "CompleteMultipartUpload":
        USAGE.add((day, account, vault, UPLOAD, ""), 1, _archive_size(scope))
    elif operation == "InitiateJob":
        retrieval = scope.get(RETRIEVAL_KEY)
        if retrieval is not None:
            tier, size = retrieval
            USAGE.add((day, account, vault, RETRIEVAL, tier), 1, size)


def _archive_size(scope: MutableMapping[str, Any]) -> int:
    # A successful completion's x-amz-archive-size is the archive's (checked).
    for name, value in scope["headers"]:
        if name == b"x-amz-archive-size":
            return int(value)
    return 0
