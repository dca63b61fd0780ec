"""Canonical forms of the request target for SigV4 (spec 1.6 step 1): the path and
the query as the signature covers them, and the checks that keep the router reading
exactly that (`api/routes.py` refuses every path `remove_dot_segments` changes).

Pure text functions; the request and its headers are `auth/sigv4.py`'s.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote_to_bytes

from openglacier.errors import InvalidParameterValueException

_RFC3986_UNRESERVED = "-_.~"  # quote() adds ASCII letters and digits itself


def canonical_uri(raw_path: str, *, double_encode: bool = True) -> str:
    """Spec 1.6 step 1, canonical URI.

    Double (botocore, every non-S3 SDK): remove dot segments and empty segments from
    the path as received, then percent-encode it again, so `%2F` in a label is signed
    as `%252F`. Single (fallback, spec 1.6 [R]): each segment decoded and re-encoded
    with RFC 3986, which is what a signer that encodes the plain label would produce.
    """
    path = remove_dot_segments(raw_path)
    if double_encode:
        return quote(wire_bytes(path), safe="/~")
    return "/".join(_rfc3986(segment) for segment in wire_bytes(path).split(b"/"))


def remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, plus the collapsing of empty segments ("//") AWS requires:
    botocore's `normalize_url_path`, applied to the path it signs (not to the one it
    sends). The router (`api/routes.py`) refuses every path this function changes, so
    the path a request is routed on is always the path its signature covers."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    lead = "/" if path.startswith("/") else ""
    trail = "/" if path.endswith("/") and kept else ""
    return lead + "/".join(kept) + trail


def canonical_query_string(raw_query: str) -> str:
    """Spec 1.6 step 1: every parameter decoded as received and re-encoded with RFC 3986,
    sorted by encoded name, then value; a name without "=" has an empty value.

    `+` is read as a space, like the form decoding the router applies to the same
    query [R]: clients that send a literal plus encode it as %2B (botocore's REST
    serializer does), while urlencode-style clients send a space as `+` and sign %20.
    """
    pairs = []
    for item in wire_bytes(raw_query).split(b"&"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        pairs.append((_rfc3986(name, plus_is_space=True), _rfc3986(value, plus_is_space=True)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def check_query_names_unique(raw_query: str) -> None:
    """Refuse a query that names a parameter twice.

    The canonical query string sorts the pairs, so a signature does not fix the order
    of a repeated name's values, while the router and handlers read one of them (the
    last, as Starlette does): `?operation=remove&operation=add`, signed, could be
    replayed as `?operation=add&operation=remove` and run the other operation. No
    Glacier operation takes a repeated parameter. Names are decoded as the router
    decodes them (`parse_qsl`, which Starlette uses).
    """
    seen: set[str] = set()
    for name, _ in parse_qsl(raw_query, keep_blank_values=True):
        if name in seen:
            raise InvalidParameterValueException(
                f"The query parameter '{name}' is given more than once; a signature does "
                "not fix the order of repeated parameters, so they are refused."
            )
        seen.add(name)


def query_names(raw_query: str) -> set[str]:
    names = (item.partition(b"=")[0] for item in wire_bytes(raw_query).split(b"&") if item)
    return {unquote_to_bytes(name).decode("utf-8", "replace") for name in names}


def _rfc3986(component: bytes, *, plus_is_space: bool = False) -> str:
    if plus_is_space:
        component = component.replace(b"+", b" ")
    return quote(unquote_to_bytes(component), safe=_RFC3986_UNRESERVED)


def wire_bytes(text: str) -> bytes:
    """Back to the bytes received: ASGI decodes the request target as latin-1. Text
    that cannot have come from there (characters above U+00FF) is taken as UTF-8."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")
