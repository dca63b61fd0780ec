"""Job operations (spec 2.26-2.29) and vault notifications (spec 2.5-2.7)."""

from __future__ import annotations

from starlette.responses import Response

from openglacier.api.context import RequestContext
from openglacier.api.protocol import empty_response, json_response, parse_limit
from openglacier.api.streaming import WindowedResponse
from openglacier.domain.jobs.description import job_description
from openglacier.domain.jobs.service import JOBS_LIMIT, parse_completed_filter, parse_status_filter
from openglacier.metrics.usage import RETRIEVAL_KEY


async def initiate_job(ctx: RequestContext) -> Response:
    job = await ctx.services.jobs.initiate(ctx.caller, ctx.vault_name, ctx.json())
    if job.retrieval is not None:  # counted by the usage report (metrics/usage.py)
        ctx.request.scope[RETRIEVAL_KEY] = job.retrieval
    headers = {"Location": job.location, "x-amz-job-id": job.job_id}
    if job.output_path is not None:
        headers["x-amz-job-output-path"] = job.output_path
    return empty_response(202, headers)


async def describe_job(ctx: RequestContext) -> Response:
    vault, job = await ctx.services.jobs.describe(
        ctx.caller, ctx.vault_name, ctx.params["jobId"], checked=ctx.checked_vault
    )
    return json_response(job_description(job, ctx.vault_arn_of(vault)))


async def list_jobs(ctx: RequestContext) -> Response:
    limit = parse_limit(ctx.query("limit"), *JOBS_LIMIT)
    status = parse_status_filter(ctx.query("statuscode"))
    completed = parse_completed_filter(ctx.query("completed"))
    page = await ctx.services.jobs.list(
        ctx.caller,
        ctx.vault_name,
        limit=limit,
        marker=ctx.query("marker") or None,
        status=status,
        completed=completed,
        checked=ctx.checked_vault,
    )
    arn = ctx.vault_arn_of(page.vault)
    return json_response(
        {"JobList": [job_description(j, arn) for j in page.jobs], "Marker": page.next_marker}
    )


async def get_job_output(ctx: RequestContext) -> Response:
    output = await ctx.services.jobs.output(
        ctx.caller,
        ctx.vault_name,
        ctx.params["jobId"],
        ctx.header("range"),
        checked=ctx.checked_vault,
    )
    window = output.window
    # Content-Type set verbatim: Starlette's media_type would add "; charset=utf-8"
    # to text/csv, and clients compare the value exactly (spec 1.7).
    headers = {
        "Content-Type": output.content_type,
        "Content-Length": str(window.length),
        "Accept-Ranges": "bytes",
    }
    if window.content_range is not None:
        headers["Content-Range"] = window.content_range
    if output.checksum is not None:
        headers["x-amz-sha256-tree-hash"] = output.checksum
    if output.archive_description:
        headers["x-amz-archive-description"] = output.archive_description
    return await WindowedResponse.start(output.body, window.status, headers)


async def set_notifications(ctx: RequestContext) -> Response:
    await ctx.services.notifications.set(ctx.caller, ctx.vault_name, ctx.json())
    return empty_response(204)


async def get_notifications(ctx: RequestContext) -> Response:
    config = await ctx.services.notifications.get(ctx.caller, ctx.vault_name)
    return json_response({"SNSTopic": config.sns_topic, "Events": list(config.events)})


async def delete_notifications(ctx: RequestContext) -> Response:
    await ctx.services.notifications.delete(ctx.caller, ctx.vault_name)
    return empty_response(204)
