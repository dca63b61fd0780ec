"""Authentication under hostile input (hypothesis): a valid botocore-signed request with
one of its signing inputs damaged -- a header replaced, removed or sent twice, one
part of the Authorization header (credential scope, signed-header list, signature)
rewritten. No 5xx, Glacier's error shape, and a refusal changes nothing; a request
whose signature no longer matches is never executed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from support.malformed import (
    HEADER_TEXT,
    NASTY_TEXT,
    SETTINGS,
    STORES,
    Generated,
    World,
    assert_glacier_shaped,
    js,
    restore,
    world_on,
)
from support.signing import upload_headers

SIGNED = ["authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-glacier-version", "host"]
AUTH_PART = re.compile(r"(Credential=|SignedHeaders=|Signature=)([^,]*)")
REQUESTS = [
    ("POST", "/-/vaults/v/tags?operation=add", js({"Tags": {"k": "v"}}), {}),
    ("POST", "/-/vaults/v/archives", b"data", upload_headers(b"data", "d")),
    ("PUT", "/-/vaults/auth-made", b"", {}),
    ("DELETE", "/-/vaults/v/access-policy", b"", {}),
]


@pytest.fixture(scope="module", params=STORES)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with world_on(request.param, tmp_path_factory.mktemp("auth"), request) as opened:
        yield opened


def rewrite_authorization(value: str, part: int, replacement: str) -> str:
    """Replace the value of one `Name=value` part, or one `/` piece of the credential."""
    found = list(AUTH_PART.finditer(value))
    match = found[part % len(found)]
    old = match[2]
    if match[1] == "Credential=":
        pieces = old.split("/")
        pieces[part % len(pieces)] = replacement
        new = "/".join(pieces)
    else:
        new = replacement
    return value[: match.start(2)] + new + value[match.end(2) :]


@st.composite
def damaged(draw: st.DrawFn) -> tuple[list[tuple[str, str]], str]:
    """(the damage to apply as a header list transformation, its description)."""
    how = draw(st.sampled_from(["replace", "remove", "twice", "authorization"]))
    name = draw(st.sampled_from(SIGNED))
    value = draw(st.one_of(HEADER_TEXT, NASTY_TEXT.filter(lambda t: t.isascii() and "\n" not in t)))
    if how == "authorization":
        part = draw(st.integers(0, 7))
        return [("authorization", f"{part}:{value}")], how
    return [(name, value)], f"{how} {name}"


def apply(headers: dict[str, str], damage: list[tuple[str, str]], how: str) -> list[Any]:
    # botocore signs the URL's host without adding the header; HTTP clients add it.
    items = [("host", "testserver")] + [(k.lower(), v) for k, v in headers.items()]
    (name, value), kind = damage[0], how.split(maxsplit=1)[0]
    if kind == "authorization":
        part, _, replacement = value.partition(":")
        return [
            (k, rewrite_authorization(v, int(part), replacement) if k == name else v)
            for k, v in items
        ]
    if kind == "remove":
        return [(k, v) for k, v in items if k != name]
    if kind == "twice" or name not in dict(items):  # replacing an absent header adds it
        return [*items, (name, value)]
    return [(k, value if k == name else v) for k, v in items]


@settings(SETTINGS, max_examples=150)
@given(case=st.sampled_from(REQUESTS), damage=damaged())
def test_damaged_signing_inputs(
    world: World, case: tuple[str, str, bytes, dict[str, str]], damage: Any
) -> None:
    method, path, body, extra = case
    signed = world.api.signer.sign(method, path, body=body, headers=extra)
    headers = apply(signed.headers, *damage)
    before = world.snapshot()
    resp = world.api.client.request(
        method,
        signed.url,
        headers=[(k, v.encode("latin-1", "replace")) for k, v in headers],
        content=body,
    )
    event(f"{damage[1]}: {resp.status_code} {resp.headers.get('x-amzn-errortype', '')}")
    assert_glacier_shaped(resp, Generated(path, method, path, dict(headers), body))
    if resp.status_code >= 400:
        assert world.snapshot() == before, (damage, resp.text)
    else:
        assert not damage[1].startswith(("replace authorization", "authorization")), damage
        restore(world.api, world.ids)
