"""The usage report's daily rollup (`ports.UsageRow`, schema.usage_daily).

Counts are added, never set, so every process of every node flushes its own
in-memory counts (api/usage.py) and the rows add up. The stored snapshot is
set, from the vaults' live counters kept on the write path: never a scan of
the archives.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from openglacier.ports import UsageRow
from openglacier.storage.metadata.base import TxBase
from openglacier.storage.metadata.schema import usage_daily, vaults

KEY = ["day", "account_id", "vault", "kind", "name"]
STORED = "stored"


class UsageOps(TxBase):
    def add_usage(self, rows: Sequence[UsageRow]) -> None:
        if not rows:
            return
        stmt = self._insert(usage_daily).values([_values(r) for r in rows])
        self._run(
            stmt.on_conflict_do_update(
                index_elements=KEY,
                set_={
                    "number": usage_daily.c.number + stmt.excluded.number,
                    "bytes": usage_daily.c.bytes + stmt.excluded.bytes,
                },
            )
        )

    def snapshot_usage(self, day: str) -> int:
        live = self._rows(
            select(vaults.c.account_id, vaults.c.name, vaults.c.live_count, vaults.c.live_size)
        )
        rows = [UsageRow(day, r[0], r[1], STORED, "", int(r[2]), int(r[3])) for r in live]
        if rows:
            stmt = self._insert(usage_daily).values([_values(r) for r in rows])
            self._run(
                stmt.on_conflict_do_update(
                    index_elements=KEY,
                    set_={"number": stmt.excluded.number, "bytes": stmt.excluded.bytes},
                )
            )
        return len(rows)

    def usage_rows(
        self, account_id: str | None, since: str | None, until: str | None
    ) -> list[UsageRow]:
        query = select(usage_daily)
        if account_id is not None:
            query = query.where(usage_daily.c.account_id == account_id)
        if since is not None:
            query = query.where(usage_daily.c.day >= since)
        if until is not None:
            query = query.where(usage_daily.c.day <= until)
        query = query.order_by(*(usage_daily.c[k] for k in KEY))
        return [UsageRow(**d) for d in self._dicts(query)]


def _values(row: UsageRow) -> dict[str, object]:
    return {
        "day": row.day,
        "account_id": row.account_id,
        "vault": row.vault,
        "kind": row.kind,
        "name": row.name,
        "number": row.number,
        "bytes": row.bytes,
    }
