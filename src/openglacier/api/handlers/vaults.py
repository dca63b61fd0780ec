"""Vault and tag operations (spec 2.1-2.4, 2.15-2.17)."""

from __future__ import annotations

from starlette.responses import Response

from openglacier.api.context import RequestContext
from openglacier.api.protocol import (
    VAULTS_LIMIT,
    empty_response,
    json_response,
    parse_limit,
    string_list,
    string_map,
)
from openglacier.api.render import vault_json


async def create_vault(ctx: RequestContext) -> Response:
    vault = await ctx.services.vaults.create(ctx.caller, ctx.vault_name)
    # Spec 1.3: Location always shows the numeric account id, never "-".
    return empty_response(201, {"Location": f"/{ctx.account_id}/vaults/{vault.name}"})


async def describe_vault(ctx: RequestContext) -> Response:
    # The policy check's snapshot already holds the row DescribeVault reports:
    # answering from it saves a second read transaction (about a sixth of the
    # request's server time). Without it, `describe` reads it or answers 404.
    vault = ctx.checked_vault or await ctx.services.vaults.describe(ctx.caller, ctx.vault_name)
    return json_response(vault_json(ctx.services.deps, vault))


async def list_vaults(ctx: RequestContext) -> Response:
    limit = parse_limit(ctx.query("limit"), *VAULTS_LIMIT)
    marker = ctx.query("marker")
    start = ctx.services.vaults.marker_to_name(ctx.caller, marker) if marker else None
    page = await ctx.services.vaults.list(ctx.caller, start, limit)
    deps = ctx.services.deps
    next_marker = (
        deps.vault_arn(ctx.caller.region, ctx.account_id, page.next_name)
        if page.next_name
        else None
    )
    return json_response(
        {"Marker": next_marker, "VaultList": [vault_json(deps, v) for v in page.vaults]}
    )


async def delete_vault(ctx: RequestContext) -> Response:
    await ctx.services.vaults.delete(ctx.caller, ctx.vault_name)
    return empty_response(204)


async def add_tags(ctx: RequestContext) -> Response:
    tags = string_map(ctx.json().get("Tags"), "Tags")
    await ctx.services.tags.add(ctx.caller, ctx.vault_name, tags)
    return empty_response(204)


async def remove_tags(ctx: RequestContext) -> Response:
    keys = string_list(ctx.json().get("TagKeys"), "TagKeys")
    await ctx.services.tags.remove(ctx.caller, ctx.vault_name, keys)
    return empty_response(204)


async def list_tags(ctx: RequestContext) -> Response:
    return json_response({"Tags": await ctx.services.tags.list(ctx.caller, ctx.vault_name)})
