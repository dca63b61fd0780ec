"""The declarative table of all 33 Glacier operations (spec 1.2).

Each route names its method, path pattern (labels as in botocore's model),
query discriminator, body kind and success status. `match` splits the *raw*
path on "/" before percent-decoding each segment, so an encoded "/" inside a
label never changes the route (spec 1.2 routing notes). Handlers are bound in
`api/handlers/__init__.py`; a route without a handler answers a Glacier error.

The signature covers the path with dot segments and empty segments removed (what
botocore signs, `auth.canonical.remove_dot_segments`), so `match` refuses every path that
removal would change: otherwise a request signed for `DELETE /-/vaults/v` could be
sent as `DELETE /-/vaults/v/archives/..` and run another operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote_to_bytes

from openglacier.auth.canonical import remove_dot_segments, wire_bytes
from openglacier.errors import (
    InvalidParameterValueException,
    MethodNotAllowed,
    ResourceNotFoundException,
)


class Body(Enum):
    NONE = "none"  # any body is read (bounded) and ignored
    JSON = "json"  # read whole (bounded) and parsed as a JSON object
    STREAM = "stream"  # archive bytes, streamed straight to storage


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    path: str  # "/{accountId}/vaults/{vaultName}"
    success: int
    body: Body = Body.NONE
    query: tuple[str, str] | None = None  # required discriminator, e.g. ("operation", "add")

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.strip("/").split("/"))

    @property
    def request_uri(self) -> str:
        """The form botocore's model uses: path plus discriminator."""
        return self.path + (f"?{self.query[0]}={self.query[1]}" if self.query else "")


V = "/{accountId}/vaults/{vaultName}"
ROUTES: tuple[Route, ...] = (
    Route("ListVaults", "GET", "/{accountId}/vaults", 200),
    Route("CreateVault", "PUT", V, 201),
    Route("DescribeVault", "GET", V, 200),
    Route("DeleteVault", "DELETE", V, 204),
    Route("SetVaultNotifications", "PUT", V + "/notification-configuration", 204, Body.JSON),
    Route("GetVaultNotifications", "GET", V + "/notification-configuration", 200),
    Route("DeleteVaultNotifications", "DELETE", V + "/notification-configuration", 204),
    Route("SetVaultAccessPolicy", "PUT", V + "/access-policy", 204, Body.JSON),
    Route("GetVaultAccessPolicy", "GET", V + "/access-policy", 200),
    Route("DeleteVaultAccessPolicy", "DELETE", V + "/access-policy", 204),
    Route("InitiateVaultLock", "POST", V + "/lock-policy", 201, Body.JSON),
    Route("GetVaultLock", "GET", V + "/lock-policy", 200),
    Route("AbortVaultLock", "DELETE", V + "/lock-policy", 204),
    Route("CompleteVaultLock", "POST", V + "/lock-policy/{lockId}", 204),
    Route("AddTagsToVault", "POST", V + "/tags", 204, Body.JSON, ("operation", "add")),
    Route("RemoveTagsFromVault", "POST", V + "/tags", 204, Body.JSON, ("operation", "remove")),
    Route("ListTagsForVault", "GET", V + "/tags", 200),
    Route("UploadArchive", "POST", V + "/archives", 201, Body.STREAM),
    Route("DeleteArchive", "DELETE", V + "/archives/{archiveId}", 204),
    Route("InitiateMultipartUpload", "POST", V + "/multipart-uploads", 201),
    Route("ListMultipartUploads", "GET", V + "/multipart-uploads", 200),
    Route("UploadMultipartPart", "PUT", V + "/multipart-uploads/{uploadId}", 204, Body.STREAM),
    Route("CompleteMultipartUpload", "POST", V + "/multipart-uploads/{uploadId}", 201),
    Route("ListParts", "GET", V + "/multipart-uploads/{uploadId}", 200),
    Route("AbortMultipartUpload", "DELETE", V + "/multipart-uploads/{uploadId}", 204),
    Route("InitiateJob", "POST", V + "/jobs", 202, Body.JSON),
    Route("ListJobs", "GET", V + "/jobs", 200),
    Route("DescribeJob", "GET", V + "/jobs/{jobId}", 200),
    Route("GetJobOutput", "GET", V + "/jobs/{jobId}/output", 200),
    Route("GetDataRetrievalPolicy", "GET", "/{accountId}/policies/data-retrieval", 200),
    Route("SetDataRetrievalPolicy", "PUT", "/{accountId}/policies/data-retrieval", 204, Body.JSON),
    Route("ListProvisionedCapacity", "GET", "/{accountId}/provisioned-capacity", 200),
    Route("PurchaseProvisionedCapacity", "POST", "/{accountId}/provisioned-capacity", 201),
)


def _patterns_by_length() -> dict[int, list[tuple[Route, tuple[str, ...]]]]:
    # Split once and grouped by segment count: matching every request against
    # 33 freshly split patterns was several percent of a small request's time.
    by_length: dict[int, list[tuple[Route, tuple[str, ...]]]] = {}
    for route in ROUTES:
        by_length.setdefault(len(route.segments), []).append((route, route.segments))
    return by_length


_PATTERNS = _patterns_by_length()


@dataclass(frozen=True)
class Match:
    route: Route
    params: dict[str, str]


DOT_SEGMENTS = (".", "..")


def split_path(raw_path: str) -> list[str]:
    """Raw path -> decoded segments. A trailing "/" is ignored (spec 1.2: `jobs/`).

    Segments are decoded from the bytes received (ASGI hands them over as latin-1),
    as the signature's canonical URI is: a raw UTF-8 byte and its percent-encoding
    are signed alike, so they must name the same label. Raises UnicodeDecodeError
    for a segment that is not UTF-8.
    """
    segments = raw_path.strip("/").split("/") if raw_path.strip("/") else []
    return [unquote_to_bytes(wire_bytes(s)).decode("utf-8") for s in segments]


def check_signed_as_sent(raw_path: str, segments: list[str]) -> None:
    """Refuse a path that is not signed as itself (see the module docstring).

    Dot segments and empty segments change under `remove_dot_segments`; a label
    that *decodes* to "." or ".." is refused too, since an SDK sends such a label
    unencoded (botocore leaves "." unescaped), where it is a dot segment: no vault
    name or id can be "." or "..", whichever way it is written.
    """
    if remove_dot_segments(raw_path) != (raw_path or "/") or any(
        segment in DOT_SEGMENTS for segment in segments
    ):
        raise InvalidParameterValueException(
            f"Invalid request path {raw_path}: it has a '.' or '..' segment (perhaps "
            "percent-encoded) or an empty one ('//'). A Signature Version 4 signer signs "
            "such a path with those segments removed, that is as another path, so it is "
            "refused; a vault name or id cannot be '.' or '..'."
        )


def _bind(pattern: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params: dict[str, str] = {}
    for want, got in zip(pattern, segments, strict=True):
        if want.startswith("{"):
            params[want[1:-1]] = got
        elif want != got:
            return None
    return params


def match(method: str, raw_path: str, query: dict[str, str]) -> Match:
    try:
        segments = split_path(raw_path)
    except UnicodeDecodeError:
        raise ResourceNotFoundException(f"No such resource: {raw_path}") from None
    check_signed_as_sent(raw_path, segments)
    candidates = _PATTERNS.get(len(segments), [])
    on_path = [(r, p) for r, pattern in candidates if (p := _bind(pattern, segments)) is not None]
    if not on_path:
        raise ResourceNotFoundException(f"No such resource: {raw_path}")
    with_method = [(r, p) for r, p in on_path if r.method == method]
    if not with_method:
        allowed = ", ".join(sorted({r.method for r, _ in on_path}))
        raise MethodNotAllowed(f"Method {method} is not allowed on {raw_path}; use {allowed}")
    for route, params in with_method:
        if route.query is None or query.get(route.query[0]) == route.query[1]:
            return Match(route, params)
    name, _ = with_method[0][0].query or ("", "")
    raise InvalidParameterValueException(
        f"Invalid value for query parameter {name!r}: {query.get(name)!r}"
    )
