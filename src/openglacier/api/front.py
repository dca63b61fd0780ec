"""Unauthenticated endpoints answered before Glacier routing and SigV4:
`GET /metrics` (Prometheus text format), `GET /health/live` and
`GET /health/ready`. None of them is a Glacier path (those all start with
an account segment), so no Glacier request can reach them.

Readiness runs the checks it is given (server.py: metadata store reachable,
schema migrations current, blob store reachable), each on a worker thread
with a time limit, and answers 200 or 503 naming what failed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from anyio import to_thread
from starlette.responses import Response

from openglacier.metrics import exposition

METRICS, LIVE, READY = "/metrics", "/health/live", "/health/ready"
CHECK_TIMEOUT = 2.0  # seconds: an unreachable store must not hang a probe (nor outlast its timeout)
ReadinessCheck = tuple[str, Callable[[], None]]  # name, a blocking call raising when not ready


@dataclass(frozen=True)
class Front:
    checks: Sequence[ReadinessCheck] = ()
    metrics: bool = True  # False with --metrics-port: /metrics is on that port only

    def handles(self, path: str) -> bool:
        return path in (LIVE, READY) or (self.metrics and path == METRICS)

    async def answer(self, method: str, path: str) -> Response:
        if method not in ("GET", "HEAD"):
            return _json(405, {"status": "error", "message": f"{path} answers GET only"})
        if path == METRICS:
            body = await to_thread.run_sync(exposition.render)
            return Response(body, media_type=exposition.CONTENT_TYPE)
        if path == LIVE:
            return _json(200, {"status": "live"})
        return await self.ready()

    async def ready(self) -> Response:
        results = await asyncio.gather(*(_run(name, check) for name, check in self.checks))
        checks = dict(results)
        failed = [name for name, outcome in results if outcome != "ok"]
        if failed:
            return _json(503, {"status": "unready", "failed": failed, "checks": checks})
        return _json(200, {"status": "ready", "checks": checks})


async def _run(name: str, check: Callable[[], None]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(to_thread.run_sync(check, abandon_on_cancel=True), CHECK_TIMEOUT)
    except TimeoutError:
        return name, f"no answer within {CHECK_TIMEOUT:g} s"
    except Exception as exc:
        return name, f"{type(exc).__name__}: {exc}"[:300]
    return name, "ok"


def _json(status: int, body: object) -> Response:
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
