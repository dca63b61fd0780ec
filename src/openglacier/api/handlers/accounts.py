"""Account-level settings (spec 2.30-2.33)."""

from __future__ import annotations

from starlette.responses import Response

from openglacier.api.context import RequestContext
from openglacier.api.protocol import empty_response, json_response
from openglacier.clock import iso_ms
from openglacier.domain.account_settings import rule_json


async def get_data_retrieval_policy(ctx: RequestContext) -> Response:
    return json_response(rule_json(await ctx.services.accounts.get_retrieval_policy(ctx.caller)))


async def set_data_retrieval_policy(ctx: RequestContext) -> Response:
    await ctx.services.accounts.set_retrieval_policy(ctx.caller, ctx.json())
    return empty_response(204)


async def purchase_provisioned_capacity(ctx: RequestContext) -> Response:
    unit = await ctx.services.accounts.purchase_capacity(ctx.caller)
    return empty_response(201, {"x-amz-capacity-id": unit.capacity_id})


async def list_provisioned_capacity(ctx: RequestContext) -> Response:
    units = await ctx.services.accounts.list_capacity(ctx.caller)
    # A JSON array (spec 9 #24); ExpirationDate in whole seconds, shown as .000Z.
    return json_response(
        {
            "ProvisionedCapacityList": [
                {
                    "CapacityId": u.capacity_id,
                    "StartDate": iso_ms(u.start_date),
                    "ExpirationDate": iso_ms(u.expiration_date),
                }
                for u in units
            ]
        }
    )
