"""Data retrieval policies and provisioned capacity (spec 2.30-2.33, 6.4, 6.5).

Both are account-level (per account and region). Get/Set/Purchase/List live
here; their effect on InitiateJob (PolicyEnforcedException for Standard
retrievals, InsufficientCapacityException for Expedited ones) is the next step
of issue 4.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from typing import Any

from openglacier.domain.context import Deps
from openglacier.errors import (
    InvalidParameterValueException,
    LimitExceededException,
    MissingParameterValueException,
    SerializationException,
)
from openglacier.ids import new_capacity_id
from openglacier.ports import MetadataTx
from openglacier.records import Caller, CapacityUnit, DataRetrievalRule

STRATEGIES = ("BytesPerHour", "FreeTier", "None")
DEFAULT_RULE = DataRetrievalRule("None")  # spec 9 #19 [R]
MAX_BYTES_PER_HOUR = 2**63 - 1
MAX_CAPACITY_UNITS = 2
LISTED_AFTER_EXPIRY = timedelta(days=30)  # spec 2.33 [R]


def parse_data_retrieval_policy(body: dict[str, Any]) -> DataRetrievalRule:
    """`{"Policy": {"Rules": [{"Strategy": ..., "BytesPerHour": n}]}}` (spec 2.30)."""
    policy = body.get("Policy")
    if policy is None:
        raise MissingParameterValueException("Required parameter missing: Policy")
    if not isinstance(policy, dict):
        raise SerializationException("Member Policy must be an object.")
    rules = policy.get("Rules")
    if rules is None:
        raise MissingParameterValueException("Required parameter missing: Rules")
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise SerializationException("Member Rules must be a list of objects.")
    if len(rules) != 1:
        raise InvalidParameterValueException(
            "Invalid data retrieval policy: there must be exactly one rule."
        )
    return _rule(rules[0])


def _rule(raw: dict[str, Any]) -> DataRetrievalRule:
    strategy = raw.get("Strategy")
    if strategy is None:
        raise MissingParameterValueException("Required parameter missing: Strategy")
    if strategy not in STRATEGIES:
        raise InvalidParameterValueException(
            f"Invalid Strategy: {strategy}. Valid values are: {', '.join(STRATEGIES)}."
        )
    rate = raw.get("BytesPerHour")
    if strategy != "BytesPerHour":
        if rate is not None:
            raise InvalidParameterValueException(
                f"BytesPerHour is only allowed with the BytesPerHour strategy, not {strategy}."
            )
        return DataRetrievalRule(strategy)
    if rate is None:
        raise MissingParameterValueException("Required parameter missing: BytesPerHour")
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise SerializationException("Member BytesPerHour must be an integer.")
    if not 1 <= rate <= MAX_BYTES_PER_HOUR:
        raise InvalidParameterValueException(
            f"Invalid BytesPerHour: {rate}. It must be between 1 and {MAX_BYTES_PER_HOUR}."
        )
    return DataRetrievalRule(strategy, rate)


def rule_json(rule: DataRetrievalRule) -> dict[str, Any]:
    """BytesPerHour appears only with its strategy (spec 2.31)."""
    item: dict[str, Any] = {"Strategy": rule.strategy}
    if rule.bytes_per_hour is not None:
        item["BytesPerHour"] = rule.bytes_per_hour
    return {"Policy": {"Rules": [item]}}


def one_month_later(start: datetime) -> datetime:
    """Spec 2.32: same day next month, or its last day (Jan 31 -> Feb 28); whole seconds."""
    year = start.year + start.month // 12
    month = start.month % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day, microsecond=0)


class AccountSettingsService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def get_retrieval_policy(self, caller: Caller) -> DataRetrievalRule:
        rule = await self.deps.in_read_tx(
            lambda tx: tx.get_data_retrieval_rule(caller.account_id, caller.region)
        )
        return rule or DEFAULT_RULE

    async def set_retrieval_policy(self, caller: Caller, body: dict[str, Any]) -> None:
        rule = parse_data_retrieval_policy(body)
        await self.deps.in_tx(
            lambda tx: tx.set_data_retrieval_rule(caller.account_id, caller.region, rule)
        )

    async def purchase_capacity(self, caller: Caller) -> CapacityUnit:
        def run(tx: MetadataTx) -> CapacityUnit:
            now = self.deps.clock.now()
            # The count and the insert share the transaction; SQLite serialises
            # writers and PostgreSQL sees the same count under the account's rows.
            active = tx.count_active_capacity(caller.account_id, caller.region, now)
            if active >= MAX_CAPACITY_UNITS:
                raise LimitExceededException(
                    f"Provisioned capacity limit exceeded: an account can hold at most "
                    f"{MAX_CAPACITY_UNITS} units."
                )
            unit = CapacityUnit(
                capacity_id=new_capacity_id(),
                account_id=caller.account_id,
                region=caller.region,
                start_date=now,
                expiration_date=one_month_later(now),
            )
            tx.insert_capacity(unit)
            return unit

        return await self.deps.in_tx(run)

    async def list_capacity(self, caller: Caller) -> list[CapacityUnit]:
        since = self.deps.clock.now() - LISTED_AFTER_EXPIRY
        return await self.deps.in_read_tx(
            lambda tx: tx.list_capacity(caller.account_id, caller.region, since)
        )
