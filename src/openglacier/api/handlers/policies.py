"""Vault access policy and vault lock operations (spec 2.8-2.14)."""

from __future__ import annotations

from starlette.responses import Response

from openglacier.api.context import RequestContext
from openglacier.api.protocol import empty_response, json_response
from openglacier.domain.governance.vault_policies import lock_json


async def set_access_policy(ctx: RequestContext) -> Response:
    await ctx.services.policies.set_access_policy(ctx.caller, ctx.vault_name, ctx.json())
    return empty_response(204)


async def get_access_policy(ctx: RequestContext) -> Response:
    policy = await ctx.services.policies.get_access_policy(ctx.caller, ctx.vault_name)
    return json_response({"Policy": policy})


async def delete_access_policy(ctx: RequestContext) -> Response:
    await ctx.services.policies.delete_access_policy(ctx.caller, ctx.vault_name)
    return empty_response(204)


async def initiate_lock(ctx: RequestContext) -> Response:
    lock_id = await ctx.services.policies.initiate_lock(ctx.caller, ctx.vault_name, ctx.json())
    return empty_response(201, {"x-amz-lock-id": lock_id})


async def complete_lock(ctx: RequestContext) -> Response:
    await ctx.services.policies.complete_lock(ctx.caller, ctx.vault_name, ctx.params["lockId"])
    return empty_response(204)


async def abort_lock(ctx: RequestContext) -> Response:
    await ctx.services.policies.abort_lock(ctx.caller, ctx.vault_name)
    return empty_response(204)


async def get_lock(ctx: RequestContext) -> Response:
    lock = await ctx.services.policies.get_lock(ctx.caller, ctx.vault_name)
    return json_response(lock_json(lock))
