"""Account-level settings: data retrieval policies and provisioned capacity."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from openglacier.records import CapacityUnit, DataRetrievalRule
from openglacier.storage.metadata.base import TxBase, values_of
from openglacier.storage.metadata.schema import data_retrieval_policies, provisioned_capacity


class AccountOps(TxBase):
    def get_data_retrieval_rule(self, account_id: str, region: str) -> DataRetrievalRule | None:
        row = self._first(
            select(data_retrieval_policies).where(
                data_retrieval_policies.c.account_id == account_id,
                data_retrieval_policies.c.region == region,
            )
        )
        if row is None:
            return None
        return DataRetrievalRule(str(row.strategy), row.bytes_per_hour)

    def set_data_retrieval_rule(
        self, account_id: str, region: str, rule: DataRetrievalRule
    ) -> None:
        values = {"strategy": rule.strategy, "bytes_per_hour": rule.bytes_per_hour}
        stmt = self._insert(data_retrieval_policies).values(
            account_id=account_id, region=region, **values
        )
        self._run(stmt.on_conflict_do_update(index_elements=["account_id", "region"], set_=values))

    def insert_capacity(self, unit: CapacityUnit) -> None:
        self._run(provisioned_capacity.insert().values(values_of(unit)))

    def count_active_capacity(self, account_id: str, region: str, now: datetime) -> int:
        stmt = (
            select(func.count())
            .select_from(provisioned_capacity)
            .where(
                provisioned_capacity.c.account_id == account_id,
                provisioned_capacity.c.region == region,
                provisioned_capacity.c.start_date <= now,
                provisioned_capacity.c.expiration_date > now,
            )
        )
        return int(self._scalar(stmt) or 0)

    def list_capacity(
        self, account_id: str, region: str, expired_after: datetime
    ) -> list[CapacityUnit]:
        stmt = (
            select(provisioned_capacity)
            .where(
                provisioned_capacity.c.account_id == account_id,
                provisioned_capacity.c.region == region,
                provisioned_capacity.c.expiration_date > expired_after,
            )
            .order_by(provisioned_capacity.c.start_date, provisioned_capacity.c.capacity_id)
        )
        return [CapacityUnit(**r._mapping) for r in self._rows(stmt)]
