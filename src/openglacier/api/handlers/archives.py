"""UploadArchive, DeleteArchive and the multipart operations (spec 2.18-2.25)."""

from __future__ import annotations

from starlette.responses import Response

from openglacier.api.context import RequestContext
from openglacier.api.protocol import (
    PARTS_LIMIT,
    UPLOADS_LIMIT,
    empty_response,
    json_response,
    parse_limit,
)
from openglacier.api.render import part_json, upload_json
from openglacier.clock import iso_ms
from openglacier.domain.archives import ArchiveReceipt


def _created(receipt: ArchiveReceipt) -> Response:
    return empty_response(
        201,
        {
            "Location": receipt.location,
            "x-amz-archive-id": receipt.archive_id,
            "x-amz-sha256-tree-hash": receipt.tree_hash,
        },
    )


async def upload_archive(ctx: RequestContext) -> Response:
    receipt = await ctx.services.archives.upload(
        ctx.caller,
        ctx.vault_name,
        description=ctx.header("x-amz-archive-description"),
        tree_hash=ctx.header("x-amz-sha256-tree-hash"),
        content_sha256=ctx.payload_sha256,
        content_length=ctx.content_length(),
        body=ctx.stream(),
    )
    return _created(receipt)


async def delete_archive(ctx: RequestContext) -> Response:
    await ctx.services.archives.delete(ctx.caller, ctx.vault_name, ctx.params["archiveId"])
    return empty_response(204)


async def initiate_multipart(ctx: RequestContext) -> Response:
    upload_id, location = await ctx.services.multipart.initiate(
        ctx.caller,
        ctx.vault_name,
        ctx.header("x-amz-part-size"),
        ctx.header("x-amz-archive-description"),
    )
    return empty_response(201, {"Location": location, "x-amz-multipart-upload-id": upload_id})


async def upload_part(ctx: RequestContext) -> Response:
    checksum = await ctx.services.multipart.upload_part(
        ctx.caller,
        ctx.vault_name,
        ctx.params["uploadId"],
        content_range=ctx.header("content-range"),
        content_length=ctx.content_length(),
        tree_hash=ctx.header("x-amz-sha256-tree-hash"),
        content_sha256=ctx.payload_sha256,
        body=ctx.stream(),
    )
    return empty_response(204, {"x-amz-sha256-tree-hash": checksum})


async def complete_multipart(ctx: RequestContext) -> Response:
    receipt = await ctx.services.multipart.complete(
        ctx.caller,
        ctx.vault_name,
        ctx.params["uploadId"],
        ctx.header("x-amz-archive-size"),
        ctx.header("x-amz-sha256-tree-hash"),
    )
    return _created(receipt)


async def abort_multipart(ctx: RequestContext) -> Response:
    await ctx.services.multipart.abort(ctx.caller, ctx.vault_name, ctx.params["uploadId"])
    return empty_response(204)


async def list_multipart_uploads(ctx: RequestContext) -> Response:
    limit = parse_limit(ctx.query("limit"), *UPLOADS_LIMIT)
    page = await ctx.services.multipart.list_uploads(
        ctx.caller, ctx.vault_name, limit, ctx.query("marker")
    )
    arn = ctx.vault_arn()
    return json_response(
        {"Marker": page.marker, "UploadsList": [upload_json(arn, u) for u in page.uploads]}
    )


async def list_parts(ctx: RequestContext) -> Response:
    limit = parse_limit(ctx.query("limit"), *PARTS_LIMIT)
    page = await ctx.services.multipart.list_parts(
        ctx.caller, ctx.vault_name, ctx.params["uploadId"], limit, ctx.query("marker")
    )
    upload = page.upload
    return json_response(
        {
            "MultipartUploadId": upload.upload_id,
            "VaultARN": ctx.vault_arn(),
            "ArchiveDescription": upload.description,
            "PartSizeInBytes": upload.part_size,
            "CreationDate": iso_ms(upload.created_at),
            "Parts": [part_json(p) for p in page.parts],
            "Marker": page.marker,
        }
    )
