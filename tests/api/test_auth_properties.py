"""Authentication properties (hypothesis): a botocore-signed request for an operation of
the route table, then changed the way an attacker or a broken client would change it --
Authorization parts dropped, doubled or rewritten, credential scope fields, the
signed-header list, the signature, the date and its format, clock skew, the Host header,
headers added, the query, path, method or body changed after signing, the payload hash,
unknown, deleted or other keys, presigned query parameters.

Every answer: no 5xx and Glacier's error shape. A change that alters what the request
means is refused with a spec authentication error (or the 400 for a path or query that
is not signed as itself), and a refusal changes nothing (every metadata row and blob
file compared). Only a change that leaves the meaning intact (an unsigned transport
header, the same signed-header set in another order, a percent-encoding of the same
label) may be served.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import event, given, settings
from hypothesis import strategies as st

from openglacier.api.routes import ROUTES, Body, Match, Route, match
from openglacier.errors import GlacierError
from openglacier.records import Credential
from support.inprocess import ACCESS_KEY, ACCOUNT_ID, SECRET_KEY
from support.malformed import (
    SETTINGS,
    STORES,
    Generated,
    World,
    assert_glacier_shaped,
    restore,
    world_on,
)
from support.raw_asgi import RawAnswer, send_raw
from support.route_requests import body_and_headers, target

MISSING = "MissingAuthenticationTokenException"
SIGNATURE = "InvalidSignatureException"
UNKNOWN_KEY = "UnrecognizedClientException"
NOT_AS_SIGNED = "InvalidParameterValueException"  # a path or query not signed as itself
MISSING_HASH = "MissingParameterValueException"  # an upload without x-amz-content-sha256
STATUS = {MISSING: 400, SIGNATURE: 403, UNKNOWN_KEY: 400, NOT_AS_SIGNED: 400, MISSING_HASH: 400}
SECOND_KEY, SECOND_SECRET = "OGAKSECONDKEYSECOND0", "second-secret-0123456789abcdefghijklmno"
DELETED_KEY = "OGAKDELETEDKEYDELETE"
UNKNOWN = "OGAKNEVERSTOREDNEVER"
REGION = "us-east-1"
SKEW = timedelta(minutes=15)  # the server's default
MARGIN = timedelta(minutes=2)  # far from the limit: the test's own run time never matters
# Header values as a client can send them: printable latin-1 (control bytes are the
# HTTP layer's 400, tests/api/test_input_rules.py).
TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"))
SHORT = TEXT.filter(lambda t: len(t) <= 24)


@dataclass(frozen=True)
class Wire:
    """A request as it goes on the wire (header names lowercase, repeats kept)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def get(self, name: str) -> str:
        return next(v for k, v in self.headers if k == name)

    def without(self, name: str) -> Wire:
        return replace(self, headers=tuple((k, v) for k, v in self.headers if k != name))

    def with_header(self, name: str, value: str) -> Wire:
        return replace(self, headers=(*self.headers, (name, value)))

    def setting(self, name: str, value: str) -> Wire:
        return self.without(name).with_header(name, value)


@dataclass(frozen=True)
class Mutated:
    wire: Wire
    what: str
    refusals: frozenset[str]  # the codes a refusal may carry
    may_pass: bool = False  # the meaning is unchanged: serving it is right


@dataclass(frozen=True)
class Base:
    route: Route
    target: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def refused(wire: Wire, what: str, *codes: str) -> Mutated:
    return Mutated(wire, what, frozenset(codes or (SIGNATURE,)))


def harmless(wire: Wire, what: str, *codes: str) -> Mutated:
    return Mutated(wire, what, frozenset(codes or (SIGNATURE,)), may_pass=True)


def sign(
    base: Base,
    *,
    key: str = ACCESS_KEY,
    secret: str = SECRET_KEY,
    at: datetime | None = None,
    presign: bool = False,
) -> Wire:
    """botocore's SigV4 (or its presigner) over the base request, at `at` if given."""
    headers = {"x-amz-glacier-version": "2012-06-01", **base.headers}
    if base.body and base.route.body is Body.STREAM:
        headers["x-amz-content-sha256"] = hashlib.sha256(base.body).hexdigest()
    aws = AWSRequest(base.route.method, "http://testserver" + base.target, headers, base.body)
    signer = SigV4QueryAuth if presign else SigV4Auth
    when = (at or datetime.now(UTC)).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        signer(Credentials(key, secret), "glacier", REGION).add_auth(aws)
    prepared = aws.prepare()
    split = urlsplit(prepared.url)
    sent = [("host", "testserver")] + [(k.lower(), v) for k, v in prepared.headers.items()]
    wire_target = split.path + (f"?{split.query}" if split.query else "")
    return Wire(base.route.method, wire_target, tuple(sent), base.body)


# --- the Authorization header ----------------------------------------------------------


def auth_parts(value: str) -> tuple[str, list[tuple[str, str]]]:
    algorithm, rest = value.split(" ", 1)
    pairs = [piece.strip().partition("=") for piece in rest.split(",")]
    return algorithm, [(name, part) for name, _, part in pairs]


def auth_join(algorithm: str, parts: list[tuple[str, str]]) -> str:
    return f"{algorithm} " + ", ".join(f"{name}={part}" for name, part in parts)


def rewrite(wire: Wire, change: Callable[[str, list[tuple[str, str]]], str]) -> Wire:
    algorithm, parts = auth_parts(wire.get("authorization"))
    return wire.setting("authorization", change(algorithm, parts))


def m_authorization(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    how = draw(st.sampled_from(["drop", "blank", "twice", "part dropped", "part twice", "alg"]))
    if how == "drop":
        return refused(wire.without("authorization"), how, MISSING)
    if how == "blank":
        return refused(
            wire.setting("authorization", draw(st.sampled_from(["", " "]))), how, MISSING
        )
    if how == "twice":
        return refused(wire.with_header("authorization", wire.get("authorization")), how)
    index = draw(st.integers(0, 2))
    if how == "part dropped":
        return refused(rewrite(wire, lambda a, p: auth_join(a, p[:index] + p[index + 1 :])), how)
    if how == "part twice":
        return refused(rewrite(wire, lambda a, p: auth_join(a, [*p, p[index]])), how)
    algorithm = draw(st.sampled_from(["AWS4-HMAC-SHA1", "aws4-hmac-sha256", "AWS4", "AWS"]))
    return refused(rewrite(wire, lambda a, p: auth_join(algorithm, p)), how)


def m_credential(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    """One field of `key/date/region/service/terminator` replaced."""
    index = draw(st.integers(0, 4))
    value = draw(st.one_of(st.sampled_from(["", "eu-west-1", "s3", "aws4_request", "x/y"]), SHORT))

    def change(algorithm: str, parts: list[tuple[str, str]]) -> str:
        fields = parts[0][1].split("/")
        fields[index] = value
        return auth_join(algorithm, [(parts[0][0], "/".join(fields)), *parts[1:]])

    original = auth_parts(wire.get("authorization"))[1][0][1].split("/")[index]
    what = f"credential field {index}"
    if value == original:
        return harmless(wire, what)
    return refused(rewrite(wire, change), what, SIGNATURE, UNKNOWN_KEY)


def m_signed_headers(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    algorithm, parts = auth_parts(wire.get("authorization"))
    names = parts[1][1].split(";")
    how = draw(st.sampled_from(["drop", "absent", "unsent", "permuted", "upper"]))
    if how == "drop":
        dropped = draw(st.sampled_from(names))
        names = [n for n in names if n != dropped]
    elif how == "absent":
        names = sorted([*names, "x-amz-absent"])
    elif how == "unsent":  # listed and sent, but not what botocore signed
        wire = wire.with_header("x-forwarded-for", "10.0.0.1")
        names = sorted([*names, "x-forwarded-for"])
    elif how == "permuted":
        names = draw(st.permutations(names))
    else:
        names = [n.upper() for n in names]
    changed = wire.setting(
        "authorization", auth_join(algorithm, [parts[0], (parts[1][0], ";".join(names)), parts[2]])
    )
    what = f"signed headers {how}"
    return harmless(changed, what) if how in ("permuted", "upper") else refused(changed, what)


def m_signature(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    algorithm, parts = auth_parts(wire.get("authorization"))
    signature = parts[2][1]
    how = draw(st.sampled_from(["flip", "upper", "truncate", "append", "text"]))
    at = draw(st.integers(0, len(signature) - 1))
    new = {
        "flip": signature[:at] + ("0" if signature[at] != "0" else "1") + signature[at + 1 :],
        "upper": signature.upper(),
        "truncate": signature[:at],
        "append": signature + "0",
        "text": draw(SHORT.filter(lambda t: "," not in t)),
    }[how]
    changed = wire.setting("authorization", auth_join(algorithm, [*parts[:2], (parts[2][0], new)]))
    if new == signature:
        return harmless(changed, f"signature {how}")
    return refused(changed, f"signature {how}")


def m_date(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    signed_at = datetime.strptime(wire.get("x-amz-date"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    formats = [
        signed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        signed_at.strftime("%Y%m%dT%H%M%S"),
        signed_at.strftime("%Y%m%dt%H%M%Sz"),
        signed_at.strftime("%Y%m%dT%H%M%S.000Z"),
        format_datetime(signed_at, usegmt=True),
        str(int(signed_at.timestamp())),
        (signed_at + timedelta(seconds=draw(st.sampled_from([-1, 1, 3600])))).strftime(
            "%Y%m%dT%H%M%SZ"
        ),
    ]
    how = draw(st.sampled_from(["format", "drop", "twice", "date header"]))
    if how == "format":
        return refused(wire.setting("x-amz-date", draw(st.sampled_from(formats))), how)
    if how == "drop":
        return refused(wire.without("x-amz-date"), "x-amz-date dropped")
    if how == "twice":
        return refused(wire.with_header("x-amz-date", wire.get("x-amz-date")), "x-amz-date twice")
    # An unsigned Date beside the signed x-amz-date: x-amz-date wins, nothing changes.
    return harmless(wire.with_header("date", format_datetime(signed_at, usegmt=True)), how)


def m_skew(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    sign_of = draw(st.sampled_from([-1, 1]))
    beyond = draw(st.booleans())
    offset = sign_of * (SKEW + MARGIN if beyond else SKEW - MARGIN)
    skewed = sign(base, at=datetime.now(UTC) + offset)
    what = f"signed {offset} from now"
    return refused(skewed, what) if beyond else harmless(skewed, what)


def m_host(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    how = draw(st.sampled_from(["other", "port", "drop", "twice", "case"]))
    if how == "drop":
        return refused(wire.without("host"), "host dropped")
    if how == "twice":
        return refused(wire.with_header("host", "testserver"), "host twice")
    value = {"other": "evil.example", "port": "testserver:80", "case": "TestServer"}[how]
    return refused(wire.setting("host", value), f"host {how}")


def m_added_header(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    name = draw(
        st.sampled_from(
            [
                "x-forwarded-for",
                "user-agent",
                "x-extra",
                "x-amz-archive-description",
                "x-amz-part-size",
                "x-amz-meta-note",
                "x-amz-security-token",
                "x-amz-content-sha256",
            ]
        )
    )
    if name in dict(wire.headers):
        return refused(wire.with_header(name, draw(TEXT)), f"{name} added twice")
    changed = wire.with_header(name, draw(TEXT))
    if name.startswith("x-amz-"):
        return refused(changed, f"unsigned {name}")
    return harmless(changed, f"unsigned {name}")


def m_query(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    path, _, query = wire.target.partition("?")
    how = draw(
        st.sampled_from(["add", "drop", "value", "twice", "algorithm", "signature", "reorder"])
    )
    extra = {
        "add": "limit=1",
        "algorithm": "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "signature": "X-Amz-Signature=00",
    }
    if how in extra:
        new = "&".join(filter(None, [query, extra[how]]))
    elif how == "drop":
        new = ""
    elif how == "value":
        new = query.replace("=add", "=remove") if query else "operation=add"
    elif how == "twice":
        new = f"{query}&{query}" if query else "limit=1&limit=2"
    else:  # the same parameters in another order: the canonical query sorts them
        new = "&".join(reversed([*query.split("&"), "limit=1"])) if query else "limit=1"
        signed_with = replace(base, target=f"{path}?{'&'.join(reversed(new.split('&')))}")
        return harmless(replace(sign(signed_with), target=f"{path}?{new}"), "query reordered")
    changed = replace(wire, target=path + (f"?{new}" if new else ""))
    if new == query:
        return harmless(changed, f"query {how}")
    return refused(changed, f"query {how}", SIGNATURE, NOT_AS_SIGNED)


def routed(method: str, wire_target: str) -> Match | None:
    path, _, query = wire_target.partition("?")
    try:
        return match(method, path, dict(p.partition("=")[::2] for p in query.split("&") if p))
    except (GlacierError, UnicodeDecodeError):
        return None


def m_path(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    path, sep, query = wire.target.partition("?")
    how = draw(st.sampled_from(["label", "slash", "dots", "encoded", "case", "prefix"]))
    if how == "label":
        new = path.replace("/v", "/empty", 1) if "/v" in path else path + "/v"
    elif how == "slash":
        new = path + "/"
    elif how == "dots":
        new = path + draw(st.sampled_from(["/.", "/x/..", "/%2E", "//"]))
    elif how == "encoded":  # "vaults" as %76aults: single encoding signs it alike
        new = path.replace("/vaults", "/%76aults", 1)
    elif how == "case":
        new = path.replace("%2F", "%2f").replace("-", "%2d", 1)
    else:
        new = "/" + ACCOUNT_ID + path[2:] if path.startswith("/-/") else path
    changed = replace(wire, target=new + sep + query)
    same = routed(wire.method, changed.target) == routed(wire.method, wire.target)
    what = f"path {how}"
    if new == path:
        return harmless(changed, what)
    return Mutated(changed, what, frozenset({SIGNATURE, NOT_AS_SIGNED}), may_pass=same)


def m_method(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    other = draw(st.sampled_from(sorted({"GET", "PUT", "POST", "DELETE"} - {wire.method})))
    return refused(replace(wire, method=other), f"method {wire.method} -> {other}")


def m_body(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    body = draw(
        st.sampled_from([b"", b"x", b"{}", wire.body + b" ", wire.body[:-1], wire.body.upper()])
    )
    changed = replace(wire, body=body)
    if body == wire.body:
        return harmless(changed, "body unchanged")
    if base.route.body is Body.STREAM:
        # Streamed to storage, checked against the signed hash as it arrives (403);
        # a length that contradicts Content-Range or the 4 GiB rule is refused first.
        return refused(changed, "upload body changed", SIGNATURE, NOT_AS_SIGNED)
    return refused(changed, "body changed after signing")


def m_payload_hash(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    value = draw(
        st.sampled_from(["UNSIGNED-PAYLOAD", "0" * 64, hashlib.sha256(b"other").hexdigest()])
    )
    if "x-amz-content-sha256" in dict(wire.headers):
        return refused(wire.setting("x-amz-content-sha256", value), "payload hash replaced")
    return refused(wire.with_header("x-amz-content-sha256", value), "payload hash added")


def m_keys(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    how = draw(st.sampled_from(["unknown", "deleted", "wrong secret", "second key"]))
    if how == "unknown":
        return refused(sign(base, key=UNKNOWN, secret="x"), how, UNKNOWN_KEY)
    if how == "deleted":
        return refused(sign(base, key=DELETED_KEY, secret=SECOND_SECRET), how, UNKNOWN_KEY)
    if how == "wrong secret":
        return refused(sign(base, secret=SECOND_SECRET), how)
    return harmless(sign(base, key=SECOND_KEY, secret=SECOND_SECRET), how)


def m_presigned(draw: st.DrawFn, base: Base, wire: Wire) -> Mutated:
    # botocore's presigner moves a body into the query (it reads it as JSON): presign
    # without one, and send the body beside it as a client uploading to a URL would.
    presigned = replace(sign(replace(base, body=b""), presign=True), body=base.body)
    if draw(st.booleans()):
        presigned = presigned.setting("authorization", wire.get("authorization"))
        return refused(presigned, "presigned and an Authorization header")
    return refused(presigned, "presigned (query-string authentication)")


MUTATIONS = [
    m_authorization,
    m_credential,
    m_signed_headers,
    m_signature,
    m_date,
    m_skew,
    m_host,
    m_added_header,
    m_query,
    m_path,
    m_method,
    m_body,
    m_payload_hash,
    m_keys,
    m_presigned,
]


@pytest.fixture(scope="module", params=STORES)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with world_on(request.param, tmp_path_factory.mktemp("auth-properties"), request) as opened:
        store = opened.api.client.app.services.deps.store
        created = datetime(2026, 1, 1, tzinfo=UTC)
        with store.transaction() as tx:
            tx.put_credential(Credential(SECOND_KEY, SECOND_SECRET, ACCOUNT_ID, created, "2nd"))
            tx.put_credential(Credential(DELETED_KEY, SECOND_SECRET, ACCOUNT_ID, created, "gone"))
        with store.transaction() as tx:
            assert tx.delete_credential(DELETED_KEY)
        yield opened


def send(world: World, wire: Wire) -> RawAnswer:
    # An HTTP client states the length of the body it sends, whatever was signed.
    headers = [(k, v) for k, v in wire.headers if k != "content-length"]
    if wire.body or wire.method in ("PUT", "POST"):
        headers.append(("content-length", str(len(wire.body))))
    return send_raw(world.api.client.app, wire.method, wire.target, headers, wire.body)


@settings(SETTINGS, max_examples=300)
@given(route=st.sampled_from(ROUTES), mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_changed_signed_requests(
    world: World, route: Route, mutation: Callable[..., Mutated], data: Any
) -> None:
    body, headers = body_and_headers(route)
    base = Base(route, target(route, world.ids), body, headers)
    mutated = mutation(data.draw, base, sign(base))
    wire = mutated.wire
    sent_to = routed(wire.method, wire.target)
    streamed = sent_to is not None and sent_to.route.body is Body.STREAM
    if streamed and "x-amz-content-sha256" not in dict(wire.headers):
        # An upload is verified against its declared hash, so without one it cannot be
        # authenticated at all: the missing header is named first (api/app.py).
        mutated = replace(mutated, refusals=mutated.refusals | {MISSING_HASH})
    before = world.snapshot()
    resp = send(world, wire)
    code = resp.headers.get("x-amzn-errortype", "")
    event(f"{mutated.what}: {resp.status_code} {code}")
    shown = Generated(route.operation, wire.method, wire.target, dict(wire.headers), wire.body)
    assert_glacier_shaped(resp, shown)
    if resp.status_code >= 400 and code in mutated.refusals:
        assert resp.status_code == STATUS[code], (mutated, resp.text)
    if resp.status_code >= 400:
        assert world.snapshot() == before, (mutated, resp.text)
        if not mutated.may_pass:
            assert code in mutated.refusals, (mutated, resp.status_code, resp.text)
    else:
        assert mutated.may_pass, (mutated, resp.status_code, resp.text)
        if wire.method != "GET":
            restore(world.api, world.ids)
