"""Console sessions: a signed cookie, a CSRF token, and the sign-in check.

The cookie holds who signed in (admin, or an access key id and its account),
a random CSRF token and the time of sign-in, signed with itsdangerous. It
never holds a secret. The signing key is derived from the admin token, so every
node of a cluster (they share the token) accepts the same cookies, and a new
admin token ends every session. A key session is checked against the
credential store on every request: a deleted key is signed out at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "og_console"
LOGIN_COOKIE = "og_console_login"  # double-submit token of the sign-in form
MAX_AGE = 12 * 3600  # seconds a session lasts after sign-in
ADMIN, KEY = "admin", "key"
CSRF_FIELD, CSRF_HEADER = "csrf_token", "x-csrf-token"


@dataclass(frozen=True)
class Session:
    kind: str  # ADMIN or KEY
    access_key_id: str  # "" for admin
    account_id: str  # the key's account; for admin, the account being looked at
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.kind == ADMIN


class SessionCodec:
    """Signs and reads session cookies and sign-in form tokens."""

    def __init__(self, admin_token: str) -> None:
        key = hmac.new(admin_token.encode(), b"openglacier-console-session", hashlib.sha256)
        self._sessions = URLSafeTimedSerializer(key.hexdigest(), salt="session")
        self._logins = URLSafeTimedSerializer(key.hexdigest(), salt="login")

    def new(self, kind: str, access_key_id: str, account_id: str) -> Session:
        return Session(kind, access_key_id, account_id, secrets.token_urlsafe(24))

    def dump(self, session: Session) -> str:
        return str(self._sessions.dumps(asdict(session)))

    def load(self, cookie: str | None) -> Session | None:
        """The session a cookie carries; None when absent, tampered or expired."""
        data = _loads(self._sessions, cookie, MAX_AGE)
        if data is None:
            return None
        try:
            session = Session(**data)
        except TypeError:
            return None  # signed by an older layout: sign in again
        return session if session.kind in (ADMIN, KEY) else None

    def login_token(self) -> str:
        """A token for the sign-in form, set in a cookie and in the form: a
        cross-site page can post neither, so nobody is signed in to an attacker's
        account without knowing it (login CSRF)."""
        return str(self._logins.dumps(secrets.token_urlsafe(16)))

    def login_token_valid(self, cookie: str | None, field: str | None) -> bool:
        if not cookie or not field or not hmac.compare_digest(cookie, field):
            return False
        return _loads(self._logins, cookie, 3600) is not None


def _loads(serializer: URLSafeTimedSerializer, value: str | None, max_age: int) -> Any:
    if not value:
        return None
    try:
        return serializer.loads(value, max_age=max_age)
    except BadSignature:  # SignatureExpired is a subclass
        return None


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf, presented or "")


def secret_matches(expected: str, presented: str) -> bool:
    """Constant time: a wrong secret takes as long whatever its prefix."""
    return hmac.compare_digest(expected.encode(), presented.encode())
