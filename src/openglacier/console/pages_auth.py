"""Sign-in, sign-out, the admin's account switch and the console's static files."""

from __future__ import annotations

import logging
from importlib import resources

from starlette.responses import RedirectResponse, Response

from openglacier.console.app import PREFIX, ConsoleError, Page, Route
from openglacier.console.session import (
    ADMIN,
    COOKIE,
    KEY,
    LOGIN_COOKIE,
    Session,
    secret_matches,
)

log = logging.getLogger("openglacier.console")
WRONG = "The access key id or secret is not correct."
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


async def signin_form(page: Page, message: str = "", status: int = 200) -> Response:
    token = page.console.sessions.login_token()
    page.cookies[LOGIN_COOKIE] = token
    next_url = safe_next(page.request.query_params.get("next", ""))
    return page.render("signin.html", status, login_token=token, message=message, next=next_url)


async def signin(page: Page) -> Response:
    form = await page.form()
    console = page.console
    if not console.sessions.login_token_valid(
        page.request.cookies.get(LOGIN_COOKIE), form.get("login_token")
    ):
        return await signin_form(page, "The sign-in form expired; try again.", 403)
    key_id = form.get("access_key_id", "").strip()
    secret = form.get("secret", "")
    if key_id in ("", "admin"):
        ok = bool(secret) and secret_matches(console.admin_token, secret)
        session = console.sessions.new(ADMIN, "", console.default_account) if ok else None
    else:
        stored = await console.api.auth.lookup(key_id)
        ok = stored is not None and secret_matches(stored.secret_access_key, secret)
        session = console.sessions.new(KEY, key_id, stored.account_id) if ok and stored else None
    if session is None:
        # The key id is logged (it is not a secret); the presented secret never is.
        log.warning("console sign-in refused for access key id %r", key_id or "admin")
        return await signin_form(page, WRONG, 401)
    page.cookies[COOKIE] = console.sessions.dump(session)
    page.cookies[LOGIN_COOKIE] = ""
    log.info("console sign-in: %s", key_id or "admin")
    return RedirectResponse(safe_next(form.get("next", "")) or f"{PREFIX}/vaults", 303)


async def signout(page: Page) -> Response:
    page.cookies[COOKIE] = ""
    return RedirectResponse(f"{PREFIX}/signin", 303)


async def switch_account(page: Page) -> Response:
    """An admin session looks at one account at a time (its vaults, jobs, usage)."""
    account = (await page.form()).get("account", "")
    if not (len(account) == 12 and account.isascii() and account.isdigit()):
        raise ConsoleError(400, "An account id is 12 digits.")
    assert page.session is not None  # an admin route
    page.cookies[COOKIE] = page.console.sessions.dump(
        Session(ADMIN, "", account, page.session.csrf)
    )
    return RedirectResponse(f"{PREFIX}/vaults", 303)


async def static(page: Page) -> Response:
    name = page.params["name"]
    suffix = name[name.rfind(".") :] if "." in name else ""
    folder = resources.files("openglacier.console") / "static"
    target = folder / name
    if suffix not in STATIC_TYPES or "/" in name or not target.is_file():
        raise ConsoleError(404, "There is no such file.")
    response = Response(target.read_bytes(), media_type=STATIC_TYPES[suffix])
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def safe_next(value: str) -> str:
    """Only a console path: never a redirect to another site."""
    if value.startswith(f"{PREFIX}/") and not value.startswith("//") and "\\" not in value:
        return value
    return ""


ROUTES = [
    Route("GET", "/signin", signin_form, public=True),
    Route("POST", "/signin", signin, public=True),
    Route("POST", "/signout", signout),
    Route("POST", "/account", switch_account, admin=True),
    Route("GET", "/static/{name}", static, public=True),
]
