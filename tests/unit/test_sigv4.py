"""SigV4 verification (spec 1.6): the published vector, botocore as the signing oracle
(its signer and the real Glacier client), and every way a signature is refused."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import boto3
import botocore.utils
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode, percent_encode_sequence
from hypothesis import given, settings
from hypothesis import strategies as st

from openglacier.auth.canonical import canonical_query_string, canonical_uri, remove_dot_segments
from openglacier.auth.sigv4 import (
    EMPTY_SHA256,
    SIGNATURE_MISMATCH,
    UNSIGNED_PAYLOAD,
    Authorization,
    RequestToVerify,
    canonical_header_lines,
    canonical_request,
    check_payload_hash,
    declared_payload_hash,
    format_amz_date,
    parse_authorization,
    payload_hash_for_signing,
    request_time,
    signature,
    signing_key,
    string_to_sign,
    verify_signature,
)
from openglacier.errors import InvalidSignatureException, MissingAuthenticationTokenException

ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SKEW = timedelta(minutes=15)
ENDPOINT = "http://glacier.test:9000"
WHEN = datetime(2026, 11, 24, 14, 24, 28, tzinfo=UTC)
REGIONS = ["us-east-1", "eu-west-3", "ap-southeast-2", "cn-north-1", "us-gov-west-1"]


# --- helpers: botocore signs, we convert to what the server receives ----------------


def from_prepared(
    prepared: AWSPreparedRequest, headers: Sequence[tuple[str, str | bytes]] | None = None
) -> RequestToVerify:
    """What a server sees: botocore leaves Host to the HTTP client (urllib3), which sends
    the lowercase host name plus any non-default port."""
    split = urlsplit(prepared.url)
    host = split.hostname or ""
    default_port = {"http": 80, "https": 443}.get(split.scheme)
    if split.port is not None and split.port != default_port:
        host = f"{host}:{split.port}"
    sent = prepared.headers.items() if headers is None else headers
    wire = [("Host", host), *((k, _wire_text(v)) for k, v in sent)]
    return RequestToVerify(prepared.method, split.path, split.query, wire)


def _wire_text(value: str | bytes) -> str:
    # http.client sends str values latin-1 encoded and bytes as they are; ASGI servers
    # decode them as latin-1 again.
    return value.decode("latin-1") if isinstance(value, bytes) else value


def botocore_sign(
    method: str,
    url: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    region: str = "us-east-1",
    secret: str = SECRET,
    at: datetime = WHEN,
    params: Sequence[tuple[str, str]] = (),
    signer: type[SigV4Auth] = SigV4Auth,
) -> RequestToVerify:
    aws = AWSRequest(method=method, url=url, data=body, params=list(params))
    for name, value in headers:
        aws.headers[name] = value  # HTTPHeaders appends: repeated names stay repeated
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        signer(Credentials(ACCESS_KEY, secret), "glacier", region).add_auth(aws)
    # The prepared request keeps one value per header name; the signer signed (and a
    # raw HTTP client would send) every value, so take the headers from the AWSRequest.
    return from_prepared(aws.prepare(), list(aws.headers.items()))


def verify(
    req: RequestToVerify,
    *,
    body: bytes = b"",
    secret: str = SECRET,
    region: str = "us-east-1",
    now: datetime = WHEN,
    payload_hash: str | None = None,
) -> Authorization:
    """The API layer's sequence: parse, pick the payload hash, verify."""
    auth = parse_authorization(req)
    if payload_hash is None:
        payload_hash = payload_hash_for_signing(req, hashlib.sha256(body).hexdigest())
    verify_signature(
        req, auth, secret, payload_hash, now=now, max_skew=SKEW, expected_region=region
    )
    return auth


def replace_header(req: RequestToVerify, name: str, value: str | None) -> RequestToVerify:
    """Drop every `name` header and, unless value is None, add one with `value`."""
    kept = [(k, v) for k, v in req.headers if k.lower() != name.lower()]
    if value is not None:
        kept.append((name, value))
    return dataclasses.replace(req, headers=kept)


def assert_refused(req: RequestToVerify, message: str | None = None, **kwargs: Any) -> None:
    with pytest.raises(InvalidSignatureException) as caught:
        verify(req, **kwargs)
    assert caught.value.http_status == 403
    assert caught.value.code == "InvalidSignatureException"
    if message is not None:
        assert caught.value.message == message


# --- spec 1.6 item 4: the CreateVault vector ---------------------------------------------

SPEC_CANONICAL_REQUEST = """\
PUT
/-/vaults/examplevault

host:glacier.us-east-1.amazonaws.com
x-amz-date:20120525T002453Z
x-amz-glacier-version:2012-06-01

host;x-amz-date;x-amz-glacier-version
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"""
SPEC_SIGNATURE = "3ce5b2f2fffac9262b4da9256f8d086b4aaf42eba5f111c21681a65a127b7c2a"
SPEC_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20120525/us-east-1/glacier/aws4_request,"
    f"SignedHeaders=host;x-amz-date;x-amz-glacier-version,Signature={SPEC_SIGNATURE}"
)
SPEC_REQUEST = RequestToVerify(
    "PUT",
    "/-/vaults/examplevault",
    "",
    [
        ("Host", "glacier.us-east-1.amazonaws.com"),
        ("x-amz-Date", "20120525T002453Z"),
        ("x-amz-glacier-version", "2012-06-01"),
        ("Authorization", SPEC_AUTHORIZATION),
    ],
)
SPEC_TIME = datetime(2012, 5, 25, 0, 24, 53, tzinfo=UTC)


def test_spec_vector_canonical_request_and_signature() -> None:
    auth = parse_authorization(SPEC_REQUEST)
    text = canonical_request(SPEC_REQUEST, auth.signed_headers, EMPTY_SHA256)
    assert text == SPEC_CANONICAL_REQUEST
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert digest == "5f1da1a2d0feb614dd03d71e87928b8e449ac87614479332aced3a701f916743"
    assert auth.scope == "20120525/us-east-1/glacier/aws4_request"
    sts = string_to_sign("20120525T002453Z", auth.scope, text)
    assert sts == f"AWS4-HMAC-SHA256\n20120525T002453Z\n{auth.scope}\n{digest}"
    key = signing_key(SECRET, "20120525", "us-east-1", "glacier")
    assert signature(key, sts) == SPEC_SIGNATURE


def test_spec_vector_verifies() -> None:
    assert request_time(SPEC_REQUEST) == SPEC_TIME
    auth = verify(SPEC_REQUEST, now=SPEC_TIME)
    assert auth == Authorization(
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        date="20120525",
        region="us-east-1",
        service="glacier",
        signed_headers=("host", "x-amz-date", "x-amz-glacier-version"),
        signature=SPEC_SIGNATURE,
    )


def test_botocore_reproduces_the_spec_vector() -> None:
    req = botocore_sign(
        "PUT",
        "https://glacier.us-east-1.amazonaws.com/-/vaults/examplevault",
        headers=[("x-amz-glacier-version", "2012-06-01")],
        at=SPEC_TIME,
    )
    (authorization,) = (v for k, v in req.headers if k == "Authorization")
    assert authorization.endswith(f"Signature={SPEC_SIGNATURE}")
    assert canonical_request(req, parse_authorization(req).signed_headers, EMPTY_SHA256) == (
        SPEC_CANONICAL_REQUEST
    )


# --- cross-checks against botocore's SigV4Auth -------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_LABEL = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
_HEADER_NAME = st.sampled_from(
    ["x-amz-archive-description", "X-Amz-Meta-Note", "Content-Range", "x-custom", "User-Agent"]
)
# What http.client can put on the wire: latin-1, no CR/LF; tabs and odd spaces included.
_HEADER_VALUE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF) | st.sampled_from(["\t", " "]),
    max_size=20,
)
_QUERY = st.lists(st.tuples(_TEXT, _TEXT), max_size=5)


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE"]),
    region=st.sampled_from(REGIONS),
    label=_LABEL,
    query=_QUERY,
    headers=st.lists(st.tuples(_HEADER_NAME, _HEADER_VALUE), max_size=4),
    body=st.binary(max_size=64),
    declare=st.sampled_from(["none", "sha256", "unsigned"]),
)
def test_botocore_signed_requests_verify(
    *,
    method: str,
    region: str,
    label: str,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
    declare: str,
) -> None:
    # Labels and query are encoded the way botocore's REST serializer does it.
    url = f"http://glacier.{region}.amazonaws.com/-/vaults/{percent_encode(label)}/archives"
    if query:
        url += "?" + percent_encode_sequence(query)
    extra = [*headers, ("x-amz-glacier-version", "2012-06-01")]
    if declare == "sha256":
        extra.append(("x-amz-content-sha256", hashlib.sha256(body).hexdigest()))
    elif declare == "unsigned":
        extra.append(("X-Amz-Content-SHA256", UNSIGNED_PAYLOAD))
    req = botocore_sign(method, url, headers=extra, body=body, region=region)
    verify(req, body=body, region=region)


@settings(max_examples=100, deadline=None)
@given(query=_QUERY, label=_LABEL)
def test_botocore_params_with_plus_for_space_verify(
    query: list[tuple[str, str]], label: str
) -> None:
    # AWSRequest(params=...) puts urlencode() on the wire ("+" for a space) but signs
    # RFC 3986 (%20): the server reads "+" as a space, as its router does.
    url = f"{ENDPOINT}/-/vaults/{percent_encode(label)}"
    req = botocore_sign("GET", url, params=query)
    verify(req)


def test_repeated_and_untidy_headers_verify() -> None:
    req = botocore_sign(
        "POST",
        f"{ENDPOINT}/-/vaults/v1/archives",
        headers=[
            ("X-Amz-Meta-Tag", "  one   two\t three  "),
            ("x-amz-meta-tag", "four"),
            ("x-amz-glacier-version", "2012-06-01"),
        ],
        body=b"hello",
    )
    auth = verify(req, body=b"hello")
    assert "x-amz-meta-tag:one two three,four" in canonical_header_lines(req, auth.signed_headers)


def test_unsigned_headers_may_change() -> None:
    req = botocore_sign("GET", f"{ENDPOINT}/-/vaults", headers=[("User-Agent", "a")])
    verify(replace_header(req, "User-Agent", "something else"))
    verify(dataclasses.replace(req, headers=[*req.headers, ("X-Forwarded-For", "10.0.0.1")]))


@pytest.mark.parametrize(
    "name", ["x-amz-archive-description", "X-Amz-Part-Size", "x-amz-meta-anything"]
)
def test_unsigned_amz_headers_are_refused(name: str) -> None:
    # The server reads some x-amz-* headers: added to a captured request, one would
    # change what runs while the signature still matched.
    req = botocore_sign("POST", f"{ENDPOINT}/-/vaults/v/archives", body=b"hello")
    added = dataclasses.replace(req, headers=[*req.headers, (name, "added")])
    assert_refused(
        added,
        f"The header '{name.lower()}' is not signed: every x-amz-* header in the request "
        "must be listed in SignedHeaders.",
        body=b"hello",
    )


@settings(max_examples=100, deadline=None)
@given(label=_LABEL.filter(lambda s: s not in (".", "..")), query=_QUERY)
def test_single_encoding_signer_is_accepted(label: str, query: list[tuple[str, str]]) -> None:
    # S3SigV4Auth signs the path exactly as sent (single encoding): spec 1.6 [R] fallback.
    url = f"{ENDPOINT}/-/vaults/{percent_encode(label)}"
    if query:
        url += "?" + percent_encode_sequence(query)
    req = botocore_sign("GET", url, signer=S3SigV4Auth)
    verify(req)


def test_double_and_single_encodings_of_a_slash() -> None:
    req = botocore_sign("GET", f"{ENDPOINT}/-/vaults/my%2Fvault")
    auth = verify(req)
    double = canonical_request(req, auth.signed_headers, EMPTY_SHA256)
    single = canonical_request(req, auth.signed_headers, EMPTY_SHA256, double_encode=False)
    assert double.splitlines()[1] == "/-/vaults/my%252Fvault"
    assert single.splitlines()[1] == "/-/vaults/my%2Fvault"
    s3_style = botocore_sign("GET", f"{ENDPOINT}/-/vaults/my%2Fvault", signer=S3SigV4Auth)
    verify(s3_style)


@settings(max_examples=300, deadline=None)
@given(path=st.lists(st.sampled_from(["", ".", "..", "a", "%2E", "..."]), max_size=8).map("/".join))
def test_dot_segment_removal_is_botocores(path: str) -> None:
    # The router refuses every path this changes; it must change exactly what the
    # signer's normalisation changes, or a path could be signed as another.
    assert remove_dot_segments(path) == botocore.utils.normalize_url_path(path)
    assert remove_dot_segments("/" + path) == botocore.utils.normalize_url_path("/" + path)


def test_dot_segments_are_normalised_like_botocore() -> None:
    req = botocore_sign("GET", f"{ENDPOINT}/-/vaults/./x/../v1//archives/")
    auth = verify(req)
    text = canonical_request(req, auth.signed_headers, EMPTY_SHA256)
    assert text.splitlines()[1] == "/-/vaults/v1/archives/"


# --- the real Glacier client (serializer + handlers + signer) -------------------------------


class Captured(Exception):
    def __init__(self, request: AWSPreparedRequest) -> None:
        super().__init__("captured")
        self.request = request


def _capture(request: AWSPreparedRequest, **_: Any) -> None:
    raise Captured(request)


@cache
def glacier_client() -> Any:
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET, region_name="eu-west-1"
    )
    client = session.client("glacier", endpoint_url=ENDPOINT)
    client.meta.events.register("before-send.glacier", _capture)
    return client


def sdk_request(operation: str, **params: Any) -> tuple[RequestToVerify, bytes]:
    """The request boto3 would send for one call, captured just before the wire."""
    with (
        mock.patch("botocore.auth.get_current_datetime", return_value=WHEN.replace(tzinfo=None)),
        pytest.raises(Captured) as caught,
    ):
        getattr(glacier_client(), operation)(**params)
    prepared = caught.value.request
    body = prepared.body
    if isinstance(body, io.IOBase):
        body.seek(0)
        body = body.read()
    return from_prepared(prepared), bytes(body or b"")


SDK_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("create_vault", {"vaultName": "examplevault"}),
    ("describe_vault", {"accountId": "123456789012", "vaultName": "a/b c+d%e~é&?"}),
    ("list_vaults", {"limit": "10", "marker": "arn:aws:glacier:eu-west-1:1:vaults/x y"}),
    (
        "list_jobs",
        {
            "vaultName": "v",
            "limit": "5",
            "statuscode": "Succeeded",
            "completed": "true",
            "marker": "m/+= &",
        },
    ),
    ("upload_archive", {"vaultName": "v", "archiveDescription": "my  desc ", "body": b"hello"}),
    (
        "upload_multipart_part",
        {"vaultName": "v", "uploadId": "U-1_x", "range": "bytes 0-4/*", "body": b"hello"},
    ),
    ("add_tags_to_vault", {"vaultName": "v", "Tags": {"a": "b"}}),
    ("initiate_job", {"vaultName": "v", "jobParameters": {"Type": "inventory-retrieval"}}),
    ("get_job_output", {"vaultName": "v", "jobId": "J", "range": "bytes=0-1048575"}),
]


@pytest.mark.parametrize(("operation", "params"), SDK_CALLS, ids=[op for op, _ in SDK_CALLS])
def test_glacier_client_requests_verify(operation: str, params: dict[str, Any]) -> None:
    req, body = sdk_request(operation, **params)
    auth = verify(req, body=body, region="eu-west-1")
    assert auth.region == "eu-west-1"
    declared = declared_payload_hash(req)
    if declared is not None:
        check_payload_hash(declared, hashlib.sha256(body).hexdigest())


@settings(max_examples=60, deadline=None)
@given(vault=_LABEL, marker=_TEXT)
def test_glacier_client_arbitrary_names_verify(vault: str, marker: str) -> None:
    req, _ = sdk_request("list_multipart_uploads", vaultName=vault, marker=marker or "m")
    verify(req, region="eu-west-1")


# --- tampering ---------------------------------------------------------------------------


def _signed_upload() -> RequestToVerify:
    return botocore_sign(
        "POST",
        f"{ENDPOINT}/-/vaults/v1/archives?operation=add&z=1",
        headers=[
            ("x-amz-glacier-version", "2012-06-01"),
            ("x-amz-archive-description", "original"),
        ],
        body=b"hello",
    )


def _tamper_cases() -> Iterator[Any]:
    req = _signed_upload()
    yield pytest.param(dataclasses.replace(req, method="PUT"), {}, id="method")
    yield pytest.param(dataclasses.replace(req, raw_path="/-/vaults/v2/archives"), {}, id="path")
    yield pytest.param(
        dataclasses.replace(req, raw_query="operation=remove&z=1"), {}, id="query-value"
    )
    yield pytest.param(
        dataclasses.replace(req, raw_query="operation=add&z=1&y=2"), {}, id="query-added"
    )
    yield pytest.param(
        replace_header(req, "x-amz-archive-description", "changed"), {}, id="signed-header"
    )
    yield pytest.param(replace_header(req, "Host", "other.test:9000"), {}, id="host")
    yield pytest.param(req, {"body": b"HELLO"}, id="payload")
    yield pytest.param(
        replace_header(req, "x-amz-content-sha256", EMPTY_SHA256), {}, id="declared-hash"
    )
    yield pytest.param(req, {"secret": "another-secret"}, id="secret")
    yield pytest.param(
        replace_header(req, "X-Amz-Date", format_amz_date(WHEN + timedelta(seconds=1))),
        {},
        id="timestamp",
    )


def test_untampered_upload_verifies() -> None:
    verify(_signed_upload(), body=b"hello")


@pytest.mark.parametrize(("req", "kwargs"), list(_tamper_cases()))
def test_tampering_is_refused(req: RequestToVerify, kwargs: dict[str, Any]) -> None:
    kwargs.setdefault("body", b"hello")
    assert_refused(req, SIGNATURE_MISMATCH, **kwargs)


@settings(max_examples=60, deadline=None)
@given(label=_LABEL, other=_LABEL)
def test_any_other_path_is_refused(label: str, other: str) -> None:
    req = botocore_sign("GET", f"{ENDPOINT}/-/vaults/{percent_encode(label)}")
    tampered = dataclasses.replace(req, raw_path=f"/-/vaults/{percent_encode(other)}")
    if canonical_uri(tampered.raw_path) == canonical_uri(req.raw_path):
        return  # e.g. "." and ".." normalise to the same signed path
    assert_refused(tampered, SIGNATURE_MISMATCH)


# --- parse_authorization ----------------------------------------------------------------


def _with_authorization(value: str | None) -> RequestToVerify:
    return replace_header(SPEC_REQUEST, "Authorization", value)


def test_missing_authorization_is_400() -> None:
    with pytest.raises(MissingAuthenticationTokenException) as caught:
        parse_authorization(_with_authorization(None))
    assert caught.value.http_status == 400
    assert caught.value.code == "MissingAuthenticationTokenException"
    assert caught.value.message == "Missing Authentication Token"


@pytest.mark.parametrize("blank", ["", " ", "\t \t"])
def test_blank_authorization_is_absent_authorization(blank: str) -> None:
    # A blank header carries no credentials: spec 1.6 item 7's 400, not a bad signature.
    with pytest.raises(MissingAuthenticationTokenException) as caught:
        parse_authorization(_with_authorization(blank))
    assert caught.value.http_status == 400
    assert caught.value.message == "Missing Authentication Token"


def test_blank_authorization_beside_a_real_one_is_ignored() -> None:
    req = dataclasses.replace(SPEC_REQUEST, headers=[*SPEC_REQUEST.headers, ("Authorization", "")])
    assert parse_authorization(req) == parse_authorization(SPEC_REQUEST)


@pytest.mark.parametrize("part", ["Credential", "SignedHeaders", "Signature"])
def test_a_part_given_twice_is_refused(part: str) -> None:
    # Which of the two was signed is ambiguous, even when the last one is right.
    value = dict(SPEC_REQUEST.headers)["Authorization"]
    original = value.split(f"{part}=", 1)[1].split(",")[0]
    doubled = value.replace(f"{part}=", f"{part}=bogus, {part}=", 1)
    assert doubled.count(original) == 1
    with pytest.raises(InvalidSignatureException, match="more than once"):
        verify(_with_authorization(doubled), now=SPEC_TIME)


def test_authorization_without_spaces_after_commas() -> None:
    auth = parse_authorization(SPEC_REQUEST)  # the spec's header has none
    assert auth.access_key_id == "AKIAIOSFODNN7EXAMPLE"
    spaced = SPEC_AUTHORIZATION.replace(",", ",  ")
    assert parse_authorization(_with_authorization(spaced)) == auth


def _refused_header(value: str) -> str:
    with pytest.raises(InvalidSignatureException) as caught:
        parse_authorization(_with_authorization(value))
    assert caught.value.http_status == 403
    return caught.value.message


SCOPE = "AK/20120525/us-east-1/glacier/aws4_request"


def test_missing_components_are_named() -> None:
    value = f"AWS4-HMAC-SHA256 Credential={SCOPE}"
    assert _refused_header(value) == (
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        f"Authorization={value}"
    )
    assert _refused_header("AWS4-HMAC-SHA256").startswith(
        "Authorization header requires 'Credential' parameter."
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "AWS4-HMAC-SHA256 Credential=AK/20120525/us-east-1/glacier,"
            "SignedHeaders=host,Signature=00",
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            "keyid/date/region/service/term, got 'AK/20120525/us-east-1/glacier'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AK/20120525/us-east-1/s3/aws4_request,"
            "SignedHeaders=host,Signature=00",
            "Credential should be scoped to correct service: 'glacier'. ",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AK/20120525/us-east-1/glacier/aws5_request,"
            "SignedHeaders=host,Signature=00",
            "Credential should be scoped with a valid terminator: 'aws4_request', "
            "not 'aws5_request'. ",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AK/2012-05-25/us-east-1/glacier/aws4_request,"
            "SignedHeaders=host,Signature=00",
            "Invalid credential date. Date is not the required format: yyyyMMdd.",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders=x-amz-date,Signature=00",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
    ],
    ids=["credential-parts", "service", "terminator", "scope-date", "host-unsigned"],
)
def test_malformed_credential(value: str, message: str) -> None:
    assert _refused_header(value) == message


@pytest.mark.parametrize(
    "value",
    [
        # "" is absent credentials (400): test_blank_authorization_is_absent_authorization
        "AWS AKIDEXAMPLE:c2lnbmF0dXJl",  # Signature Version 2
        f"AWS4-HMAC-SHA1 Credential={SCOPE},SignedHeaders=host,Signature=00",
        "Bearer token",
        f"AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders,Signature=00",
        f"AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders=host;;x,Signature=00",
    ],
)
def test_malformed_header_is_403(value: str) -> None:
    assert _refused_header(value)


def test_presigned_urls_are_refused_clearly() -> None:
    aws = AWSRequest(method="GET", url=f"{ENDPOINT}/-/vaults")
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET), "glacier", "us-east-1").add_auth(aws)
    presigned = from_prepared(aws.prepare())
    assert "X-Amz-Algorithm=" in presigned.raw_query
    with pytest.raises(InvalidSignatureException, match="Presigned URLs") as caught:
        parse_authorization(presigned)
    assert caught.value.http_status == 403
    both = dataclasses.replace(SPEC_REQUEST, raw_query=presigned.raw_query)
    with pytest.raises(InvalidSignatureException, match="Only one auth mechanism"):
        parse_authorization(both)


def test_repeated_authorization_header_is_refused() -> None:
    doubled = dataclasses.replace(
        SPEC_REQUEST, headers=[*SPEC_REQUEST.headers, ("authorization", SPEC_AUTHORIZATION)]
    )
    with pytest.raises(InvalidSignatureException):
        parse_authorization(doubled)


# --- request time and the checks before the signature -------------------------------------


def _dated(*headers: tuple[str, str]) -> RequestToVerify:
    return RequestToVerify("GET", "/", "", [("Host", "h"), *headers])


def test_x_amz_date_overrides_date() -> None:
    req = _dated(("Date", "Wed, 10 Feb 2017 12:00:00 GMT"), ("X-Amz-Date", "20120525T002453Z"))
    assert request_time(req) == SPEC_TIME


@pytest.mark.parametrize(
    "value",
    [
        "Fri, 25 May 2012 00:24:53 GMT",
        "Fri, 25 May 2012 00:24:53 -0000",  # botocore's formatdate()
        "Fri, 25 May 2012 02:24:53 +0200",
        "20120525T002453Z",  # spec 1.5: Date may itself be ISO 8601 basic
    ],
)
def test_date_header_formats(value: str) -> None:
    assert request_time(_dated(("Date", value))) == SPEC_TIME


def test_no_date_at_all() -> None:
    with pytest.raises(InvalidSignatureException) as caught:
        request_time(_dated())
    assert caught.value.message == (
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Amz-Date", "2012-05-25T00:24:53Z")],
        [("X-Amz-Date", "20121325T002453Z")],
        [("X-Amz-Date", "Fri, 25 May 2012 00:24:53 GMT")],  # no fallback to Date
        [("Date", "yesterday")],
        [("X-Amz-Date", "20120525T002453Z"), ("x-amz-date", "20120525T002454Z")],
    ],
)
def test_unparsable_dates(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidSignatureException):
        request_time(_dated(*headers))


def test_botocore_date_header_signing_verifies() -> None:
    # With a Date header botocore signs an RFC 1123 Date and sends no X-Amz-Date.
    req = botocore_sign("GET", f"{ENDPOINT}/-/vaults", headers=[("Date", "placeholder")])
    assert not [k for k, _ in req.headers if k.lower() == "x-amz-date"]
    assert "date" in parse_authorization(req).signed_headers
    verify(req)


def test_wrong_region() -> None:
    req = botocore_sign("GET", f"{ENDPOINT}/-/vaults", region="eu-west-1")
    assert_refused(
        req,
        "Credential should be scoped to a valid region, not 'eu-west-1'. "
        "This server serves 'us-east-1'.",
    )
    verify(req, region="eu-west-1")


def test_scope_date_must_match_request_date() -> None:
    req = botocore_sign("GET", f"{ENDPOINT}/-/vaults")
    next_day = format_amz_date(WHEN + timedelta(days=1))
    moved = replace_header(req, "X-Amz-Date", next_day)
    assert_refused(
        moved,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
        "from HTTP: '20261124' != '20261125', from '20261125T142428Z'.",
        now=WHEN + timedelta(days=1),
    )


def test_skew_in_the_past() -> None:
    req = botocore_sign("GET", f"{ENDPOINT}/-/vaults")
    verify(req, now=WHEN + SKEW)
    assert_refused(
        req,
        "Signature expired: 20261124T142428Z is now earlier than 20261124T142429Z "
        "(20261124T143929Z - 15 min.)",
        now=WHEN + SKEW + timedelta(seconds=1),
    )


def test_skew_in_the_future() -> None:
    req = botocore_sign("GET", f"{ENDPOINT}/-/vaults")
    verify(req, now=WHEN - SKEW)
    assert_refused(
        req,
        "Signature not yet current: 20261124T142428Z is still later than 20261124T142427Z "
        "(20261124T140927Z + 15 min.)",
        now=WHEN - SKEW - timedelta(seconds=1),
    )


def test_signed_header_absent_from_request() -> None:
    req = botocore_sign(
        "GET", f"{ENDPOINT}/-/vaults", headers=[("x-amz-glacier-version", "2012-06-01")]
    )
    assert_refused(
        replace_header(req, "x-amz-glacier-version", None),
        "The header 'x-amz-glacier-version' is listed in SignedHeaders but is not in the request.",
    )


def test_non_hex_signature_is_a_plain_mismatch() -> None:
    # Non-ASCII must not reach hmac.compare_digest as str (it would raise TypeError).
    bad = SPEC_AUTHORIZATION.replace(SPEC_SIGNATURE, "zz\u00e9" + SPEC_SIGNATURE[3:])
    assert_refused(_with_authorization(bad), SIGNATURE_MISMATCH, now=SPEC_TIME)


# --- payload hashes ----------------------------------------------------------------------


def test_payload_hash_mismatch_message_is_exact() -> None:
    computed = hashlib.sha256(b"hello").hexdigest()
    with pytest.raises(InvalidSignatureException) as caught:
        check_payload_hash("0" * 64, computed)
    assert caught.value.http_status == 403
    assert caught.value.message == (
        "The value passed in as x-amz-content-sha256 does not match the computed payload "
        f"hash. Computed digest: {computed} expected hash: {'0' * 64}"
    )


def test_payload_hash_comparison_ignores_case() -> None:
    computed = hashlib.sha256(b"hello").hexdigest()
    check_payload_hash(computed.upper(), computed)


def test_declared_hash_is_signed_verbatim() -> None:
    upper = hashlib.sha256(b"hello").hexdigest().upper()
    req = botocore_sign(
        "POST", f"{ENDPOINT}/-/vaults/v/archives", headers=[("x-amz-content-sha256", upper)]
    )
    assert declared_payload_hash(req) == upper
    assert payload_hash_for_signing(req, "ignored") == upper
    verify(req)


def test_unsigned_payload() -> None:
    req = botocore_sign(
        "POST",
        f"{ENDPOINT}/-/vaults/v/tags?operation=add",
        headers=[("X-Amz-Content-SHA256", UNSIGNED_PAYLOAD)],
        body=b'{"Tags": {}}',
    )
    assert declared_payload_hash(req) == UNSIGNED_PAYLOAD
    verify(req, body=b"anything at all")
    assert_refused(req, SIGNATURE_MISMATCH, payload_hash=EMPTY_SHA256)


def test_absent_declared_hash() -> None:
    req = botocore_sign("GET", f"{ENDPOINT}/-/vaults")
    assert declared_payload_hash(req) is None
    assert payload_hash_for_signing(req, EMPTY_SHA256) == EMPTY_SHA256


# --- canonical pieces --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", ""),
        ("b=2&a=1&a=0", "a=0&a=1&b=2"),
        ("flag&x=", "flag=&x="),
        ("k=%7e%2f%2F", "k=~%2F%2F"),
        ("a+b=c+d%2B", "a%20b=c%20d%2B"),
        ("k=\u00c3\u00a9", "k=%C3%A9"),  # raw UTF-8 bytes, latin-1 decoded by ASGI
        ("k=%C3%A9&k=%c3%a9", "k=%C3%A9&k=%C3%A9"),
        ("Z=1&%5B=2&a=3", "%5B=2&Z=1&a=3"),  # sorted by the encoded name
        ("a=1&&b=2&", "a=1&b=2"),
        ("a=b=c", "a=b%3Dc"),
    ],
)
def test_canonical_query_string(raw: str, canonical: str) -> None:
    assert canonical_query_string(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "double", "single"),
    [
        ("", "/", "/"),
        ("/-/vaults/examplevault", "/-/vaults/examplevault", "/-/vaults/examplevault"),
        ("/-/vaults/my%2Fvault", "/-/vaults/my%252Fvault", "/-/vaults/my%2Fvault"),
        ("/-/vaults/%7e", "/-/vaults/%257e", "/-/vaults/~"),
        ("/-/vaults/./a/../b", "/-/vaults/b", "/-/vaults/b"),
        ("//-//vaults/", "/-/vaults/", "/-/vaults/"),
        ("/-/vaults/caf\u00c3\u00a9", "/-/vaults/caf%C3%A9", "/-/vaults/caf%C3%A9"),
    ],
)
def test_canonical_uri(raw: str, double: str, single: str) -> None:
    assert canonical_uri(raw) == double
    assert canonical_uri(raw, double_encode=False) == single


def test_canonical_header_lines() -> None:
    req = RequestToVerify(
        "GET",
        "/",
        "",
        [("HOST", " h "), ("X-A", "a\t\t b "), ("x-a", " c"), ("X-B", "   ")],
    )
    assert canonical_header_lines(req, ["host", "x-a", "x-b"]) == [
        "host:h",
        "x-a:a b,c",
        "x-b:",
    ]


# --- hand-written timestamp parsing and formatting -----------------------------------------


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)))
def test_amz_dates_match_strftime_and_strptime(naive: datetime) -> None:
    when = naive.replace(microsecond=0, tzinfo=UTC)
    text = format_amz_date(when)
    assert text == when.strftime("%Y%m%dT%H%M%SZ")
    assert request_time(_dated(("X-Amz-Date", text))) == when


def test_amz_date_formatting_converts_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_amz_date(datetime(2012, 5, 25, 2, 24, 53, tzinfo=plus_two)) == "20120525T002453Z"


@pytest.mark.parametrize("value", ["20121325T002453Z", "20120230T002453Z", "20120525T246000Z"])
def test_well_shaped_impossible_amz_dates_are_refused(value: str) -> None:
    with pytest.raises(InvalidSignatureException) as caught:
        request_time(_dated(("X-Amz-Date", value)))
    assert "Date must be in ISO-8601 'basic format'" in caught.value.message


def test_cached_signing_keys_match_botocore_for_each_scope() -> None:
    # The cache is keyed by every input: another day, region or secret is another key.
    for secret, date, region in [
        ("s1", "20120525", "us-east-1"),
        ("s1", "20120526", "us-east-1"),
        ("s1", "20120525", "eu-west-1"),
        ("s2", "20120525", "us-east-1"),
        ("s1", "20120525", "us-east-1"),
    ]:
        expected = SigV4Auth(Credentials("AK", secret), "glacier", region)._sign(
            ("AWS4" + secret).encode(), date
        )
        for step in (region, "glacier", "aws4_request"):
            expected = SigV4Auth(Credentials("AK", secret), "glacier", region)._sign(expected, step)
        assert signing_key(secret, date, region, "glacier") == expected
