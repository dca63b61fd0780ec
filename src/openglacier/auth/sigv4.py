"""AWS Signature Version 4 verification for Glacier requests (spec 1.6).

Pure functions: no I/O, no framework. The API layer turns an incoming request into a
`RequestToVerify` (path, query and headers exactly as received, wire bytes decoded as
latin-1, the ASGI convention), then calls `parse_authorization`, looks up the secret
for the access key, and calls `verify_signature`. Bodies are not read here: the
caller passes the payload hash to sign with (`payload_hash_for_signing`) and checks
a declared `x-amz-content-sha256` against the real bytes (`check_payload_hash`).

Error codes and statuses follow spec 1.6 item 7 and 1.8: no credentials at all is
400 `MissingAuthenticationTokenException`; everything else that is wrong with the
signature (malformed header, wrong scope, clock skew, mismatch) is 403
`InvalidSignatureException`, with the wording the AWS front end uses where known.

The canonical URI and query string are `auth/canonical.py`'s.

Only header-based authentication is implemented. Query-string ("presigned")
authentication (spec 1.6 item 6) is detected and refused; adding it means filling in
`_parse_presigned` and taking the request time and canonical query from the
`X-Amz-*` parameters (without `X-Amz-Signature`), with payload `UNSIGNED-PAYLOAD`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cached_property, lru_cache

from openglacier.auth.canonical import (
    canonical_query_string,
    canonical_uri,
    query_names,
)
from openglacier.errors import (
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "glacier"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PRESIGNED_ALGORITHM_PARAM = "X-Amz-Algorithm"

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
MISSING_TOKEN = "Missing Authentication Token"  # noqa: S105 - an error message
MISSING_DATE = (
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
)
HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."

_AMZ_DATE_RE = re.compile(r"\A\d{8}T\d{6}Z\Z")
_SCOPE_DATE_RE = re.compile(r"\A\d{8}\Z")
_REQUIRED_PARTS = ("Credential", "Signature", "SignedHeaders")


@dataclass(frozen=True)
class RequestToVerify:
    method: str
    raw_path: str  # as on the wire, still percent-encoded, without the query
    raw_query: str  # as on the wire, without "?"; "" when there is none
    headers: Sequence[tuple[str, str]]  # as received: any case, repeats possible

    @cached_property
    def values_by_name(self) -> dict[str, list[str]]:
        """Lowercase name -> its values in the order received. Built once: a
        signature check looks up every signed header, and scanning the list
        for each was a measurable share of a small request."""
        index: dict[str, list[str]] = {}
        for key, value in self.headers:
            index.setdefault(key.lower(), []).append(value)
        return index


@dataclass(frozen=True)
class Authorization:
    access_key_id: str
    date: str  # yyyymmdd from the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]  # lowercase, in the order the client listed them
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


# --- reading headers --------------------------------------------------------------


def header_values(req: RequestToVerify, name: str) -> list[str]:
    """Every value of a header, in the order received (names compare case-insensitively)."""
    return req.values_by_name.get(name.lower(), [])


def _single_header(req: RequestToVerify, name: str) -> str | None:
    """A header that must not be repeated: two Authorization or date headers would be
    ambiguous about what was signed."""
    values = header_values(req, name)
    if len(values) > 1:
        raise InvalidSignatureException(f"The request carries more than one '{name}' header.")
    return values[0] if values else None


def declared_payload_hash(req: RequestToVerify) -> str | None:
    """The `x-amz-content-sha256` header value, if the client sent one."""
    return _single_header(req, "x-amz-content-sha256")


def payload_hash_for_signing(req: RequestToVerify, body_sha256: str) -> str:
    """The last line of the canonical request (spec 1.6 step 2).

    botocore signs the `x-amz-content-sha256` value verbatim when the header is present
    (including `UNSIGNED-PAYLOAD`), otherwise the SHA-256 of the body it sends.
    """
    declared = declared_payload_hash(req)
    return body_sha256 if declared is None else declared


# --- the Authorization header -------------------------------------------------------


def parse_authorization(req: RequestToVerify, *, service: str = SERVICE) -> Authorization:
    """Find and parse the request's credentials; raises before any secret is needed."""
    header = _authorization_header(req)
    presigned = PRESIGNED_ALGORITHM_PARAM in query_names(req.raw_query)
    if header is None:
        if presigned:
            return _parse_presigned(req)
        raise MissingAuthenticationTokenException(MISSING_TOKEN)
    if presigned:
        raise InvalidSignatureException(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter "
            "or the Authorization header should be specified."
        )
    return _parse_authorization_header(header, service)


def _authorization_header(req: RequestToVerify) -> str | None:
    """The one non-blank `Authorization` value, if any. A blank header carries no
    credentials, so it counts as absent: 400 `MissingAuthenticationTokenException`
    (spec 1.6 item 7), not a malformed signature."""
    values = [value for value in header_values(req, "authorization") if value.strip()]
    if len(values) > 1:
        raise InvalidSignatureException("The request carries more than one 'authorization' header.")
    return values[0] if values else None


def _parse_presigned(req: RequestToVerify) -> Authorization:
    # Spec 1.6 item 6 [R]: optional. Refused until the project decides to support it.
    raise InvalidSignatureException(
        "Presigned URLs (query-string authentication with X-Amz-Algorithm) are not "
        "supported by this server; sign the request with an Authorization header."
    )


def _parse_authorization_header(value: str, service: str) -> Authorization:
    words = value.strip().split(None, 1)
    algorithm = words[0] if words else ""
    if algorithm != ALGORITHM:
        raise InvalidSignatureException(
            f"Unsupported Authorization algorithm '{algorithm}': only {ALGORITHM} "
            "(Signature Version 4) is accepted."
        )
    parts = _authorization_parts(value, words[1] if len(words) > 1 else "")
    access_key_id, date, region = _parse_credential(parts["Credential"], service)
    return Authorization(
        access_key_id=access_key_id,
        date=date,
        region=region,
        service=service,
        signed_headers=_parse_signed_headers(parts["SignedHeaders"], value),
        signature=parts["Signature"],
    )


def _authorization_parts(value: str, rest: str) -> dict[str, str]:
    """`Credential=…, SignedHeaders=…, Signature=…` (spaces after commas optional)."""
    parts: dict[str, str] = {}
    for item in (piece.strip() for piece in rest.split(",")):
        if not item:
            continue
        name, equals, part = item.partition("=")
        if not equals:
            raise InvalidSignatureException(
                f"'{item}' not a valid key=value pair (missing equal-sign) in "
                f"Authorization header: '{value}'."
            )
        if name.strip() in parts:  # which one was meant to be signed is ambiguous
            raise InvalidSignatureException(
                f"'{name.strip()}' is given more than once in Authorization header: '{value}'."
            )
        parts[name.strip()] = part.strip()
    missing = [name for name in _REQUIRED_PARTS if not parts.get(name)]
    if missing:
        needs = " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        raise InvalidSignatureException(f"{needs} Authorization={value}")
    return parts


def _parse_credential(credential: str, service: str) -> tuple[str, str, str]:
    """`AKID/yyyymmdd/region/service/aws4_request` -> (key id, date, region)."""
    fields = credential.split("/")
    if len(fields) != 5 or not all(fields):
        raise InvalidSignatureException(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{credential}'"
        )
    access_key_id, date, region, scoped_service, terminator = fields
    if not _SCOPE_DATE_RE.match(date):
        raise InvalidSignatureException(
            "Invalid credential date. Date is not the required format: yyyyMMdd."
        )
    if scoped_service != service:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{service}'. "
        )
    if terminator != TERMINATOR:
        raise InvalidSignatureException(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{terminator}'. "
        )
    return access_key_id, date, region


def _parse_signed_headers(signed: str, value: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in signed.split(";"))
    if not all(names):
        raise InvalidSignatureException(
            f"SignedHeaders contains an empty header name. Authorization={value}"
        )
    # The Host header binds the signature to the endpoint (spec 1.6 step 1).
    if "host" not in names:
        raise InvalidSignatureException(HOST_NOT_SIGNED)
    return names


# --- request time -------------------------------------------------------------------


def request_time(req: RequestToVerify) -> datetime:
    """The signed timestamp (spec 1.5): `x-amz-date` (ISO 8601 basic) overrides `Date`,
    which may itself be ISO 8601 basic or an RFC 1123/2616 HTTP date. Always UTC."""
    amz_date = _single_header(req, "x-amz-date")
    if amz_date is not None:
        parsed = _parse_amz_date(amz_date.strip())
        if parsed is None:
            raise InvalidSignatureException(
                f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                "See http://en.wikipedia.org/wiki/ISO_8601"
            )
        return parsed
    date = _single_header(req, "date")
    if date is None:
        raise InvalidSignatureException(MISSING_DATE)
    parsed = _parse_amz_date(date.strip()) or _parse_http_date(date)
    if parsed is None:
        raise InvalidSignatureException(
            f"Date must be in ISO-8601 'basic format' or be an RFC 1123 HTTP date. Got '{date}'."
        )
    return parsed


def format_amz_date(when: datetime) -> str:
    """ISO 8601 basic format, as in `x-amz-date` and the string to sign."""
    u = when.astimezone(UTC)
    # By hand: strftime and strptime were a tenth of a small request's signature check.
    return f"{u.year:04d}{u.month:02d}{u.day:02d}T{u.hour:02d}{u.minute:02d}{u.second:02d}Z"


def _parse_amz_date(value: str) -> datetime | None:
    if not _AMZ_DATE_RE.match(value):
        return None
    # The pattern fixed the positions: yyyymmdd T hhmmss Z.
    year, month, day = int(value[0:4]), int(value[4:6]), int(value[6:8])
    hour, minute, second = int(value[9:11]), int(value[11:13]), int(value[13:15])
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:  # well-shaped but impossible, e.g. month 13
        return None


def _parse_http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # "-0000" (which botocore's formatdate emits) parses as naive: it means UTC.
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- canonical request --------------------------------------------------------------


def canonical_request(
    req: RequestToVerify,
    signed_headers: Sequence[str],
    payload_hash: str,
    *,
    double_encode: bool = True,
) -> str:
    """The six-part canonical request of spec 1.6 step 1, as one string."""
    names = sorted({name.lower() for name in signed_headers})
    return "\n".join(
        [
            req.method.upper(),
            canonical_uri(req.raw_path, double_encode=double_encode),
            canonical_query_string(req.raw_query),
            *canonical_header_lines(req, names),
            "",  # the header block ends with a newline of its own
            ";".join(names),
            payload_hash,
        ]
    )


def canonical_header_lines(req: RequestToVerify, names: Sequence[str]) -> list[str]:
    """`name:value` for each signed header, in the order given.

    Values are trimmed and inner whitespace runs collapsed to one space (botocore splits
    on any whitespace); a repeated header's values are joined with "," in the order
    received. A header that was signed but is not in the request is a failed signature.
    """
    lines = []
    for name in names:
        values = header_values(req, name)
        if not values:
            raise InvalidSignatureException(
                f"The header '{name}' is listed in SignedHeaders but is not in the request."
            )
        lines.append(f"{name}:{','.join(' '.join(value.split()) for value in values)}")
    return lines


# --- signing --------------------------------------------------------------------------


def string_to_sign(amz_date: str, scope: str, canonical_request_text: str) -> str:
    digest = hashlib.sha256(canonical_request_text.encode("utf-8")).hexdigest()
    return "\n".join([ALGORITHM, amz_date, scope, digest])


@lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """HMAC chain over date, region, service and the terminator (spec 1.6 step 3).

    Cached: the key changes once a day per credential, and the four HMACs were a
    measurable share of a small request. A revoked key never reaches this (the
    credential lookup refuses it first).
    """
    key = ("AWS4" + secret).encode("utf-8")
    for step in (date, region, service, TERMINATOR):
        key = hmac.digest(key, step.encode("utf-8"), "sha256")
    return key


def signature(key: bytes, string_to_sign_text: str) -> str:
    return hmac.digest(key, string_to_sign_text.encode("utf-8"), "sha256").hex()


# --- verification ---------------------------------------------------------------------


def verify_signature(
    req: RequestToVerify,
    auth: Authorization,
    secret: str,
    payload_hash: str,
    *,
    now: datetime,
    max_skew: timedelta,
    expected_region: str,
) -> None:
    """Raise `InvalidSignatureException` unless `auth` is a valid signature of `req`.

    `payload_hash` is the canonical request's last line (`payload_hash_for_signing`);
    whether `UNSIGNED-PAYLOAD` is acceptable for the operation is the caller's call.
    """
    when = request_time(req)
    amz_date = format_amz_date(when)
    _check_scope_date(auth, amz_date)
    _check_region(auth, expected_region)
    _check_skew(when, now, max_skew)
    key = signing_key(secret, auth.date, auth.region, auth.service)
    provided = auth.signature.encode("utf-8")
    for text in _candidate_canonical_requests(req, auth, payload_hash):
        expected = signature(key, string_to_sign(amz_date, auth.scope, text))
        if hmac.compare_digest(expected.encode("ascii"), provided):
            _check_amz_headers_signed(req, auth)
            return
    raise InvalidSignatureException(SIGNATURE_MISMATCH)


def _candidate_canonical_requests(
    req: RequestToVerify, auth: Authorization, payload_hash: str
) -> Iterator[str]:
    """Double encoding first (what SDKs do), then single (spec 1.6 [R]) if it differs."""
    double = canonical_request(req, auth.signed_headers, payload_hash)
    yield double
    single = canonical_request(req, auth.signed_headers, payload_hash, double_encode=False)
    if single != double:
        yield single


def _check_amz_headers_signed(req: RequestToVerify, auth: Authorization) -> None:
    """Every `x-amz-*` header must be signed (the rule AWS states for S3, and what
    every SDK does: botocore signs all it sends but a few transport headers). The
    server reads some (`x-amz-archive-description`, `x-amz-part-size`, ...): one
    added to a captured request would change what runs without touching the
    signature."""
    for name in req.values_by_name:
        if name.startswith("x-amz-") and name not in auth.signed_headers:
            raise InvalidSignatureException(
                f"The header '{name}' is not signed: every x-amz-* header in the request "
                "must be listed in SignedHeaders."
            )


def _check_scope_date(auth: Authorization, amz_date: str) -> None:
    if auth.date != amz_date[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{auth.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )


def _check_region(auth: Authorization, expected_region: str) -> None:
    if auth.region != expected_region:
        raise InvalidSignatureException(
            f"Credential should be scoped to a valid region, not '{auth.region}'. "
            f"This server serves '{expected_region}'."
        )


def _check_skew(when: datetime, now: datetime, max_skew: timedelta) -> None:
    """Spec 1.6 item 5 [R]: more than `max_skew` either way is refused, in AWS's words."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    span = _describe_span(max_skew)
    if when < now - max_skew:
        raise InvalidSignatureException(
            f"Signature expired: {format_amz_date(when)} is now earlier than "
            f"{format_amz_date(now - max_skew)} ({format_amz_date(now)} - {span})"
        )
    if when > now + max_skew:
        raise InvalidSignatureException(
            f"Signature not yet current: {format_amz_date(when)} is still later than "
            f"{format_amz_date(now + max_skew)} ({format_amz_date(now)} + {span})"
        )


def _describe_span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 60} min." if seconds % 60 == 0 else f"{seconds} sec."


def check_payload_hash(declared: str, computed: str) -> None:
    """Spec 1.6 step 2: a declared `x-amz-content-sha256` must be the body's SHA-256."""
    if declared.lower() != computed.lower():
        raise InvalidSignatureException(
            "The value passed in as x-amz-content-sha256 does not match the computed payload "
            f"hash. Computed digest: {computed} expected hash: {declared}"
        )
