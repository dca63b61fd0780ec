"""Rendering every error the same way (spec 1.7, 1.8; design 5).

Errors raised anywhere (authentication, routing, handlers, domain, storage) go
through `error_response`, so all of them carry `Content-Type: application/json`,
`x-amzn-RequestId`, `x-amzn-ErrorType` (botocore reads the code from it first)
and the `code`/`message`/`type` body.
"""

from __future__ import annotations

import json
import logging

from starlette.responses import Response

from openglacier.errors import GlacierError, ServiceUnavailableException, StorageError

log = logging.getLogger("openglacier.api")
INTERNAL_MESSAGE = "The service cannot complete the request. Please retry."
STORAGE_MESSAGE = "The service's storage is unavailable. Please retry."


def error_response(error: GlacierError, request_id: str) -> Response:
    body = json.dumps({"code": error.code, "message": error.message, "type": error.fault})
    return Response(
        content=body.encode(),
        status_code=error.http_status,
        media_type="application/json",
        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": error.code},
    )


def internal_error(request_id: str) -> Response:
    """An unexpected exception: logged with its traceback, never shown to the client."""
    log.exception("internal error in request %s", request_id)
    return error_response(ServiceUnavailableException(INTERNAL_MESSAGE), request_id)


def storage_error(error: StorageError, request_id: str) -> Response:
    """A store that failed (a gateway down, a full disk, a database error): the
    detail names endpoints, paths and driver messages, so it goes to the log,
    one line, and the client gets the retryable 5xx without it (or with the
    error's own `client_message`: a missing encryption key names its id)."""
    log.error("storage failure in request %s: %s", request_id, error.message)
    message = error.client_message or STORAGE_MESSAGE
    return error_response(ServiceUnavailableException(message), request_id)
