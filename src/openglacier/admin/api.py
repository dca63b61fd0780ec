"""Admin API: operator and test hooks outside the Glacier namespace (design 4).

Paths live under `/_admin/`; every call but `GET /_admin/health` needs
`Authorization: Bearer <admin token>`. A Glacier access key never works here,
and the admin token never works on the Glacier API.

    GET  /_admin/health                        liveness (no auth)
    POST /_admin/inventory                     {"account_id", "vault"} or {} for every dirty vault
    POST /_admin/maintenance                   one maintenance pass now
    POST /_admin/clock/advance                 {"seconds": n}; only with clock = "manual"
    GET  /_admin/clock                         the service clock
    GET  /_admin/vaults/{account}/{vault}/archives?after=&limit=   live archives
    POST /_admin/audit                         verify stored archives against their hashes
    POST /_admin/jobs/run                      complete every job due now (and wait for
                                               those other runners hold)
    POST /_admin/jobs/{jobId}/complete         complete one in-progress job now, due or not
    POST /_admin/jobs/{jobId}/fail             {"message": "..."}: fail one job now
    POST /_admin/notifications/deliver         deliver every due notification now
    GET  /_admin/notifications?state=&limit=   the notification outbox
"""

from __future__ import annotations

import hmac
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openglacier.admin.audit import audit_archives
from openglacier.api.app import read_bounded
from openglacier.api.protocol import json_response, parse_json_object, parse_limit
from openglacier.api.routes import split_path
from openglacier.clock import ManualClock, iso_ms
from openglacier.domain.models import Caller
from openglacier.domain.services import Services
from openglacier.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    MissingAuthenticationTokenException,
    ResourceNotFoundException,
)


class AdminApi:
    def __init__(self, services: Services, token: str, region: str) -> None:
        self.services = services
        self.token = token
        self.region = region

    async def __call__(self, request: Request, request_id: str) -> Response:
        segments = split_path(request.scope.get("raw_path", b"").decode("latin-1"))[1:]
        if request.method == "GET" and segments == ["health"]:
            return json_response({"status": "ok"})
        self._authorize(request)
        body = parse_json_object(await read_bounded(request, 1 << 20))
        return await self._dispatch(request.method, segments, body, request)

    def _authorize(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise MissingAuthenticationTokenException("Admin API: missing bearer token")
        if not hmac.compare_digest(header[len("Bearer ") :].encode(), self.token.encode()):
            raise AccessDeniedException("Admin API: invalid admin token")

    async def _dispatch(
        self, method: str, segments: list[str], body: dict[str, Any], request: Request
    ) -> Response:
        head = segments[0] if segments else ""
        if head == "jobs" and method == "POST":
            return await self._jobs(segments[1:], body)
        if head == "notifications":
            return await self._notifications(method, segments[1:], request)
        if head == "vaults" and (method, len(segments), segments[-1]) == ("GET", 4, "archives"):
            return await self._archives(segments[1], segments[2], request)
        return await self._operation(method, segments, body)

    async def _operation(self, method: str, segments: list[str], body: dict[str, Any]) -> Response:
        route = (method, "/".join(segments))
        if route == ("POST", "inventory"):
            return await self._inventory(body)
        if route == ("POST", "maintenance"):
            report = await self.services.maintenance.run_once()
            return json_response(report.as_dict())
        if route == ("POST", "clock/advance"):
            return self._advance(body)
        if route == ("GET", "clock"):
            return json_response({"now": iso_ms(self.services.deps.clock.now())})
        if route == ("POST", "audit"):
            return json_response(await audit_archives(self.services.deps))
        raise ResourceNotFoundException(f"No such admin resource: /{'/'.join(segments)}")

    async def _jobs(self, rest: list[str], body: dict[str, Any]) -> Response:
        runner = self.services.runner
        if rest == ["run"]:
            return json_response({"completed": await runner.drain()})
        if len(rest) == 2 and rest[1] == "complete":
            return json_response({"completed": await runner.complete_now(rest[0])})
        if len(rest) == 2 and rest[1] == "fail":
            message = body.get("message", "Failed by the operator.")
            if not isinstance(message, str) or not message:
                raise InvalidParameterValueException("Admin API: message must be a string")
            return json_response({"failed": await runner.fail_now(rest[0], message)})
        raise ResourceNotFoundException(f"No such admin resource: /jobs/{'/'.join(rest)}")

    async def _notifications(self, method: str, rest: list[str], request: Request) -> Response:
        deliverer = self.services.deliverer
        if method == "POST" and rest == ["deliver"]:
            report = await deliverer.run_once()
            return json_response(asdict(report))
        if method == "GET" and not rest:
            state = request.query_params.get("state")
            limit = parse_limit(request.query_params.get("limit"), 1000, 100_000)
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
        raise ResourceNotFoundException("No such admin resource: /notifications")

    async def _inventory(self, body: dict[str, Any]) -> Response:
        if "vault" not in body:
            taken = await self.services.inventory.run_due(everything=True)
            return json_response({"inventories": taken})
        caller = self._caller(body.get("account_id"))
        result = await self.services.inventory.force(caller, str(body["vault"]))
        snap = result.snapshot
        return json_response(
            {
                "taken": snap is not None,
                "InventoryDate": iso_ms(snap.taken_at) if snap else None,
                "NumberOfArchives": snap.archive_count if snap else None,
            }
        )

    def _caller(self, account_id: Any) -> Caller:
        if not isinstance(account_id, str) or not account_id:
            raise InvalidParameterValueException("Admin API: account_id is required")
        return Caller("admin", account_id, self.region)

    def _advance(self, body: dict[str, Any]) -> Response:
        clock = self.services.deps.clock
        if not isinstance(clock, ManualClock):
            raise InvalidParameterValueException(
                "Admin API: the clock can only be moved when the server runs with clock = manual"
            )
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise InvalidParameterValueException("Admin API: seconds must be a number >= 0")
        return json_response({"now": iso_ms(clock.advance(timedelta(seconds=seconds)))})

    async def _archives(self, account_id: str, vault: str, request: Request) -> Response:
        limit = parse_limit(request.query_params.get("limit"), 1000, 100_000)
        after = request.query_params.get("after")
        rows = await self.services.inventory.live_archives(
            self._caller(account_id), vault, after, limit
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
