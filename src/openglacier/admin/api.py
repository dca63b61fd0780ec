"""Admin API: operator and test hooks outside the Glacier namespace.

Every endpoint, with bodies, answers and errors, is documented in
docs/admin-api.md (`tests/api/test_admin.py` keeps that file and `ROUTES` in
step). Paths live under `/_admin/`; every call but `GET /_admin/health` needs
`Authorization: Bearer <admin token>` (401 with `WWW-Authenticate: Bearer`
otherwise, RFC 6750). A Glacier access key never works here, and the admin
token never works on the Glacier API. Errors have the Glacier JSON shape
(`code`, `message`, `type`) and `x-amzn-RequestId`.

    GET  /_admin/health                        liveness (no auth)
    GET  /_admin/clock                         the service clock
    POST /_admin/clock/advance                 {"seconds": n}; only with clock = "manual"
    POST /_admin/inventory                     {"account_id", "vault"} or {} for every dirty vault
    POST /_admin/maintenance                   one maintenance pass now
    POST /_admin/audit                         verify stored archives against their hashes
    POST /_admin/jobs/run                      complete every job due now (and wait for
                                               those other runners hold)
    POST /_admin/jobs/{jobId}/complete         complete one in-progress job now, due or not
    POST /_admin/jobs/{jobId}/fail             {"message": "..."}: fail one job now
    POST /_admin/notifications/deliver         deliver every due notification now
    GET  /_admin/notifications?state=&limit=   the notification outbox
    GET  /_admin/vaults/{account}/{vault}/archives?after=&limit=   live archives
    POST /_admin/vaults/{account}/{vault}/archives/{archiveId}/import   create an archive
                                               with that id (body: its bytes, streamed)
    GET  /_admin/damage?state=&after=&limit=   damage records (open, repaired)
    GET  /_admin/scrub                         the scrubber's progress and schedule
    POST /_admin/scrub                         a full scrub pass now, unpaced
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from functools import partial
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response

from openglacier.admin.audit import audit_archives
from openglacier.admin.imports import import_archive
from openglacier.api.app import read_bounded
from openglacier.api.errors import error_response
from openglacier.api.protocol import check_text, json_response, parse_json_object, parse_limit
from openglacier.api.routes import split_path
from openglacier.clock import ManualClock, iso_ms
from openglacier.domain.scrub import Scrubber, ScrubBusy, damage_dict
from openglacier.domain.scrub import status as scrub_status
from openglacier.domain.services import Services
from openglacier.errors import (
    GlacierError,
    InvalidParameterValueException,
    MissingAuthenticationTokenException,
    ResourceNotFoundException,
    ServiceUnavailableException,
)
from openglacier.notify.deliver import DELIVERED, FAILED, PENDING
from openglacier.ports import DamageRecord, MetadataTx
from openglacier.records import Caller, Job

REALM = 'Bearer realm="openglacier-admin"'
MAX_ADVANCE_SECONDS = 100 * 365 * 86_400  # a century: far past any test, far below overflow


class AdminAuthenticationRequired(MissingAuthenticationTokenException):
    """No bearer token: 401, and RFC 6750 3.1 says to name no error code."""

    http_status = 401
    challenge: ClassVar[str] = REALM


class AdminTokenRejected(GlacierError):
    """A bearer token that is not the admin token: RFC 6750 `invalid_token`, 401.

    403 is for a valid token lacking scope, which the one admin token never is.
    The code is AWS's for "the security token included in the request is invalid".
    """

    code = "UnrecognizedClientException"
    http_status = 401
    fault = "Client"
    challenge: ClassVar[str] = REALM + ', error="invalid_token"'


class AdminConflict(GlacierError):
    """The resource exists but is in a state that forbids the call (a finished job)."""

    code = "ConflictException"
    http_status = 409
    fault = "Client"


class AdminMethodNotAllowed(InvalidParameterValueException):
    http_status = 405


Handler = Callable[["AdminApi", dict[str, str], dict[str, Any], Request], Awaitable[Response]]


@dataclass(frozen=True)
class AdminRoute:
    method: str
    pattern: tuple[str, ...]  # "{name}" segments bind a parameter
    handler: Handler
    auth: bool = True
    stream: bool = False  # the body is archive bytes for the handler, not JSON

    @property
    def path(self) -> str:
        return "/_admin/" + "/".join(self.pattern)

    def bind(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.pattern):
            return None
        params: dict[str, str] = {}
        for want, got in zip(self.pattern, segments, strict=True):
            if want.startswith("{"):
                params[want[1:-1]] = got
            elif want != got:
                return None
        return params


class AdminApi:
    def __init__(
        self,
        services: Services,
        token: str,
        region: str,
        scrub_interval: timedelta = timedelta(days=30),
    ) -> None:
        self.services = services
        self.token = token
        self.region = region
        self.scrub_interval = scrub_interval  # for the status's next pass

    async def __call__(self, request: Request, request_id: str) -> Response:
        try:
            return await self._handle(request)
        except (AdminAuthenticationRequired, AdminTokenRejected) as error:
            response = error_response(error, request_id)
            response.headers["WWW-Authenticate"] = error.challenge
            return response

    async def _handle(self, request: Request) -> Response:
        try:
            route, params = _find(request.method, _segments(request))
        except GlacierError:
            self._authorize(request)  # a caller without the token learns no paths
            raise
        if route.auth:
            self._authorize(request)
        for name, value in request.query_params.multi_items():
            check_text(value, f"the {name} query parameter")
        body: dict[str, Any] = {}
        if route.auth and not route.stream:
            body = parse_json_object(await read_bounded(request, 1 << 20))
        return await route.handler(self, params, body, request)

    def _authorize(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AdminAuthenticationRequired("Admin API: missing bearer token")
        if not hmac.compare_digest(token.strip().encode(), self.token.encode()):
            raise AdminTokenRejected("Admin API: invalid admin token")

    # --- handlers, in the order of ROUTES ----------------------------------------------------
    async def _health(self, _p: dict[str, str], _b: dict[str, Any], _r: Request) -> Response:
        return json_response({"status": "ok"})

    async def _clock(self, _p: dict[str, str], _b: dict[str, Any], _r: Request) -> Response:
        return json_response({"now": iso_ms(self.services.deps.clock.now())})

    async def _advance(self, _p: dict[str, str], body: dict[str, Any], _r: Request) -> Response:
        clock = self.services.deps.clock
        if not isinstance(clock, ManualClock):
            raise InvalidParameterValueException(
                "Admin API: the clock can only be moved when the server runs with clock = manual"
            )
        seconds = body.get("seconds")
        # bool is an int subclass, and inf/NaN or huge values overflow timedelta.
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or not 0 <= seconds <= MAX_ADVANCE_SECONDS
        ):
            raise InvalidParameterValueException(
                f"Admin API: seconds must be a number from 0 to {MAX_ADVANCE_SECONDS}"
            )
        return json_response({"now": iso_ms(clock.advance(timedelta(seconds=seconds)))})

    async def _inventory(self, _p: dict[str, str], body: dict[str, Any], _r: Request) -> Response:
        if "vault" not in body and "account_id" not in body:
            taken = await self.services.inventory.run_due(everything=True)
            return json_response({"inventories": taken})
        vault = body.get("vault")
        if not isinstance(vault, str) or not vault:
            raise InvalidParameterValueException("Admin API: vault must be a vault name")
        result = await self.services.inventory.force(self._caller(body.get("account_id")), vault)
        answer: dict[str, Any] = {"taken": result.taken}
        if not result.taken:
            # Nothing was written since the last inventory: it is already current.
            answer["reason"] = "current"
        date = result.inventory_date
        answer["InventoryDate"] = iso_ms(date) if date else None
        answer["NumberOfArchives"] = result.archive_count
        answer["SizeInBytes"] = result.size_in_bytes
        return json_response(answer)

    async def _maintenance(self, _p: dict[str, str], _b: dict[str, Any], _r: Request) -> Response:
        report = await self.services.maintenance.run_once()
        return json_response(report.as_dict())

    async def _audit(self, _p: dict[str, str], _b: dict[str, Any], _r: Request) -> Response:
        return json_response(await audit_archives(self.services.deps))

    async def _jobs_run(self, _p: dict[str, str], _b: dict[str, Any], _r: Request) -> Response:
        return json_response({"completed": await self.services.runner.drain()})

    async def _job_complete(self, p: dict[str, str], _b: dict[str, Any], _r: Request) -> Response:
        job_id = p["jobId"]
        await self._unfinished_job(job_id)
        if await self.services.runner.complete_now(job_id):
            return json_response({"completed": True})
        await self._unfinished_job(job_id)  # finished meanwhile by another runner: 409
        raise AdminConflict(
            f"Admin API: job {job_id} is held by another runner or could not run now;"
            " it stays in progress (see the server log, or retry)"
        )

    async def _job_fail(self, p: dict[str, str], body: dict[str, Any], _r: Request) -> Response:
        job_id = p["jobId"]
        message = body.get("message", "Failed by the operator.")
        if not isinstance(message, str) or not message:
            raise InvalidParameterValueException("Admin API: message must be a non-empty string")
        await self._unfinished_job(job_id)
        if await self.services.runner.fail_now(job_id, message):
            return json_response({"failed": True})
        await self._unfinished_job(job_id)
        raise ServiceUnavailableException(f"Admin API: job {job_id} could not be failed; retry")

    async def _deliver(self, _p: dict[str, str], _b: dict[str, Any], _r: Request) -> Response:
        return json_response(asdict(await self.services.deliverer.run_once()))

    async def _notifications(self, _p: dict[str, str], _b: dict[str, Any], r: Request) -> Response:
        state = r.query_params.get("state")
        if state is not None and state not in NOTIFICATION_STATES:
            raise InvalidParameterValueException(
                f"Admin API: state must be one of {', '.join(NOTIFICATION_STATES)}"
            )
        limit = parse_limit(r.query_params.get("limit"), 1000, 100_000)
        rows = await self.services.deps.in_tx(lambda tx: tx.list_notifications(state, limit))
        return json_response(
            {
                "notifications": [
                    {
                        "id": n.id,
                        "topic": n.topic_arn,
                        "message": n.message,
                        "state": n.state,
                        "attempts": n.attempts,
                        "last_error": n.last_error,
                    }
                    for n in rows
                ]
            }
        )

    async def _archives(self, p: dict[str, str], _b: dict[str, Any], r: Request) -> Response:
        limit = parse_limit(r.query_params.get("limit"), 1000, 100_000)
        after = r.query_params.get("after")
        rows = await self.services.inventory.live_archives(
            self._caller(p["account"]), p["vault"], after, limit
        )
        return json_response(
            {
                "archives": [
                    {
                        "ArchiveId": a.archive_id,
                        "Size": a.size,
                        "SHA256TreeHash": a.tree_hash,
                        "ArchiveDescription": a.description,
                        "CreationDate": iso_ms(a.created_at),
                    }
                    for a in rows
                ]
            }
        )

    async def _import(self, p: dict[str, str], _b: dict[str, Any], r: Request) -> Response:
        caller = self._caller(p["account"])
        return await import_archive(self.services, caller, p["vault"], p["archiveId"], r)

    async def _damage(self, _p: dict[str, str], _b: dict[str, Any], r: Request) -> Response:
        state = r.query_params.get("state")
        if state is not None and state not in DAMAGE_STATES:
            raise InvalidParameterValueException(
                f"Admin API: state must be one of {', '.join(DAMAGE_STATES)}"
            )
        limit = parse_limit(r.query_params.get("limit"), 1000, 100_000)
        after = r.query_params.get("after")
        if after is not None and not (after.isascii() and after.isdigit() and len(after) < 19):
            raise InvalidParameterValueException("Admin API: after must be a damage record id")
        repaired = None if state is None else state == "repaired"
        rows = await self.services.deps.in_tx(
            partial(
                _damage_page, repaired=repaired, after=int(after) if after else None, limit=limit
            )
        )
        return json_response({"damage": [damage_dict(d) for d in rows]})

    async def _scrub_status(self, _p: dict[str, str], _b: dict[str, Any], _r: Request) -> Response:
        deps = self.services.deps
        state, counts = await deps.in_tx(lambda tx: (tx.scrub_state(), tx.count_damage()))
        return json_response(scrub_status(state, counts, self.scrub_interval, deps.clock.now()))

    async def _scrub_now(self, _p: dict[str, str], _b: dict[str, Any], _r: Request) -> Response:
        try:
            report = await Scrubber(self.services.deps).run_now()
        except ScrubBusy as exc:
            raise AdminConflict(f"Admin API: {exc}") from None
        return json_response(report.as_dict())

    # --- helpers -----------------------------------------------------------------------------
    async def _unfinished_job(self, job_id: str) -> Job:
        """The job if it is still in progress: 404 if unknown, 409 if already finished."""
        job = await self.services.deps.in_read_tx(lambda tx: tx.get_job(job_id))
        if job is None:
            raise ResourceNotFoundException(f"Admin API: no such job: {job_id}")
        if job.completed:
            raise AdminConflict(f"Admin API: job {job_id} has already finished ({job.status})")
        return job

    def _caller(self, account_id: Any) -> Caller:
        if not isinstance(account_id, str) or not account_id:
            raise InvalidParameterValueException("Admin API: account_id is required")
        return Caller("admin", account_id, self.region)


NOTIFICATION_STATES = (PENDING, DELIVERED, FAILED)
DAMAGE_STATES = ("open", "repaired")


def _damage_page(
    tx: MetadataTx, *, repaired: bool | None, after: int | None, limit: int
) -> list[DamageRecord]:
    return tx.list_damage(repaired=repaired, after_id=after, limit=limit)


ROUTES: tuple[AdminRoute, ...] = (
    AdminRoute("GET", ("health",), AdminApi._health, auth=False),
    AdminRoute("GET", ("clock",), AdminApi._clock),
    AdminRoute("POST", ("clock", "advance"), AdminApi._advance),
    AdminRoute("POST", ("inventory",), AdminApi._inventory),
    AdminRoute("POST", ("maintenance",), AdminApi._maintenance),
    AdminRoute("POST", ("audit",), AdminApi._audit),
    AdminRoute("POST", ("jobs", "run"), AdminApi._jobs_run),
    AdminRoute("POST", ("jobs", "{jobId}", "complete"), AdminApi._job_complete),
    AdminRoute("POST", ("jobs", "{jobId}", "fail"), AdminApi._job_fail),
    AdminRoute("POST", ("notifications", "deliver"), AdminApi._deliver),
    AdminRoute("GET", ("notifications",), AdminApi._notifications),
    AdminRoute("GET", ("vaults", "{account}", "{vault}", "archives"), AdminApi._archives),
    AdminRoute(
        "POST",
        ("vaults", "{account}", "{vault}", "archives", "{archiveId}", "import"),
        AdminApi._import,
        stream=True,
    ),
    AdminRoute("GET", ("damage",), AdminApi._damage),
    AdminRoute("GET", ("scrub",), AdminApi._scrub_status),
    AdminRoute("POST", ("scrub",), AdminApi._scrub_now),
)


def _segments(request: Request) -> list[str]:
    try:
        segments = split_path(request.scope.get("raw_path", b"").decode("latin-1"))[1:]
    except UnicodeDecodeError:
        raise InvalidParameterValueException(
            "Admin API: the path is not valid percent-encoded UTF-8"
        ) from None
    for segment in segments:
        check_text(segment, "the path")  # ids and names reach storage (no NUL in PostgreSQL)
    return segments


def _find(method: str, segments: list[str]) -> tuple[AdminRoute, dict[str, str]]:
    """The route for the request; 404 for an unknown path, 405 for a wrong method."""
    allowed = []
    for route in ROUTES:
        params = route.bind(segments)
        if params is None:
            continue
        if route.method == method:
            return route, params
        allowed.append(route.method)
    path = "/_admin/" + "/".join(segments)
    if allowed:
        raise AdminMethodNotAllowed(f"Admin API: {path} takes {' or '.join(allowed)}, not {method}")
    raise ResourceNotFoundException(f"No such admin resource: {path}")
