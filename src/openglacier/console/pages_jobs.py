"""Jobs, retrieval, download, browser upload, and the page scripts' Glacier proxy.

The upload page's script (static/console.js) speaks the Glacier API itself:
InitiateMultipartUpload, UploadMultipartPart with each part's tree hash and
SHA-256 computed in the page, CompleteMultipartUpload with the archive's tree
hash. It sends them to `/console/api/<Glacier path>`, where the session (and
its CSRF token) stands in for a signature and `GlacierApp.serve_as` does the
rest, so the server checks every hash exactly as for any client.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from openglacier.api.errors import error_response, storage_error
from openglacier.api.metering import ACCOUNT_KEY, OPERATION_KEY
from openglacier.console.app import PREFIX, ConsoleError, Page, Route
from openglacier.console.pages_vaults import quote_segment
from openglacier.errors import GlacierError, StorageError
from openglacier.metrics import usage

TIERS = ("Expedited", "Standard", "Bulk")
STATES = ("InProgress", "Succeeded", "Failed")
FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


async def jobs(page: Page) -> Response:
    name = page.params["vault"]
    query = page.request.query_params
    state, kind = query.get("state", ""), query.get("type", "")
    if state and state not in STATES:
        raise ConsoleError(400, f"A job's state is one of {', '.join(STATES)}.")
    ask = {"limit": "50"}
    if state:
        ask["statuscode"] = state
    if query.get("marker"):
        ask["marker"] = query["marker"]
    listed = await page.glacier("GET", f"/-/vaults/{quote_segment(name)}/jobs", ask)
    rows = [j for j in listed.get("JobList", []) if not kind or j.get("Action") == kind]
    live = any(not job.get("Completed") for job in rows)
    return page.render(
        "jobs.html",
        vault_name=name,
        jobs=rows,
        state=state,
        kind=kind,
        marker=listed.get("Marker") or "",
        refresh=live,
    )


async def job(page: Page) -> Response:
    name, job_id = page.params["vault"], page.params["job"]
    described = await page.glacier("GET", f"/-/vaults/{quote_segment(name)}/jobs/{job_id}")
    return page.render(
        "job.html", vault_name=name, job=described, refresh=not described.get("Completed")
    )


async def retrieve(page: Page) -> Response:
    name, archive_id = page.params["vault"], page.params["archive"]
    tier = (await page.form()).get("tier", "Standard")
    if tier not in TIERS:
        raise ConsoleError(400, f"The tier is one of {', '.join(TIERS)}.")
    body = {"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": tier}
    return await _initiate(page, name, body)


async def inventory(page: Page) -> Response:
    return await _initiate(page, page.params["vault"], {"Type": "inventory-retrieval"})


async def _initiate(page: Page, name: str, body: dict[str, Any]) -> Response:
    answer = await page.glacier("POST", f"/-/vaults/{quote_segment(name)}/jobs", body=body)
    job_id = answer["headers"].get("x-amz-job-id", "")
    return RedirectResponse(f"{PREFIX}/vaults/{quote_segment(name)}/jobs/{job_id}", 303)


async def output(page: Page) -> Response:
    """The job's output as a download, through GetJobOutput: every byte is
    verified on the way out exactly as for an API client."""
    name, job_id = page.params["vault"], page.params["job"]
    path = f"/-/vaults/{quote_segment(name)}/jobs/{job_id}"
    described = await page.glacier("GET", path)
    try:
        response = await page.console.serve_internal(
            page, "GET", f"{path}/output", {}, b"", counted=True
        )
    except StorageError:
        raise
    except GlacierError as error:
        raise ConsoleError(error.http_status, error.message) from None
    stem = described.get("ArchiveId") or f"inventory-{job_id}"
    description = FILENAME_UNSAFE.sub("_", described.get("JobDescription") or "")
    filename = (description or stem)[:100]
    if described.get("Action") == "InventoryRetrieval":
        filename += ".json" if "json" in response.headers.get("content-type", "") else ".csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


async def upload_page(page: Page) -> Response:
    name = page.params["vault"]
    await page.glacier("GET", f"/-/vaults/{quote_segment(name)}")  # the policy check
    return page.render("upload.html", vault_name=name)


async def api(page: Page) -> Response:
    """One Glacier operation for the page's script, answered as the API answers
    (JSON errors with their codes), for the session's caller."""
    request = page.request
    path = "/" + page.params["rest"]
    scope = dict(request.scope)
    scope.update(path=path, raw_path=path.encode())
    inner = Request(scope, request.receive)
    try:
        response = await page.console.api.serve_as(inner, path, page.caller, page.request_id)
    except StorageError as error:
        return storage_error(error, page.request_id)
    except GlacierError as error:
        return error_response(error, page.request_id)
    finally:
        # The metrics and the usage report count the Glacier operation.
        for key in (OPERATION_KEY, ACCOUNT_KEY, usage.WHERE_KEY, usage.RETRIEVAL_KEY):
            if key in scope:
                request.scope[key] = scope[key]
    return response


ROUTES = [
    Route("GET", "/vaults/{vault}/jobs", jobs),
    Route("POST", "/vaults/{vault}/jobs", inventory),
    Route("GET", "/vaults/{vault}/jobs/{job}", job),
    Route("GET", "/vaults/{vault}/jobs/{job}/output", output),
    Route("POST", "/vaults/{vault}/archives/{archive}/retrieve", retrieve),
    Route("GET", "/vaults/{vault}/upload", upload_page),
    Route("*", "/api/{rest:path}", api),
]
