"""The console's request handling: routing, sessions, CSRF, rendering, errors.

A page module (console/pages_*.py) lists its routes as `Route`s; a handler
gets a `Page` (the request, its session, the path parameters) and returns a
Response, usually `page.render(template, **values)`. Every read or change of
Glacier data goes through `page.glacier(...)`, which serves the Glacier
operation for the session's caller through the API's own pipeline
(`GlacierApp.serve_as`): the same routing, vault policies, validation and
errors as a signed request, so the console can never show or do more than the
key could through the API. Admin-only pages read the metadata store directly.

Every POST needs the session's CSRF token (form field `csrf_token`, or the
`X-CSRF-Token` header for the page's own fetch calls) and, when the browser
sends an Origin header, this host as its origin.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from openglacier import API_VERSION
from openglacier.api.app import read_bounded
from openglacier.api.metering import OPERATION_KEY
from openglacier.console.session import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    KEY,
    MAX_AGE,
    Session,
    SessionCodec,
    csrf_ok,
)
from openglacier.domain.usage_report import Prices
from openglacier.errors import GlacierError, StorageError
from openglacier.metrics import usage
from openglacier.records import Caller

if TYPE_CHECKING:
    from openglacier.api.app import GlacierApp


PREFIX = "/console"
MAX_FORM = 64 * 1024  # bytes: the largest form the console has is a few fields
ADMIN_KEY_ID = "console-admin"  # the access key id an admin session's requests carry
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
log = logging.getLogger("openglacier.console")
Handler = Callable[["Page"], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # after /console, with {name} for one path segment
    handler: Handler
    public: bool = False  # no session needed (sign-in, static assets)
    admin: bool = False  # admin sessions only

    def compiled(self) -> re.Pattern[str]:
        regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", self.pattern)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")


class ConsoleError(Exception):
    """A page that cannot be shown: its status and a message for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Page:
    console: Console
    request: Request
    request_id: str
    session: Session | None
    params: dict[str, str]
    cookies: dict[str, str] = field(default_factory=dict)  # cookies to set on the answer
    _form: dict[str, str] | None = None

    @property
    def caller(self) -> Caller:
        if self.session is None:
            raise ConsoleError(401, "Sign in first.")
        key_id = self.session.access_key_id or ADMIN_KEY_ID
        return Caller(key_id, self.session.account_id, self.console.region)

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        return self.console.render(self, template, status, values)

    async def glacier(
        self, method: str, path: str, query: Mapping[str, str] | None = None, body: Any = None
    ) -> Any:
        """The JSON answer of one Glacier operation done as this session's caller;
        a Glacier error is raised as it is (the page shows its message). What a
        person does (anything but GET) is counted in the usage report as the API
        request it is; the reads that draw a page are not."""
        data = b"" if body is None else json.dumps(body).encode()
        try:
            response = await self.console.serve_internal(
                self, method, path, query or {}, data, counted=method != "GET"
            )
        except StorageError:
            raise
        except GlacierError as error:
            raise ConsoleError(error.http_status, error.message) from None
        if response.status_code >= 400:
            raise ConsoleError(response.status_code, _error_message(response))
        raw = bytes(response.body) if hasattr(response, "body") else b""
        return json.loads(raw) if raw else {"headers": dict(response.headers)}

    async def glacier_optional(self, method: str, path: str) -> Any:
        """As `glacier`, but a 404 (no policy, no lock, no notifications) is None."""
        try:
            return await self.glacier(method, path)
        except ConsoleError as error:
            if error.status == 404:
                return None
            raise

    async def form(self) -> dict[str, str]:
        """The posted form's fields (urlencoded: the console's forms carry no files)."""
        if self._form is None:
            kind = self.request.headers.get("content-type", "")
            if not kind.startswith("application/x-www-form-urlencoded"):
                raise ConsoleError(
                    415, "This page takes a form (application/x-www-form-urlencoded)."
                )
            try:
                body = await read_bounded(self.request, MAX_FORM)
            except GlacierError:
                raise ConsoleError(413, "The form is too large.") from None
            self._form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return self._form


class Console:
    """The `/console/` application (`GlacierApp` calls it with each request)."""

    def __init__(
        self,
        api: GlacierApp,
        admin_token: str,
        region: str,
        default_account: str,
        routes: Sequence[Route],
        *,
        prices: Prices,
    ) -> None:
        self.prices = prices
        self.api = api
        self.default_account = default_account  # an admin session starts in this account
        self.admin_token = admin_token
        self.region = region
        self.sessions = SessionCodec(admin_token)
        self.routes = [(route, route.compiled()) for route in routes]
        self.templates = Environment(
            loader=PackageLoader("openglacier.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self.templates.filters["size"] = human_size
        self.templates.globals["qs"] = urlencode
        self.templates.globals["q"] = lambda value: quote(str(value), safe="")

    @property
    def services(self) -> Any:
        return self.api.services

    async def __call__(self, request: Request, request_id: str) -> Response:
        path = request.url.path[len(PREFIX) :] or "/"
        page = Page(self, request, request_id, None, {})
        try:
            response = await self._dispatch(page, request, path)
        except ConsoleError as error:
            response = self.render(page, "error.html", error.status, {"message": error.message})
        except StorageError:
            log.exception("storage error in console request %s", request_id)
            message = "The store is unavailable; try again shortly."
            response = self.render(page, "error.html", 503, {"message": message})
        except GlacierError as error:
            response = self.render(
                page, "error.html", error.http_status, {"message": error.message}
            )
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        for name, value in page.cookies.items():
            self._set_cookie(response, request, name, value)
        return response

    async def _dispatch(self, page: Page, request: Request, path: str) -> Response:
        if path in {"", "/"}:
            return RedirectResponse(f"{PREFIX}/vaults", 303)
        allowed = False
        for route, regex in self.routes:
            found = regex.match(path)
            if found is None:
                continue
            allowed = True
            if route.method not in ("*", request.method) and not (
                route.method == "GET" and request.method == "HEAD"
            ):
                continue
            page.params = found.groupdict()
            if not route.public:
                page.session = await self.session_of(request)
                if page.session is None:
                    return RedirectResponse(f"{PREFIX}/signin?next={quote(request.url.path)}", 303)
                if route.admin and not page.session.is_admin:
                    raise ConsoleError(403, "Only an admin session may see this page.")
                if request.method != "GET":
                    await self.check_csrf(page)
            return await route.handler(page)
        if allowed:
            raise ConsoleError(405, f"{request.method} is not allowed here.")
        raise ConsoleError(404, "There is no such console page.")

    async def session_of(self, request: Request) -> Session | None:
        session = self.sessions.load(request.cookies.get(COOKIE))
        if session is None or session.kind != KEY:
            return session
        # A deleted key's sessions end as its signatures do (the credential
        # cache's few seconds), not when the cookie expires.
        stored = await self.api.auth.lookup(session.access_key_id)
        if stored is None or stored.account_id != session.account_id:
            return None
        return session

    async def check_csrf(self, page: Page) -> None:
        request, session = page.request, page.session
        origin = request.headers.get("origin")
        if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise ConsoleError(403, "This form did not come from this console.")
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            presented = (await page.form()).get(CSRF_FIELD)
        if session is None or not csrf_ok(session, presented):
            raise ConsoleError(
                403,
                "The form expired or did not come from this console; "
                "reload the page and try again.",
            )

    def render(self, page: Page, template: str, status: int, values: Mapping[str, Any]) -> Response:
        html = self.templates.get_template(template).render(
            session=page.session, prefix=PREFIX, path=page.request.url.path, **values
        )
        response = Response(html, status_code=status, media_type="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    async def serve_internal(
        self,
        page: Page,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: bytes,
        *,
        counted: bool = False,
    ) -> Response:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope = dict(page.request.scope)
        scope.update(
            method=method,
            path=path,
            raw_path=path.encode(),
            query_string=urlencode(query).encode(),
            headers=[
                (b"x-amz-glacier-version", API_VERSION.encode()),
                (b"content-type", b"application/json"),
            ],
        )
        response = await self.api.serve_as(
            Request(scope, receive), path, page.caller, page.request_id
        )
        if counted:
            operation = str(scope.get(OPERATION_KEY, ""))
            usage.count_request(scope, operation, response.status_code, len(body))
        return response

    def _set_cookie(self, response: Response, request: Request, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            max_age=MAX_AGE if value else 0,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )


def _error_message(response: Response) -> str:
    raw = bytes(response.body) if hasattr(response, "body") else b"{}"
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = {}
    return str(payload.get("message", "The request failed."))


def human_size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{value} B"
