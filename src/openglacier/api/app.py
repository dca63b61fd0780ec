"""The ASGI application: one entry point for the Glacier API and the admin API.

Request pipeline, in the validation order of spec 1.8 [R]:
route lookup (its error deferred) -> body intake for the signature -> SigV4 ->
`x-amz-glacier-version` -> routing error -> account id -> vault policies (for
vault-scoped operations, `domain/governance/access.py`) -> handler.
Every failure, wherever raised, is rendered by `api.errors`. Before all of it,
`/metrics` and `/health/*` are answered without auth (`api/front.py`); every
other request is metered and access-logged (`api/metering.py`), its request id
set for every log line made while it is served (`logs.REQUEST_ID`).
`/console/` goes to the web console (console/app.py), which has sessions of
its own and serves Glacier operations for its signed-in caller through
`serve_as`: the same routing, policies and handlers, without a signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from openglacier import API_VERSION
from openglacier.api.context import RequestContext
from openglacier.api.errors import error_response, internal_error, storage_error
from openglacier.api.front import Front
from openglacier.api.handlers import HANDLERS
from openglacier.api.http_protocol import check_head
from openglacier.api.metering import ACCOUNT_KEY, ADMIN, OPERATION_KEY, RequestMeter
from openglacier.api.protocol import check_text, parse_json_object
from openglacier.api.routes import Body, Match, match
from openglacier.auth import sigv4
from openglacier.auth.credentials import Authenticator
from openglacier.domain.governance.access import RequestFacts
from openglacier.domain.jobs.params import unwrap
from openglacier.domain.services import Services
from openglacier.errors import (
    AccessDeniedException,
    GlacierError,
    InvalidParameterValueException,
    MissingParameterValueException,
    StorageError,
)
from openglacier.ids import new_request_id
from openglacier.logs import REQUEST_ID
from openglacier.metrics import usage
from openglacier.records import Caller

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AdminHandler = Callable[[Request, str], Awaitable[Response]]
ConsoleApp = Callable[[Request, str], Awaitable[Response]]
ADMIN_PREFIX = "/_admin"
CONSOLE_PREFIX, CONSOLE = "/console", "Console"
log = logging.getLogger("openglacier.api")


class GlacierApp:
    def __init__(
        self,
        services: Services,
        authenticator: Authenticator,
        admin: AdminHandler,
        *,
        max_json_body: int = 1 << 20,
        background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
        front: Front | None = None,
        access_log: bool = True,
        console: ConsoleApp | None = None,
    ) -> None:
        self.services = services
        self.auth = authenticator
        self.admin = admin
        self.max_json_body = max_json_body
        self.background = background  # loops run for the app's lifetime
        self._tasks: list[asyncio.Task[None]] = []
        self.front = front or Front()  # /metrics, /health/*: before routing and auth
        self.access_log = access_log
        self.console = console  # /console/: its own sessions, then serve_as (console/app.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._tasks = [asyncio.create_task(start()) for start in self.background]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                for task in self._tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front.handles(scope["path"]):
            response = await self.front.answer(scope["method"], scope["path"])
            await response(scope, receive, send)
            return
        meter = RequestMeter(receive, send)
        request_id = new_request_id()
        # uvicorn runs each request in a task of its own: the id is this request's.
        token = REQUEST_ID.set(request_id)
        try:
            await self._answer(scope, meter.receive, meter.send, request_id)
        finally:
            meter.record(scope, request_id, self.access_log)
            REQUEST_ID.reset(token)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        request = Request(scope, receive)
        try:
            raw_path = scope.get("raw_path") or scope["path"].encode()
            query = scope.get("query_string", b"")
            check_head(len(raw_path) + (len(query) + 1 if query else 0), scope["headers"])
            path = raw_path.decode("latin-1")
            if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
                scope[OPERATION_KEY] = ADMIN
                response = await self.admin(request, request_id)
            elif self.console is not None and is_console_path(path):
                scope[OPERATION_KEY] = CONSOLE
                response = await self.console(request, request_id)
            else:
                response = await self._glacier(request, path, request_id)
        except ClientDisconnect:
            return  # nobody is left to answer
        except StorageError as error:
            response = storage_error(error, request_id)
        except GlacierError as error:
            response = error_response(error, request_id)
        except Exception:
            response = internal_error(request_id)
        response.headers["x-amzn-RequestId"] = request_id
        await response(scope, receive, send)

    async def _glacier(self, request: Request, path: str, request_id: str) -> Response:
        routed = route(request, path)
        kind = routed.route.body if isinstance(routed, Match) else Body.NONE
        caller, body, declared = await self._authenticate(request, path, kind)
        return await self._serve(
            request, routed, caller=caller, body=body, declared=declared, request_id=request_id
        )

    async def serve_as(
        self, request: Request, path: str, caller: Caller, request_id: str
    ) -> Response:
        """Serve a Glacier request made by `caller`, whom the console's session
        identified instead of a signature: routing, the version header, vault
        policies and handlers exactly as for a signed request. A streamed body's
        x-amz-content-sha256 is still required and checked against its bytes."""
        routed = route(request, path)
        kind = routed.route.body if isinstance(routed, Match) else Body.NONE
        declared = request.headers.get("x-amz-content-sha256")
        body = b""
        if kind is Body.STREAM:
            require_declared(declared)
        else:
            body = await read_bounded(request, self.max_json_body)
        return await self._serve(
            request, routed, caller=caller, body=body, declared=declared, request_id=request_id
        )

    async def _serve(
        self,
        request: Request,
        routed: Match | GlacierError,
        *,
        caller: Caller,
        body: bytes,
        declared: str | None,
        request_id: str,
    ) -> Response:
        request.scope[ACCOUNT_KEY] = caller.account_id  # the signer's, for the access log
        check_version(request.headers.get("x-amz-glacier-version"))
        if isinstance(routed, GlacierError):
            raise routed
        matched = routed
        owner = resolve_account(caller, matched.params["accountId"])
        request.scope[usage.WHERE_KEY] = (  # for the usage report (metrics/usage.py)
            self.services.deps.clock.now().date().isoformat(),
            owner,
            usage.vault_label(matched.params.get("vaultName", "")),
        )
        check_parameters(matched, request)  # before the policy check reads any of them
        checked_vault = None
        if is_account_level(matched):
            # Granted only by identity policies (spec 6.1), which a local server
            # does not have: another account is always refused.
            if owner != caller.account_id:
                raise AccessDeniedException(foreign_account_message(caller, owner))
        else:
            checked_vault = await self.services.access.check(
                caller,
                owner,
                matched.params["vaultName"],
                matched.route.operation,
                partial(request_facts, request, matched, body),
            )
        handler = HANDLERS[matched.route.operation]  # every route has one (tests check)
        ctx = RequestContext(
            request=request,
            request_id=request_id,
            route=matched.route,
            params=matched.params,
            # Services act in the vault owner's account; policy checks used the signer's.
            caller=replace(caller, account_id=owner),
            services=self.services,
            body=body,
            payload_sha256=declared or "",
            checked_vault=checked_vault,
        )
        return await handler(ctx)

    async def _authenticate(
        self, request: Request, path: str, kind: Body
    ) -> tuple[Caller, bytes, str | None]:
        """Verify the signature; returns the caller, the read body and the declared hash.

        Streaming bodies are signed by their declared x-amz-content-sha256, which
        the domain checks against the bytes as they arrive (spec 1.6 step 2).
        """
        declared = request.headers.get("x-amz-content-sha256")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
        to_verify = sigv4.RequestToVerify(
            method=request.method,
            raw_path=path,
            raw_query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
        )
        if kind is Body.STREAM:
            return (
                await self.auth.authenticate(to_verify, require_declared(declared)),
                b"",
                declared,
            )
        body = await read_bounded(request, self.max_json_body)
        computed = hashlib.sha256(body).hexdigest()
        caller = await self.auth.authenticate(to_verify, declared or computed)
        if declared and declared != "UNSIGNED-PAYLOAD":
            sigv4.check_payload_hash(declared, computed)
        return caller, body, declared


def route(request: Request, path: str) -> Match | GlacierError:
    """The request's route, or the routing error to report after authentication
    (spec 1.8 order); the operation goes in the scope for the metrics."""
    try:
        routed = match(request.method, path, dict(request.query_params))
    except GlacierError as error:
        return error
    request.scope[OPERATION_KEY] = routed.route.operation
    return routed


def require_declared(declared: str | None) -> str:
    """A streamed body is checked against its declared x-amz-content-sha256."""
    if not declared:
        raise MissingParameterValueException("Required parameter missing: x-amz-content-sha256")
    return declared


def is_console_path(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def check_parameters(matched: Match, request: Request) -> None:
    """Path labels and query values go to storage lookups: the text rule of JSON
    bodies applies (`check_text`). The vault name and account segment are
    validated in full before any lookup, and keep their own answers."""
    for name, value in matched.params.items():
        if name not in ("vaultName", "accountId"):
            check_text(value, f"the {name} path segment")
    for name, value in request.query_params.multi_items():
        check_text(value, f"the {name} query parameter")


def check_version(value: str | None) -> None:
    """Spec 1.5: the header is required and must name the one API version."""
    if value is None:
        raise MissingParameterValueException("Required parameter missing: API version")
    if value != API_VERSION:
        raise InvalidParameterValueException(
            f"Invalid API version: {value}. The only supported version is {API_VERSION}."
        )


def resolve_account(caller: Caller, account_segment: str) -> str:
    """Spec 1.3: "-" is the caller's own account; otherwise a 12-digit account id."""
    if account_segment == "-":
        return caller.account_id
    if not (len(account_segment) == 12 and account_segment.isascii() and account_segment.isdigit()):
        raise AccessDeniedException(foreign_account_message(caller, account_segment))
    return account_segment


def is_account_level(matched: Match) -> bool:
    """Spec 6.1: CreateVault, ListVaults and the account settings are account-level."""
    return matched.route.operation == "CreateVault" or "vaultName" not in matched.params


def foreign_account_message(caller: Caller, account_segment: str) -> str:
    return (
        f"Access to account {account_segment} is denied: the request was signed with "
        f"credentials of account {caller.account_id}."
    )


def request_facts(request: Request, matched: Match, body: bytes) -> RequestFacts:
    """What policy conditions may test, read leniently: a malformed body gets its
    proper error from the handler, after the policy check."""
    operation = matched.route.operation
    payload = _lenient_json(body) if matched.route.body is Body.JSON else {}
    archive_id = matched.params.get("archiveId")
    if operation == "InitiateJob":
        value = unwrap(payload).get("ArchiveId")
        archive_id = value if isinstance(value, str) else None
    tags = payload.get("Tags") if operation == "AddTagsToVault" else None
    tag_map = (
        {k: v for k, v in tags.items() if isinstance(v, str)} if isinstance(tags, dict) else {}
    )
    keys = payload.get("TagKeys") if operation == "RemoveTagsFromVault" else list(tag_map)
    return RequestFacts(
        source_ip=request.client.host if request.client else None,
        secure_transport=request.url.scheme == "https",
        archive_id=archive_id,
        request_tags=tag_map,
        tag_keys=[k for k in keys if isinstance(k, str)] if isinstance(keys, list) else [],
    )


def _lenient_json(body: bytes) -> dict[str, Any]:
    try:
        return parse_json_object(body)  # the handler's own reader, errors deferred
    except GlacierError:
        return {}


async def read_bounded(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise InvalidParameterValueException(
                f"The request body is too large: more than {limit} bytes."
            )
        chunks.append(chunk)
    return b"".join(chunks)
